"""RFC 4733 telephone-events: DTMF digits from RTP, never decoded as audio (sans-IO)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

DIGITS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    digit: str
    duration_ms: int


class DtmfDecoder:
    """Reports each event once: at its first end packet (E bit), or when the next event
    starts without an end having arrived (RFC 4733 section 2.5.1.3: the end may be lost)."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self._clock_rate = clock_rate
        self._current: tuple[int, int, int] | None = None  # (ssrc, timestamp, event)
        self._duration = 0
        self._reported: set[tuple[int, int]] = set()
        self.malformed = 0

    def receive(self, ssrc: int, timestamp: int, payload: bytes) -> list[DtmfEvent]:
        if len(payload) < 4:
            self.malformed += 1
            return []
        event, flags, duration = struct.unpack_from("!BBH", payload)
        end = bool(flags & 0x80)
        key = (ssrc, timestamp)
        if key in self._reported:
            return []  # retransmitted end packets of an event already reported
        events = []
        if self._current is not None and self._current[:2] != key:
            events += self._finish()  # a new event began: the old one's end was lost
        self._current, self._duration = (ssrc, timestamp, event), max(self._duration, duration)
        if end:
            events += self._finish()
        return events

    def _finish(self) -> list[DtmfEvent]:
        assert self._current is not None
        ssrc, timestamp, event = self._current
        self._reported.add((ssrc, timestamp))
        if len(self._reported) > 64:
            self._reported.pop()
        self._current = None
        duration_ms = self._duration * 1000 // self._clock_rate
        self._duration = 0
        if event >= len(DIGITS):
            return [DtmfEvent("flash" if event == 16 else f"event-{event}", duration_ms)]
        return [DtmfEvent(DIGITS[event], duration_ms)]
