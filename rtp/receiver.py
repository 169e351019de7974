"""The receive side of one call's audio stream (sans-IO).

Filters datagrams by source (RFC 3550 section 8.2 leaves source validation to
the application; we accept only the address the SDP answer named, with an
optional one-time re-latch for far ends behind NAT), parses them, keeps RFC 3550
statistics, and routes payloads: the negotiated audio codec to the playout buffer
(PCMU stored as it came; any other codec through ``decode``, which returns 16-bit samples
at the buffer's rate), comfort noise (RFC 3389, payload 13) as noise, telephone-events
(RFC 4733) to the DTMF decoder.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rtp.dtmf import DtmfDecoder, DtmfEvent
from rtp.g711 import ULAW_TO_LINEAR, decode_ulaw
from rtp.packet import PacketError, RtpPacket, is_rtcp, parse_rtp
from rtp.playout import PlayoutBuffer
from rtp.stats import ReceptionStats

Address = tuple[str, int]
PCMU_PAYLOAD_TYPE = 0
COMFORT_NOISE_PAYLOAD_TYPE = 13
TELEPHONE_EVENT_PAYLOAD_TYPE = 101
_PLAIN_RTP = 0x80  # version 2, no padding, no extension, no CSRC: the common case, parsed in one step
_SEQ_TS_SSRC = struct.Struct("!HII")


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
        audio_pt: int = PCMU_PAYLOAD_TYPE,
        also_audio_pt: int | None = None,
        also_event_pt: int | None = None,
        decode: Callable[[bytes], npt.NDArray[np.int16]] | None = None,
    ) -> None:
        self.remote = remote
        self._latch_allowed = latch
        self.buffer = playout or PlayoutBuffer(encoding="pcmu")
        self._coded = self.buffer.encoding == "pcmu"
        self.stats = ReceptionStats(clock_rate=clock_rate)
        self.counters = ReceiveCounters()
        self.dtmf = DtmfDecoder(clock_rate)
        self.dtmf_events: list[DtmfEvent] = []
        self.last_packet_at: float | None = None
        self.ssrc: int | None = None
        # RFC 3264 6.1: the far end sends with the numbers of *our* offer; some use their answer's.
        self._audio_pts = {audio_pt} | ({also_audio_pt} if also_audio_pt is not None else set())
        self._event_pts = {telephone_event_pt} | ({also_event_pt} if also_event_pt is not None else set())
        self._decode = decode  # None: PCMU
        self._fast_pt = PCMU_PAYLOAD_TYPE if decode is None and audio_pt == PCMU_PAYLOAD_TYPE else -1
        self.decode_failures = 0

    def set_remote(self, remote: Address) -> None:
        """Follow a new far-end address (e.g. from a re-INVITE)."""
        self.remote = remote

    def datagram_received(self, data: bytes, source: Address, now: float) -> None:
        """Handle one datagram received at monotonic time ``now``."""
        if source != self.remote and not self._accept_source(source):
            self.counters.foreign_source += 1
            return
        if len(data) > 12 and data[0] == _PLAIN_RTP and data[1] & 0x7F == self._fast_pt:
            self._plain_pcmu(data, now)
            return
        if is_rtcp(data):
            self.counters.rtcp += 1
            return
        try:
            packet = parse_rtp(data)
        except PacketError:
            self.counters.malformed += 1
            return
        pt = packet.payload_type
        if pt not in self._audio_pts and pt not in self._event_pts and pt != COMFORT_NOISE_PAYLOAD_TYPE:
            self.counters.other_payload += 1
            return
        self._account(packet, len(data), now)
        self._route(packet, now)

    def _plain_pcmu(self, data: bytes, now: float) -> None:
        """The fast path: a PCMU packet with a plain 12-byte header (RFC 3550 5.1), no objects made."""
        sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        self._count(ssrc, sequence, timestamp, len(data), now)
        payload = memoryview(data)[12:] if self._coded else ULAW_TO_LINEAR[np.frombuffer(data, np.uint8, offset=12)]
        self.buffer.push(ssrc, timestamp, payload, now)

    def _account(self, packet: RtpPacket, size: int, now: float) -> None:
        self._count(packet.ssrc, packet.sequence_number, packet.timestamp, size, now)

    def _count(self, ssrc: int, sequence: int, timestamp: int, size: int, now: float) -> None:
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self.counters.ssrc_changes += 1
                self.stats.restart()
            self.ssrc = ssrc
        counters = self.counters
        counters.packets += 1
        counters.bytes += size
        self.last_packet_at = now
        self.stats.update(sequence, timestamp, now)

    def _route(self, packet: RtpPacket, now: float) -> None:
        if packet.payload_type in self._audio_pts:
            self._push_audio(packet, now)
        elif packet.payload_type == COMFORT_NOISE_PAYLOAD_TYPE:
            self.counters.comfort_noise += 1
            level = packet.payload[0] & 0x7F if packet.payload else 127
            self.buffer.push_comfort_noise(packet.ssrc, packet.timestamp, level, now)
        else:
            self.counters.telephone_events += 1
            self.dtmf_events += self.dtmf.receive(packet.ssrc, packet.timestamp, packet.payload)

    def _push_audio(self, packet: RtpPacket, now: float) -> None:
        if self._decode is None:
            payload = packet.payload if self._coded else decode_ulaw(packet.payload)
            self.buffer.push(packet.ssrc, packet.timestamp, payload, now)
            return
        try:
            samples = self._decode(packet.payload)
        except ValueError:  # a payload the decoder rejects: concealed like a lost packet
            self.decode_failures += 1
            return
        if len(samples):
            self.buffer.push(packet.ssrc, packet.timestamp, samples, now)

    def _accept_source(self, source: Address) -> bool:
        if source == self.remote:
            return True
        if self._latch_allowed:
            self._latch_allowed = False
            self.remote = source
            return True
        return False
