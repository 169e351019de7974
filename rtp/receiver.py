"""The receive side of one call's audio stream (sans-IO).

Filters datagrams by source (RFC 3550 section 8.2 leaves source validation to
the application; we accept only the address the SDP answer named, with an
optional one-time re-latch for far ends behind NAT), parses them, keeps RFC 3550
statistics, and routes payloads: PCMU to the playout buffer, comfort noise
(RFC 3389, payload 13) as noise, telephone-events (RFC 4733) to the DTMF decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtp.dtmf import DtmfDecoder, DtmfEvent
from rtp.g711 import decode_ulaw
from rtp.packet import PacketError, RtpPacket, is_rtcp, parse_rtp
from rtp.playout import PlayoutBuffer
from rtp.stats import ReceptionStats

Address = tuple[str, int]
PCMU_PAYLOAD_TYPE = 0
COMFORT_NOISE_PAYLOAD_TYPE = 13
TELEPHONE_EVENT_PAYLOAD_TYPE = 101


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
    comfort_noise: int = 0
    telephone_events: int = 0


class RtpReceiver:
    """Accepts RTP for one call and keeps its playout buffer, DTMF decoder and stats."""

    def __init__(
        self,
        remote: Address,
        *,
        latch: bool = False,
        playout: PlayoutBuffer | None = None,
        telephone_event_pt: int = TELEPHONE_EVENT_PAYLOAD_TYPE,
        clock_rate: int = 8000,
    ) -> None:
        self.remote = remote
        self._latch_allowed = latch
        self.buffer = playout or PlayoutBuffer()
        self.stats = ReceptionStats(clock_rate=clock_rate)
        self.counters = ReceiveCounters()
        self.dtmf = DtmfDecoder(clock_rate)
        self.dtmf_events: list[DtmfEvent] = []
        self.last_packet_at: float | None = None
        self.ssrc: int | None = None
        self._telephone_event_pt = telephone_event_pt

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
        if packet.payload_type not in (PCMU_PAYLOAD_TYPE, COMFORT_NOISE_PAYLOAD_TYPE, self._telephone_event_pt):
            self.counters.other_payload += 1
            return
        self._account(packet, len(data), now)
        self._route(packet, now)

    def _account(self, packet: RtpPacket, size: int, now: float) -> None:
        if packet.ssrc != self.ssrc:
            if self.ssrc is not None:
                self.counters.ssrc_changes += 1
                self.stats.restart()
            self.ssrc = packet.ssrc
        self.counters.packets += 1
        self.counters.bytes += size
        self.last_packet_at = now
        self.stats.update(packet.sequence_number, packet.timestamp, now)

    def _route(self, packet: RtpPacket, now: float) -> None:
        if packet.payload_type == PCMU_PAYLOAD_TYPE:
            self.buffer.push(packet.ssrc, packet.timestamp, decode_ulaw(packet.payload), now)
        elif packet.payload_type == COMFORT_NOISE_PAYLOAD_TYPE:
            self.counters.comfort_noise += 1
            level = packet.payload[0] & 0x7F if packet.payload else 127
            self.buffer.push_comfort_noise(packet.ssrc, packet.timestamp, level, now)
        else:
            self.counters.telephone_events += 1
            self.dtmf_events += self.dtmf.receive(packet.ssrc, packet.timestamp, packet.payload)

    def _accept_source(self, source: Address) -> bool:
        if source == self.remote:
            return True
        if self._latch_allowed:
            self._latch_allowed = False
            self.remote = source
            return True
        return False
