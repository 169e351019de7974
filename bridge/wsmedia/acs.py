"""Azure Communication Services audio streaming, as the server receiving it (sans-IO).

Messages (ACS "Audio streaming" quickstart): ``AudioMetadata`` first (``subscriptionId``,
``encoding`` "PCM", ``sampleRate`` 16000 or 24000, ``channels`` 1, ``length`` bytes per
message), then ``AudioData`` (``timestamp`` ISO 8601, ``participantRawID``, ``data`` base64
16-bit little-endian PCM, ``silent``) and ``DtmfData``. Mixed audio has one track; unmixed
audio tags each participant (up to four) by ``participantRawID``. ACS sends no sequence
numbers: a message's place comes from its timestamp.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.wsmedia.core import BadMessage, CoreState, StreamCore, base64_audio, member, number, optional_text
from bridge.wsmedia.events import (
    INVALID_PAYLOAD,
    POLICY_VIOLATION,
    UNSUPPORTED_DATA,
    DigitReceived,
    IngestEvent,
    StreamStarted,
)

RATES = (16000, 24000)
MIXED = "mixed"


class AcsStream(StreamCore):
    protocol = "acs"

    def __init__(self, query: dict[str, str], headers: dict[str, str]) -> None:
        super().__init__(query, headers)
        self._origin: datetime | None = None  # the first AudioData's timestamp: sample 0
        self._rate = RATES[0]

    def handover(self) -> CoreState:
        origin = self._origin.isoformat() if self._origin is not None else ""
        return CoreState(tuple(self.tracks), rate=self._rate, origin=origin)

    def resume(self, state: CoreState) -> None:
        super().resume(state)
        self._rate = state.rate or self._rate
        self._origin = datetime.fromisoformat(state.origin) if state.origin else None

    def handle(self, message: dict[str, Any]) -> list[IngestEvent]:
        kind = member(message, "kind", str, "message")
        if kind == "AudioData":
            self.require_started("AudioData")
            return self._audio(member(message, "audioData", dict, "AudioData message"))
        if kind == "AudioMetadata":
            return self.start(self._started(member(message, "audioMetadata", dict, "AudioMetadata message")))
        if kind == "DtmfData":
            self.require_started("DtmfData")
            dtmf = member(message, "dtmfData", dict, "DtmfData message")
            digit = member(dtmf, "data", str, "dtmfData")
            return [DigitReceived(digit, optional_text(dtmf, "participantRawID", "dtmfData"))]
        raise BadMessage(POLICY_VIOLATION, f"unknown kind {kind[:40]!r}")

    def _started(self, metadata: dict[str, Any]) -> StreamStarted:
        encoding = optional_text(metadata, "encoding", "audioMetadata")
        rate = number(metadata, "sampleRate", "audioMetadata")
        channels = number(metadata, "channels", "audioMetadata") if "channels" in metadata else 1
        if encoding.upper() != "PCM" or rate not in RATES or channels != 1:
            shown = f"{encoding} {rate} Hz x{channels}"
            raise BadMessage(UNSUPPORTED_DATA, f"audio format {shown} is not PCM 16000 or 24000 Hz mono")
        self._rate = rate
        connection = self.headers.get("x-ms-call-connection-id", "")
        subscription = optional_text(metadata, "subscriptionId", "audioMetadata")
        parameters = {
            **self.query,
            "subscriptionId": subscription,
            "callConnectionId": connection,
            "correlationId": self.headers.get("x-ms-call-correlation-id", ""),
        }
        platform_id = connection or subscription
        return StreamStarted(platform_id, parameters, (), "l16", rate, self.query.get("callId") or platform_id)

    def _audio(self, data: dict[str, Any]) -> list[IngestEvent]:
        at = _timestamp(member(data, "timestamp", str, "audioData"))
        payload = base64_audio(data, "data", "audioData", 2, self._rate)
        if self._origin is None:
            self._origin = at
        elapsed = round((at - self._origin).total_seconds() * self._rate)
        sequence = round(elapsed / (len(payload) // 2))
        track = optional_text(data, "participantRawID", "audioData") or MIXED
        return self.audio(track, sequence, elapsed, payload)


def _timestamp(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BadMessage(INVALID_PAYLOAD, "audioData.timestamp is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise BadMessage(INVALID_PAYLOAD, "audioData.timestamp has no time zone")
    return at
