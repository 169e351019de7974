"""RingCentral Engage call streaming, as the server receiving it (sans-IO).

Messages: ``Connected`` (protocol "AgentSession"), ``Start`` with ``metadata`` (callId,
sessionId, ani, dnis, account ids, agentId, ``contentType`` "audio/x-mulaw",
``sampleRateHertz`` 8000), ``Media`` (``perspective`` "Participant" or "Conference",
``sequenceId``, ``media`` base64, about 20 ms) and one ``Stop`` per perspective. The call's
metadata also arrives as query parameters of the upgrade request.
"""

from __future__ import annotations

from typing import Any

from bridge.wsmedia.core import (
    BadMessage,
    CoreState,
    StreamCore,
    base64_audio,
    member,
    number,
    optional_text,
    string_parameters,
)
from bridge.wsmedia.events import (
    POLICY_VIOLATION,
    UNSUPPORTED_DATA,
    IngestEvent,
    StreamStarted,
    StreamStopped,
    TrackStopped,
)

RATE = 8000
PERSPECTIVES = ("Participant", "Conference")
FRAME = RATE // 50  # samples per 20 ms message: sequenceId n starts at sample n * FRAME


class RingCentralStream(StreamCore):
    protocol = "ringcentral"

    def __init__(self, query: dict[str, str], headers: dict[str, str]) -> None:
        super().__init__(query, headers)
        self._stopped_tracks: set[str] = set()

    def handover(self) -> CoreState:
        return CoreState(tuple(self.tracks), stopped_tracks=tuple(sorted(self._stopped_tracks)))

    def resume(self, state: CoreState) -> None:
        super().resume(state)
        self._stopped_tracks = set(state.stopped_tracks)

    def handle(self, message: dict[str, Any]) -> list[IngestEvent]:
        event = member(message, "event", str, "message")
        if event == "Media":
            self.require_started("Media")
            return self._media(message)
        if event == "Connected":
            return []
        if event == "Start":
            return self.start(self._started(member(message, "metadata", dict, "Start message")))
        if event == "Stop":
            self.require_started("Stop")
            return self._stop(optional_text(message, "perspective", "Stop message"))
        raise BadMessage(POLICY_VIOLATION, f"unknown event {event[:40]!r}")

    def _started(self, metadata: dict[str, Any]) -> StreamStarted:
        content = optional_text(metadata, "contentType", "metadata") or "audio/x-mulaw"
        rate = number(metadata, "sampleRateHertz", "metadata") if "sampleRateHertz" in metadata else RATE
        if content != "audio/x-mulaw" or rate != RATE:
            raise BadMessage(UNSUPPORTED_DATA, f"media {content} {rate} Hz is not audio/x-mulaw 8000")
        fields = string_parameters({k: v for k, v in metadata.items() if not isinstance(v, dict | list)}, "metadata")
        parameters = {**self.query, **fields}
        call_id, session_id = parameters.get("callId", ""), parameters.get("sessionId", "")
        if not call_id:
            raise BadMessage(POLICY_VIOLATION, "metadata.callId is missing (and no callId query parameter)")
        platform_id = f"{call_id}-{session_id}" if session_id else call_id
        # RingCentral's own callId names the call; the bridge's is always callId-sessionId
        return StreamStarted(platform_id, parameters, PERSPECTIVES, "pcmu", RATE, platform_id)

    def _media(self, message: dict[str, Any]) -> list[IngestEvent]:
        perspective = member(message, "perspective", str, "Media message")
        if perspective not in PERSPECTIVES:
            raise BadMessage(POLICY_VIOLATION, "Media.perspective must be Participant or Conference")
        if perspective in self._stopped_tracks:
            return []
        sequence = number(message, "sequenceId", "Media message")
        payload = base64_audio(message, "media", "Media message", 1, RATE)
        return self.audio(perspective, sequence, sequence * FRAME, payload)

    def _stop(self, perspective: str) -> list[IngestEvent]:
        """One Stop per perspective; the stream ends when every perspective has stopped."""
        tracks = [perspective] if perspective in PERSPECTIVES else list(PERSPECTIVES)
        self._stopped_tracks.update(tracks)
        events: list[IngestEvent] = [TrackStopped(track) for track in tracks]
        if self._stopped_tracks >= set(PERSPECTIVES):
            self.stopped = True
            events.append(StreamStopped("the stream was stopped (RingCentral Stop for every perspective)"))
        return events
