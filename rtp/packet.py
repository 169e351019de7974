"""RTP and RTCP packets (RFC 3550), parsed from and serialised to bytes.

Sans-IO: no sockets, no clocks. Malformed input raises :class:`PacketError`,
which callers turn into a counted drop, never a crash.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
_RTP_HEADER = struct.Struct("!BBHII")
_RTCP_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IIIIII")


class PacketError(ValueError):
    """A datagram that is not a valid RTP or RTCP packet."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet, RFC 3550 section 5.1."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)

    def serialize(self) -> bytes:
        """Encode the packet (no padding, no header extension)."""
        first = (RTP_VERSION << 6) | len(self.csrc)
        second = (int(self.marker) << 7) | self.payload_type
        header = _RTP_HEADER.pack(first, second, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        csrcs = b"".join(struct.pack("!I", c) for c in self.csrc)
        return header + csrcs + self.payload


def is_rtcp(data: bytes) -> bool:
    """Tell RTCP from RTP on a shared port, RFC 5761 section 4 (PT 192..223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse an RTP packet, RFC 3550 section 5.1 (CSRC, extension and padding)."""
    if len(data) < _RTP_HEADER.size:
        raise PacketError(f"RTP packet too short ({len(data)} bytes)")
    first, second, seq, ts, ssrc = _RTP_HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise PacketError(f"RTP version {first >> 6}, expected 2")
    offset = _RTP_HEADER.size
    csrc_count = first & 0x0F
    if len(data) < offset + 4 * csrc_count:
        raise PacketError("RTP CSRC list truncated")
    csrc = list(struct.unpack_from(f"!{csrc_count}I", data, offset))
    offset += 4 * csrc_count
    if first & 0x10:
        offset = _skip_extension(data, offset)
    end = len(data)
    if first & 0x20:
        end -= _padding_length(data, offset)
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrc=csrc,
    )


def _skip_extension(data: bytes, offset: int) -> int:
    """Skip a header extension, RFC 3550 section 5.3.1."""
    if len(data) < offset + 4:
        raise PacketError("RTP header extension truncated")
    (words,) = struct.unpack_from("!H", data, offset + 2)
    offset += 4 + 4 * words
    if len(data) < offset:
        raise PacketError("RTP header extension truncated")
    return offset


def _padding_length(data: bytes, offset: int) -> int:
    padding = data[-1]
    if padding == 0 or len(data) - padding < offset:
        raise PacketError("RTP padding length is invalid")
    return padding


@dataclass(slots=True)
class ReportBlock:
    """An RTCP reception report block, RFC 3550 section 6.4.1."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def serialize(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.last_sr,
            self.delay_since_last_sr,
        )


@dataclass(slots=True)
class ReceiverReport:
    """RTCP RR, RFC 3550 section 6.4.2."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc) + b"".join(r.serialize() for r in self.reports)
        length_words = (len(body) + _RTCP_HEADER.size) // 4 - 1
        header = _RTCP_HEADER.pack((RTP_VERSION << 6) | len(self.reports), 201, length_words)
        return header + body


def rtcp_packet_types(data: bytes) -> list[int]:
    """List the packet types of a compound RTCP packet, RFC 3550 section 6.1."""
    types: list[int] = []
    offset = 0
    while offset + _RTCP_HEADER.size <= len(data):
        first, packet_type, length_words = _RTCP_HEADER.unpack_from(data, offset)
        if first >> 6 != RTP_VERSION:
            raise PacketError("RTCP version is not 2")
        types.append(packet_type)
        offset += 4 * (length_words + 1)
    if offset != len(data):
        raise PacketError("RTCP compound packet length mismatch")
    return types
