"""The receive side of one call's audio stream (sans-IO).

Filters datagrams by source (RFC 3550 section 8.2 leaves source validation to
the application; we accept only the address the SDP answer named, with an
optional one-time re-latch for far ends behind NAT), parses them, keeps RFC 3550
statistics and feeds the jitter buffer with PCMU payloads.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtp.jitter import JitterBuffer
from rtp.packet import PacketError, is_rtcp, parse_rtp
from rtp.stats import ReceptionStats

Address = tuple[str, int]
PCMU_PAYLOAD_TYPE = 0


@dataclass(slots=True)
class ReceiveCounters:
    """Datagrams seen on the RTP port and what became of them."""

    packets: int = 0
    bytes: int = 0
    foreign_source: int = 0
    malformed: int = 0
    other_payload: int = 0
    rtcp: int = 0
    ssrc_changes: int = 0


class RtpReceiver:
    """Accepts PCMU RTP for one call and keeps its playout buffer and stats."""

    def __init__(
        self,
        remote: Address,
        *,
        latch: bool = False,
        jitter_buffer: JitterBuffer | None = None,
        clock_rate: int = 8000,
    ) -> None:
        self.remote = remote
        self._latch_allowed = latch
        self.buffer = jitter_buffer or JitterBuffer()
        self.stats = ReceptionStats(clock_rate=clock_rate)
        self.counters = ReceiveCounters()
        self.last_packet_at: float | None = None
        self._ssrc: int | None = None

    def set_remote(self, remote: Address) -> None:
        """Follow a new far-end address (e.g. from a re-INVITE)."""
        self.remote = remote

    def datagram_received(self, data: bytes, source: Address, now: float) -> None:
        """Handle one datagram received at monotonic time ``now``."""
        if not self._accept_source(source):
            self.counters.foreign_source += 1
            return
        if is_rtcp(data):
            self.counters.rtcp += 1
            return
        try:
            packet = parse_rtp(data)
        except PacketError:
            self.counters.malformed += 1
            return
        if packet.payload_type != PCMU_PAYLOAD_TYPE:
            self.counters.other_payload += 1
            return
        if packet.ssrc != self._ssrc:
            self._follow_ssrc(packet.ssrc)
        self.counters.packets += 1
        self.counters.bytes += len(data)
        self.last_packet_at = now
        self.stats.update(packet.sequence_number, packet.timestamp, now)
        self.buffer.push(packet.timestamp, packet.payload)

    def _accept_source(self, source: Address) -> bool:
        if source == self.remote:
            return True
        if self._latch_allowed:
            self._latch_allowed = False
            self.remote = source
            return True
        return False

    def _follow_ssrc(self, ssrc: int) -> None:
        if self._ssrc is not None:
            self.counters.ssrc_changes += 1
            self.buffer.reset()
            self.stats.restart()
        self._ssrc = ssrc
