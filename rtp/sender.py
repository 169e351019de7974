"""Our outgoing RTP stream (sans-IO): 20 ms of silence in the call's codec, and RFC 4733 DTMF events on demand.

Silence is sent when the SDP direction is ``sendrecv``: many far ends (and SIP domains
with media timeouts) hang up a call whose other side sends no RTP. DTMF events use the
same SSRC and sequence space (RFC 4733 section 2.5): packets every 20 ms carrying the
event's start timestamp and its growing duration, then the end packet three times.
"""

from __future__ import annotations

import struct
from collections import deque

from rtp.g711 import PCMU_SILENCE
from rtp.packet import RtpPacket

FRAME_SECONDS = 0.020
FRAME_SAMPLES = 160
DIGITS = "0123456789*#ABCD"
TELEPHONE_EVENT_PT = 101
VOLUME = 10  # -10 dBm0
END_REPEATS = 3


class SilenceSender:
    """Produces one RTP packet per 20 ms of wall time, catching up after a stall."""

    def __init__(
        self,
        ssrc: int,
        first_sequence: int,
        first_timestamp: int,
        start: float,
        *,
        payload_type: int = 0,
        silence: bytes = bytes([PCMU_SILENCE]) * FRAME_SAMPLES,
        ticks_per_frame: int = FRAME_SAMPLES,
        event_payload_type: int = TELEPHONE_EVENT_PT,
    ) -> None:
        """``silence`` is one 20 ms frame of it in the call's codec; ``ticks_per_frame`` its RTP
        timestamp increment (160 for G.711 and G.722, whose RTP clock is 8000; 960 for Opus)."""
        self._packet = RtpPacket(
            payload_type=payload_type,
            sequence_number=first_sequence,
            timestamp=first_timestamp,
            ssrc=ssrc,
            payload=silence,
            marker=True,
        )
        self._audio_pt, self._silence, self._ticks = payload_type, silence, ticks_per_frame
        self._event_pt = event_payload_type
        self._next_send = start
        self._dtmf: deque[tuple[int, int, int]] = deque()  # (event, duration frames, gap frames)
        self._event: tuple[int, int, int, int] | None = None  # (event, start ts, frames done, frames total)
        self._gap = 0
        self.sent = 0
        self.dtmf_sent = 0

    def get_timer(self) -> float:
        """When the next packet is due."""
        return self._next_send

    @property
    def dtmf_pending(self) -> bool:
        """Digits queued or being sent: their packets want 20 ms pacing."""
        return bool(self._dtmf) or self._event is not None or self._gap > 0

    def send_dtmf(self, digits: str, duration_ms: int = 160, gap_ms: int = 60) -> None:
        """Queue digits (0-9, *, #, A-D); each plays ``duration_ms`` then ``gap_ms`` of silence."""
        for digit in digits.upper():
            self._dtmf.append((DIGITS.index(digit), max(duration_ms // 20, 2), max(gap_ms // 20, 1)))

    def poll(self, now: float, max_burst: int = 5) -> list[bytes]:
        """Packets due at ``now``; after a long stall, skip ahead rather than burst.

        Skipped frames advance the timestamp (the timeline keeps wall time) but not the sequence
        number, which counts packets sent (RFC 3550 section 5.1): the far end sees a jump in
        time, not loss.
        """
        datagrams: list[bytes] = []
        while self._next_send <= now:
            if len(datagrams) < max_burst:
                packets = self._frame()  # a frame's packets stay together (its sequence numbers are taken)
                datagrams += packets
                self.sent += len(packets)
            self._packet.timestamp = (self._packet.timestamp + self._ticks) & 0xFFFFFFFF
            self._next_send += FRAME_SECONDS
        return datagrams

    def _frame(self) -> list[bytes]:
        """The packet(s) for this 20 ms: silence, an event packet, or the end packets."""
        if self._event is None and self._gap == 0 and self._dtmf:
            event, frames, gap = self._dtmf.popleft()
            self._event, self._gap = (event, self._packet.timestamp, 0, frames), gap
        if self._event is None:
            self._gap = max(0, self._gap - 1)
            self._packet.payload_type, self._packet.payload = self._audio_pt, self._silence
            packet = self._packet.serialize()
            self._packet.marker = False
            self._next_sequence()
            return [packet]
        return self._event_packets()

    def _next_sequence(self) -> None:
        self._packet.sequence_number = (self._packet.sequence_number + 1) & 0xFFFF

    def _event_packets(self) -> list[bytes]:
        assert self._event is not None
        event, start_ts, done, total = self._event
        done += 1
        end = done >= total
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | VOLUME, min(done * self._ticks, 0xFFFF))
        event_packet = RtpPacket(self._event_pt, 0, start_ts, self._packet.ssrc, payload, marker=done == 1)
        self._event = None if end else (event, start_ts, done, total)
        packets = []
        for _ in range(END_REPEATS if end else 1):
            event_packet.sequence_number = self._packet.sequence_number
            packets.append(event_packet.serialize())
            self._next_sequence()
        if end:
            self.dtmf_sent += 1
        return packets
