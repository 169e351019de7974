"""The daemon's side of recordings: what each call records and where, their rows in the history,
repair after a crash, retention, and uploads when a call ends.

The media worker writes the files (``bridge.media.recorder``); the daemon never opens them on its
event loop: repairs, directory walks and uploads' reads run in threads.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.channel.protocol import RecordStart
from bridge.ops.bus import EventBus
from bridge.recording import retention
from bridge.recording.config import RecordingConfig
from bridge.recording.repair import repair
from bridge.recording.store import RecordingStore
from bridge.recording.upload import Uploader, UploadJob

log = logging.getLogger("bridge.recording")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
ENDED_STATES = ("complete", "stopped", "interrupted")


def _job(call: CallRef, file: dict[str, Any]) -> UploadJob:
    return UploadJob(call.call_id, call.created, call.app_key, file["path"], file["format"], file["track"])


def safe_name(text: str) -> str:
    """``text`` as one path segment: letters, digits, ``.``, ``_`` and ``-`` only, no leading dot."""
    return _UNSAFE.sub("_", text).lstrip(".")[:128] or "_"


def expand_path(pattern: str, call_id: str, app_key: str, at: datetime) -> str:
    """The pattern with the call's placeholders filled ({track} and {ext} stay for the worker)."""
    values = {"date": at.strftime("%Y-%m-%d"), "time": at.strftime("%H%M%S"), "callId": call_id, "appKey": app_key}
    for key, value in values.items():
        pattern = pattern.replace("{" + key + "}", safe_name(value))
    return pattern


@dataclass(frozen=True, slots=True)
class CallRef:
    """Which call a recording belongs to (a callId may be used again later: its creation time tells)."""

    call_id: str
    created: str
    app_key: str


class Recordings:
    def __init__(self, config: RecordingConfig, store: RecordingStore | None, bus: EventBus) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.directory = config.resolved_directory()
        self.active: set[str] = set()  # relative paths of files still being written
        self.uploader: Uploader | None = None  # when [recording.upload] kind is set

    def configure(self, config: RecordingConfig) -> None:
        """A reload: new formats, pattern, retention and uploads apply to what comes next (not the directory)."""
        self.config = config

    def start_message(
        self, call: CallRef, formats: tuple[str, ...], created: datetime, track_names: list[str]
    ) -> RecordStart | None:
        if not formats:
            return None
        return RecordStart(
            directory=str(self.directory),
            path=expand_path(self.config.path, call.call_id, call.app_key, created),
            formats=list(formats),
            flush_seconds=self.config.flush_seconds,
            track_names=track_names,
        )

    def noted(self, call: CallRef, note: dict[str, Any]) -> None:
        """A ``recording`` note from the media worker (a file opened, stopped or closed)."""
        if "path" not in note:
            return
        path = note["path"]
        if note.get("state") == "recording":
            self.active.add(path)
        else:
            self.active.discard(path)
        if self.store is not None:
            self.store.changed(call.call_id, call.created, call.app_key, note)

    async def finish(self, call: CallRef, files: list[dict[str, Any]], lost_reason: str) -> list[dict[str, Any]]:
        """The call ended: files still ``recording`` (the worker died) are repaired and marked
        ``interrupted``; every file then goes to the uploader. Returns the notes for the timeline."""
        notes = []
        for file in files:
            if file.get("state") != "recording":
                continue
            path = file["path"]
            reason = f"interrupted: {lost_reason or 'the media worker did not close it'}"
            note = await asyncio.to_thread(self._repair_note, path, file["format"], reason)
            self.active.discard(path)
            notes.append({**file, **note})
            if self.store is not None:
                self.store.update(
                    path,
                    state=note["state"],
                    reason=note["reason"],
                    bytes=note["bytes"],
                    duration=note["durationSeconds"],
                )
        if self.uploader is not None:
            for file in [*files, *notes]:
                if file.get("state") in ENDED_STATES:
                    self.uploader.enqueue(_job(call, file))
        return notes

    def _repair_note(self, relative: str, kind: str, reason: str) -> dict[str, Any]:
        try:
            fixed = repair(self.directory / relative, kind)
        except (OSError, ValueError) as exc:
            log.error("recording %s could not be repaired: %s", relative, exc)
            return {
                "state": "interrupted",
                "reason": f"{reason}; not repairable: {exc}",
                "bytes": 0,
                "durationSeconds": 0.0,
            }
        log.warning("recording %s: %s; %s s kept", relative, reason, f"{fixed.duration_seconds:.1f}")
        return {
            "state": "interrupted",
            "reason": reason,
            "bytes": fixed.size,
            "durationSeconds": round(fixed.duration_seconds, 3),
        }

    def recover(self) -> int:
        """At start-up (in a thread): files left ``recording`` by a daemon that died are repaired and
        marked ``interrupted`` in the history; returns how many."""
        if self.store is None:
            return 0
        rows = self.store.in_states("recording")
        for row in rows:
            note = self._repair_note(row["path"], row["format"], "interrupted: the bridge stopped during the call")
            self.store.update(
                row["path"],
                state=note["state"],
                reason=note["reason"],
                bytes=note["bytes"],
                duration=note["durationSeconds"],
            )
        self.store.flush()
        return len(rows)

    def resume_uploads(self) -> int:
        """At start-up (in a thread): uploads the last run did not finish go to the queue again."""
        if self.uploader is None or self.store is None:
            return 0
        rows = self.store.uploads_pending()
        for row in rows:
            self.uploader.enqueue(_job(CallRef(row["call_id"], row["call_created"], row["app_key"]), row))
        return len(rows)

    # -- retention and uploads -----------------------------------------------------------

    async def run(self) -> None:
        """Retention and the uploader, until cancelled (owned by the daemon's TaskGroup)."""
        async with asyncio.TaskGroup() as group:
            if self.uploader is not None:
                group.create_task(self.uploader.run())
            group.create_task(self._retention())

    async def _retention(self) -> None:
        """Retention every ``recording.retention_check_seconds`` (when a limit is set)."""
        while True:
            config = self.config
            if config.max_age_days > 0 or config.max_total_mb > 0:
                keep = set(self.active) | (self.uploader.busy() if self.uploader is not None else set())
                try:
                    await asyncio.to_thread(self.retention_pass, keep, time.time())
                except OSError as exc:
                    log.error("recording retention could not run: %s", exc)
            await asyncio.sleep(config.retention_check_seconds)

    def retention_pass(self, keep: set[str], now: float) -> list[tuple[str, str]]:
        """Delete what the limits say (blocking); each deletion is logged and marked in the history."""
        config = self.config
        files = retention.scan(self.directory)
        deleted = []
        for file, reason in retention.plan(files, now, config.max_age_days, int(config.max_total_mb * 1e6), keep):
            retention.delete(self.directory, file.relative)
            log.info("recording %s deleted: %s", file.relative, reason)
            if self.store is not None:
                self.store.update(file.relative, state="deleted", reason=reason)
            deleted.append((file.relative, reason))
        return deleted

    def file_path(self, relative: str) -> Path:
        """The absolute path of a recording (``relative`` comes from our own store, never from a request)."""
        return self.directory / relative
