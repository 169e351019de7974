"""The call record: what every call shares, however it arrives (SIP or a WebSocket media stream).

States and their history, the timeline, stream states per destination, recordings, the public
snapshot and the counters; every change is told through the call's :class:`CallReporting`
(bus, stored history, log). A :class:`BaseSession` subclass drives its own signalling and calls
:meth:`_set_state`, :meth:`_note` and :meth:`_on_stream_state`, and adds how the call arrived
(:meth:`identity`: a SIP call's Call-ID and ladder, a stream's route); the registry, the API and
the console see only this interface.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from bridge.calls.destinations import combined_state, views_for
from bridge.calls.reporting import CallReporting
from bridge.calls.services import Services
from bridge.channel.protocol import (
    DestinationFailed,
    DtmfHeard,
    EncoderRestarted,
    KeyframeRequestsIgnored,
    KeyframeWanted,
    MediaReport,
    RecordingChanged,
    RecordStart,
    StreamState,
)
from bridge.model import CallSpec, CallState, StateChange, utc_now
from bridge.recording.service import CallRef
from bridge.workers.handle import DtmfUnavailable, MediaHandle

log = logging.getLogger("bridge.session")


@dataclass(frozen=True, slots=True)
class StopRequested:
    reason: str


@dataclass(frozen=True, slots=True)
class MediaFailed:
    reason: str


class SessionError(Exception):
    """Setting up the call failed before it started; the message says why."""


class BaseSession:
    """One call's state, history, timeline and reporting."""

    def __init__(self, spec: CallSpec, services: Services) -> None:
        self.spec = spec
        self.services = services
        self.reporting = CallReporting(
            spec.call_id,
            spec.app_key,
            services.bus,
            services.history,
            lambda: services.config.log.mask_dtmf,  # read at each use: a reload may change it
            self.counters,
        )
        self.destinations = views_for(spec.destinations, spec.reveal_stream_names)
        self.state = CallState.PENDING
        self.reason = "accepted"
        self.history: list[StateChange] = [StateChange(self.state, self.reason, utc_now())]
        self.created_at = self.history[0].at
        self.media: MediaHandle | None = None
        self.timeline: list[dict[str, Any]] = []
        self.recordings: dict[str, dict[str, Any]] = {}  # relative path -> the worker's last note of the file

    def terminate(self, reason: str = "terminated by API request") -> None:
        """Ask the session to hang up; it finishes asynchronously."""
        raise NotImplementedError

    # Errors that end a call with their own message (a defect gets "internal error" instead).
    expected_errors: tuple[type[Exception], ...] = (SessionError,)

    async def run(self) -> None:
        """Drive the call to its end; never raises (errors become FAILED)."""
        self.reporting.publish("call.state", state=self.state.value, reason=self.reason)
        try:
            await self._run()
        except self.expected_errors as exc:
            self._set_state(CallState.FAILED, str(exc))
        except Exception as exc:  # a defect must cost one call, not the daemon
            log.exception("call %s: internal error", self.spec.call_id)
            self._on_defect()
            self._set_state(CallState.FAILED, f"internal error: {type(exc).__name__}")
        finally:
            await self._release()
            await self._finish_recordings()

    async def _run(self) -> None:
        """The call's own signalling, from set-up to its end."""
        raise NotImplementedError

    def _on_defect(self) -> None:
        """Tell the far end a defect ended the call (before its FAILED state is published)."""

    async def _release(self) -> None:
        """Give back what the call holds (media endpoint, dialog); runs once, after :meth:`_run`."""
        if self.media is not None:
            await self.media.close()

    def send_dtmf(self, digits: str, duration_ms: int) -> None:
        raise DtmfUnavailable("this call cannot send DTMF")

    # -- recordings ---------------------------------------------------------------------

    @property
    def call_ref(self) -> CallRef:
        return CallRef(self.spec.call_id, self.created_at.isoformat(), self.spec.app_key)

    def record_start(self, track_names: list[str] | None = None) -> RecordStart | None:
        """What the media worker records for this call (None: nothing)."""
        recordings = self.services.recordings
        if recordings is None:
            return None
        return recordings.start_message(self.call_ref, self.spec.record, self.created_at, track_names or [])

    def _recording_noted(self, details: dict[str, Any]) -> None:
        path = details.get("path")
        if path is None or self.services.recordings is None:
            return
        self.recordings[path] = {**self.recordings.get(path, {}), **details}
        self.services.recordings.noted(self.call_ref, details)

    async def _finish_recordings(self) -> None:
        """Files the worker could not close (it died) are repaired and marked; then uploads start."""
        recordings = self.services.recordings
        if recordings is None or not self.recordings:
            return
        lost = self.media.lost_reason if self.media is not None else ""
        for note in await recordings.finish(self.call_ref, list(self.recordings.values()), lost):
            self.recordings[note["path"]] = note
            self._note("recording", **{k: v for k, v in note.items() if k not in ("at", "event")})

    def recordings_view(self) -> list[dict[str, Any]]:
        keys = ("name", "format", "track", "state", "reason", "durationSeconds", "bytes")
        return [{key: note.get(key) for key in keys} for note in self.recordings.values()]

    # -- reporting --------------------------------------------------------------------

    @property
    def stream_state(self) -> StreamState:
        return combined_state(self.destinations)

    @property
    def stream_history(self) -> list[dict[str, Any]]:
        """Every destination's stream states, in time order (each entry names its destination)."""
        entries = [entry for view in self.destinations for entry in view.history]
        return sorted(entries, key=lambda entry: str(entry["at"]))

    def _on_stream_state(self, index: int, state: StreamState, reason: str) -> None:
        view = self.destinations[index]
        view.changed(state, reason)
        self.reporting.stream_changed(index, view.label, state.value, reason, self.stream_state.value)

    def _note(self, kind: str, **details: Any) -> None:
        if kind == "recording":
            self._recording_noted(details)
        entry = {"at": utc_now().isoformat(), "event": kind, **details}
        self.timeline.append(entry)
        self.reporting.noted(entry)

    def _on_media_event(self, event: MediaReport) -> None:
        """What the call's media reports, as the timeline's entries."""
        match event:
            case DtmfHeard():
                self._note("dtmf", digit=event.digit, durationMs=event.duration_ms, via="RFC 4733")
            case EncoderRestarted():
                self._note("encoder-restart", reason=event.reason)
            case DestinationFailed():
                self._note("stream-failed", destination=event.destination, reason=event.reason)
            case KeyframeRequestsIgnored():
                self._note("keyframe-requests-ignored", method=event.method, unanswered=event.unanswered)
            case RecordingChanged():
                self._note("recording", **event.details())
            case KeyframeWanted():
                pass  # only a SIP far end can be asked (CallSession)

    def _set_state(self, state: CallState, reason: str) -> None:
        self.state = state
        self.reason = reason
        self.history.append(StateChange(state, reason, utc_now()))
        self.reporting.state_changed(state.value, reason)

    def stored_view(self) -> dict[str, Any]:
        """What the history keeps: the snapshot, with DTMF digits masked unless log.mask_dtmf is off."""
        return self.reporting.stored(self.snapshot())

    def source_label(self) -> str:
        """How the call arrived, as a metric label: ``sip`` or the ingest protocol."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """How the call arrived: its SIP fields, or its ingest route and platform."""
        return {}

    def snapshot(self) -> dict[str, Any]:
        """The public view of the call (API, webhooks): no password, no stream key, no RTMP token."""
        spec = self.spec
        counters = self.counters()
        per_destination = counters.get("destinations") or [{} for _ in self.destinations]
        return {
            "callId": spec.call_id,
            "callee": spec.callee,
            "appKey": spec.app_key,
            "hasAudio": spec.has_audio,
            "hasVideo": spec.has_video,
            "rtmpTarget": self.destinations[0].label,
            "destinations": [view.to_json(c) for view, c in zip(self.destinations, per_destination, strict=False)],
            "active": not self.state.final,
            "state": self.state.value,
            "streamState": self.stream_state.value,
            "streamHistory": self.stream_history,
            "reason": self.reason,
            "createdAt": self.created_at.isoformat(),
            "history": [change.to_json() for change in self.history],
            "timeline": self.timeline,
            "counters": {key: value for key, value in counters.items() if key != "destinations"},
            "mediaWorker": self._media_worker(),
            "recordings": self.recordings_view(),
            **self.identity(),
            **self._node(),
        }

    def _node(self) -> dict[str, str]:
        """In a cluster, the node that owns the call (views, webhooks, the shared history)."""
        cluster = self.services.config.cluster
        return {"node": cluster.node} if cluster.enabled else {}

    def _media_worker(self) -> dict[str, int] | None:
        """Which media worker process runs this call's media (while it has one)."""
        if self.media is None or self.media.lost_reason:
            return None
        return {"index": self.media.worker.index, "pid": self.media.worker.pid}

    def counters(self) -> dict[str, Any]:
        """Live per-call statistics (empty until media starts)."""
        return self.media.counters() if self.media is not None and self.media.started else {}


async def watch_media(media: MediaHandle, inbox: asyncio.Queue[Any]) -> None:
    """Put the reason media can no longer go on into the session's inbox."""
    inbox.put_nowait(MediaFailed(await media.run()))
