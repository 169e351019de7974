"""H.264 byte-stream helpers (sans-IO): Annex B NAL units, AVCC framing, the decoder configuration.

ITU-T H.264 Annex B (start codes), section 7.4.1 (nal_unit_type), and ISO/IEC 14496-15
section 5.3.3.1 (AVCDecoderConfigurationRecord, 4-byte NAL unit lengths) — what FLV's
AVC video tags carry (FLV spec v10, annex E.4.3.1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

NAL_SLICE, NAL_IDR, NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD = 1, 5, 6, 7, 8, 9
LENGTH_SIZE = 4


class H264Error(ValueError):
    """A byte stream or parameter set we cannot use."""


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 or 00 00 00 01 removed)."""
    units: list[bytes] = []
    start = _next_start(data, 0)
    while start is not None:
        begin = start[1]
        following = _next_start(data, begin)
        end = following[0] if following is not None else len(data)
        unit = data[begin:end].rstrip(b"\x00") if following is not None else data[begin:end]
        if unit:
            units.append(unit)
        start = following
    return units


def _next_start(data: bytes, offset: int) -> tuple[int, int] | None:
    """(index of the start code, index of the NAL unit after it), or None."""
    index = data.find(b"\x00\x00\x01", offset)
    if index < 0:
        return None
    return index, index + 3


def to_avcc(nals: Iterable[bytes]) -> bytes:
    """NAL units with 4-byte big-endian lengths (ISO/IEC 14496-15 section 5.3.4.2)."""
    return b"".join(struct.pack("!I", len(nal)) + nal for nal in nals)


def decoder_configuration(sps: bytes, pps: bytes) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 section 5.3.3.1.2) for one SPS and one PPS.

    Profile, compatibility flags and level are bytes 1-3 of the SPS. For the High
    profiles the record may carry a chroma/bit-depth extension; we publish Main or
    Baseline, for which it does not exist.
    """
    if len(sps) < 4 or nal_type(sps) != NAL_SPS or not pps or nal_type(pps) != NAL_PPS:
        raise H264Error("need one SPS (type 7) of at least 4 bytes and one PPS (type 8)")
    header = bytes([1, sps[1], sps[2], sps[3], 0xFC | (LENGTH_SIZE - 1), 0xE0 | 1])
    return header + struct.pack("!H", len(sps)) + sps + bytes([1]) + struct.pack("!H", len(pps)) + pps


def parameter_sets(nals: Iterable[bytes]) -> tuple[bytes, bytes]:
    """The first SPS and PPS among ``nals``."""
    sps = pps = b""
    for nal in nals:
        if nal_type(nal) == NAL_SPS and not sps:
            sps = nal
        elif nal_type(nal) == NAL_PPS and not pps:
            pps = nal
    if not sps or not pps:
        raise H264Error("no SPS and PPS found")
    return sps, pps
