"""Sends 20 ms PCMU silence to the far end (sans-IO).

Used when the SDP direction is ``sendrecv``: many far ends (and SIP domains
with media timeouts) hang up a call whose other side sends no RTP.
"""

from __future__ import annotations

from rtp.g711 import PCMU_SILENCE
from rtp.packet import RtpPacket

FRAME_SECONDS = 0.020
FRAME_SAMPLES = 160


class SilenceSender:
    """Produces one RTP packet per 20 ms of wall time, catching up after a stall."""

    def __init__(self, ssrc: int, first_sequence: int, first_timestamp: int, start: float) -> None:
        self._packet = RtpPacket(
            payload_type=0,
            sequence_number=first_sequence,
            timestamp=first_timestamp,
            ssrc=ssrc,
            payload=bytes([PCMU_SILENCE]) * FRAME_SAMPLES,
            marker=True,
        )
        self._next_send = start
        self.sent = 0

    def get_timer(self) -> float:
        """When the next packet is due."""
        return self._next_send

    def poll(self, now: float, max_burst: int = 5) -> list[bytes]:
        """Packets due at ``now``; after a long stall, skip ahead rather than burst."""
        datagrams: list[bytes] = []
        while self._next_send <= now:
            if len(datagrams) < max_burst:
                datagrams.append(self._packet.serialize())
                self.sent += 1
                self._packet.marker = False
            self._packet.sequence_number = (self._packet.sequence_number + 1) & 0xFFFF
            self._packet.timestamp = (self._packet.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
            self._next_send += FRAME_SECONDS
        return datagrams
