"""Uploads of a call's recordings when it ends, retried with backoff, their state in the history.

Each file's ``upload`` (in the history and ``GET /api/v1/calls/{id}/recordings``) goes
``pending`` → ``uploading`` → ``uploaded`` (with the URL without its query, the MD5, the
attempts), or ``retrying`` (with the last error and the next attempt's time) until
``recording.upload.retry_seconds`` have passed, then ``failed``. A verified upload publishes a
signed ``recording.uploaded`` webhook and, with ``delete_after_upload``, removes the local
file. Uploads still pending when the daemon stops are resumed at its next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.ops.bus import BusEvent
from bridge.recording.config import EXTENSIONS, UploadConfig
from bridge.recording.targets import Target, UploadFailed, UploadFile, target_for

log = logging.getLogger("bridge.recording")
CONCURRENT_UPLOADS = 2
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class UploadJob:
    call_id: str
    created: str
    app_key: str
    relative: str
    kind: str  # wav, wav-ulaw or m4a
    track: str


def _md5(path: Path) -> tuple[int, bytes]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Uploader:
    def __init__(self, config: UploadConfig, recordings: Any) -> None:
        self.config = config
        self._recordings = recordings  # bridge.recording.service.Recordings: directory, store, bus
        self.target: Target | None = target_for(config)
        self._queue: asyncio.Queue[UploadJob] = asyncio.Queue()
        self._busy: set[str] = set()

    def busy(self) -> set[str]:
        """Files queued or being uploaded (retention leaves them alone)."""
        return set(self._busy)

    def enqueue(self, job: UploadJob) -> None:
        if self.target is None or job.relative in self._busy:
            return
        self._busy.add(job.relative)
        self._state(job.relative, {"state": "pending", "attempts": 0, "at": _now()})
        self._queue.put_nowait(job)

    async def run(self) -> None:
        """Work through the queue, ``CONCURRENT_UPLOADS`` files at a time (owned by the daemon's TaskGroup)."""
        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENT_UPLOADS):
                group.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._upload(job)
            except Exception:  # a defect costs this file's upload, not the uploader
                log.exception("recording %s: upload failed unexpectedly", job.relative)
                self._state(job.relative, {"state": "failed", "error": "internal error", "at": _now()})
            finally:
                self._busy.discard(job.relative)

    def _state(self, relative: str, upload: dict[str, Any]) -> None:
        store = self._recordings.store
        if store is not None:
            store.update(relative, upload=upload)

    async def _upload(self, job: UploadJob) -> None:
        assert self.target is not None
        path = self._recordings.file_path(job.relative)
        try:
            size, md5 = await asyncio.to_thread(_md5, path)
        except OSError as exc:
            error = f"cannot read the file: {exc.strerror}"
            log.error("recording %s: not uploaded: %s", job.relative, error)
            self._state(job.relative, {"state": "failed", "attempts": 0, "error": error, "at": _now()})
            return
        file = UploadFile(path, job.relative, job.kind, size, md5, _placeholders(job))
        deadline = time.monotonic() + self.config.retry_seconds
        delay, attempt = FIRST_RETRY_SECONDS, 0
        while True:
            attempt += 1
            self._state(job.relative, {"state": "uploading", "attempts": attempt, "at": _now()})
            try:
                async with asyncio.timeout(self.config.timeout):
                    url = await self.target.put(file)
            except (UploadFailed, TimeoutError) as exc:
                error = str(exc) or "timed out"
                if time.monotonic() + delay > deadline:
                    log.error("recording %s: upload given up after %d attempts: %s", job.relative, attempt, error)
                    self._state(job.relative, {"state": "failed", "attempts": attempt, "error": error, "at": _now()})
                    return
                log.warning(
                    "recording %s: upload attempt %d failed (%s); retrying in %g s", job.relative, attempt, error, delay
                )
                retry = {
                    "state": "retrying",
                    "attempts": attempt,
                    "error": error,
                    "retryInSeconds": delay,
                    "at": _now(),
                }
                self._state(job.relative, retry)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            await self._uploaded(job, file, url, attempt)
            return

    async def _uploaded(self, job: UploadJob, file: UploadFile, url: str, attempts: int) -> None:
        upload = {"state": "uploaded", "attempts": attempts, "url": url, "md5": file.md5.hex(), "at": _now()}
        self._state(job.relative, upload)
        log.info("recording %s uploaded to %s (%d bytes, %d attempt(s))", job.relative, url, file.size, attempts)
        details = {"name": Path(job.relative).name, "format": file.kind, "bytes": file.size, "md5": file.md5.hex()}
        self._recordings.bus.publish(BusEvent("recording.uploaded", job.call_id, job.app_key, {**details, "url": url}))
        if self.config.delete_after_upload:
            await asyncio.to_thread(file.path.unlink, True)
            store = self._recordings.store
            if store is not None:
                store.update(job.relative, state="deleted", reason="deleted after a verified upload")
            log.info("recording %s deleted after a verified upload", job.relative)


def _placeholders(job: UploadJob) -> dict[str, str]:
    """The values of ``upload.http_url``'s placeholders for this file ({path} and {name} are added by the target)."""
    return {
        "callId": job.call_id,
        "appKey": job.app_key,
        "date": job.created[:10],
        "track": job.track,
        "ext": EXTENSIONS[job.kind],
    }
