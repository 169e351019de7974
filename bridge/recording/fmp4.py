"""Fragmented MP4 for AAC recordings (sans-IO): an init segment, then one fragment per flush.

ISO/IEC 14496-12 (ISO base media file format) boxes, the AAC sample entry of ISO/IEC 14496-14
(``mp4a`` with an ``esds`` holding the ES_Descriptor of ISO/IEC 14496-1 §7.2.6.5 and the
AudioSpecificConfig of ISO/IEC 14496-3 §1.6.2.1). The ``moov`` has no samples (``mvex``/``trex``
announce fragments, §8.8); each fragment is ``moof`` (``mfhd``, ``traf`` with ``tfhd``
default-base-is-moof, ``tfdt`` and ``trun`` with sample sizes) followed by its ``mdat``. A file
cut short by a crash is valid up to its last whole fragment: :func:`complete_length` finds it.

The AAC frames are the published ones (no re-encode): 1024 samples each, so every sample's
duration is 1024 in a timescale of the sample rate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

AAC_FRAME_SAMPLES = 1024
_UNITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
TRACK_ID = 1


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags), *parts)


def _descriptor(tag: int, body: bytes) -> bytes:
    """An MPEG-4 descriptor (ISO/IEC 14496-1 §8.3.3): tag, then the size in 7-bit groups."""
    size, encoded = len(body), [len(body) & 0x7F]
    while size > 0x7F:
        size >>= 7
        encoded.insert(0, 0x80 | (size & 0x7F))
    return bytes([tag, *encoded]) + body


def _esds(asc: bytes, bitrate: int) -> bytes:
    decoder_specific = _descriptor(0x05, asc)
    # objectTypeIndication 0x40 (ISO/IEC 14496-3 audio), streamType 5 (audio) << 2 | upStream 0 | reserved 1
    config = struct.pack(">BB3sII", 0x40, 0x15, b"\0\0\0", bitrate, bitrate) + decoder_specific
    es = struct.pack(">HB", 0, 0) + _descriptor(0x04, config) + _descriptor(0x06, b"\x02")
    return full_box(b"esds", 0, 0, _descriptor(0x03, es))


def _mp4a(asc: bytes, rate: int, channels: int, bitrate: int) -> bytes:
    entry = bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HHHHI", channels, 16, 0, 0, rate << 16)
    return box(b"mp4a", entry, _esds(asc, bitrate))


def _empty_tables() -> bytes:
    no_entries = struct.pack(">I", 0)
    return (
        full_box(b"stts", 0, 0, no_entries)
        + full_box(b"stsc", 0, 0, no_entries)
        + full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0))
        + full_box(b"stco", 0, 0, no_entries)
    )


def init_segment(asc: bytes, rate: int, channels: int, bitrate: int = 0) -> bytes:
    """``ftyp`` + ``moov`` for one AAC track (``asc``: the AudioSpecificConfig)."""
    ftyp = box(b"ftyp", b"M4A ", struct.pack(">I", 0), b"M4A ", b"isom", b"iso6", b"mp41")
    # mvhd v0: times, timescale, duration 0 (fragments follow), rate 1.0, volume 1.0, matrix, next track
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIIIIH", 0, 0, rate, 0, 0x00010000, 0x0100),
        bytes(10),
        _UNITY_MATRIX,
        bytes(24),
        struct.pack(">I", TRACK_ID + 1),
    )
    # tkhd v0, flags enabled|in_movie: times, track 1, duration 0, layer, group, volume 1.0, matrix, no size
    tkhd = full_box(
        b"tkhd",
        0,
        3,
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),
        bytes(8),
        struct.pack(">HHHH", 0, 0, 0x0100, 0),
        _UNITY_MATRIX,
        struct.pack(">II", 0, 0),
    )
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, rate, 0, 0x55C4, 0))  # language "und"
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"soun"), bytes(12), b"SoundHandler\0")
    dref = full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1), _mp4a(asc, rate, channels, bitrate))
    minf = box(b"minf", full_box(b"smhd", 0, 0, bytes(4)), box(b"dinf", dref), box(b"stbl", stsd, _empty_tables()))
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, AAC_FRAME_SAMPLES, 0, 0))
    return ftyp + box(b"moov", mvhd, trak, box(b"mvex", trex))


def fragment(sequence: int, base_time: int, frames: list[bytes]) -> bytes:
    """One ``moof`` + ``mdat`` holding ``frames`` (raw AAC), the first at ``base_time`` samples."""
    # tfhd flags: default-sample-duration-present 0x08, default-base-is-moof 0x020000
    tfhd = full_box(b"tfhd", 0, 0x020008, struct.pack(">II", TRACK_ID, AAC_FRAME_SAMPLES))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_time))
    sizes = b"".join(struct.pack(">I", len(frame)) for frame in frames)
    trun_size = 8 + 4 + 8 + len(sizes)
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    # trun flags: data-offset-present 0x01, sample-size-present 0x200; the data starts after mdat's header
    trun = full_box(b"trun", 0, 0x000201, struct.pack(">Ii", len(frames), moof_size + 8), sizes)
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    return moof + box(b"mdat", *frames)


def top_level_boxes(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset, size) of each whole top-level box; stops at the first cut-short one."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size < 8 or offset + size > len(data):
            return
        yield kind, offset, size
        offset += size


def complete_length(data: bytes) -> int:
    """How many leading bytes are whole boxes ending with a whole fragment (``moof`` + ``mdat``)."""
    end, pending_moof = 0, False
    for kind, offset, size in top_level_boxes(data):
        if kind == b"moof":
            pending_moof = True
            continue
        if kind == b"mdat" and not pending_moof:
            break
        pending_moof = False
        end = offset + size
    return end


def sample_count(data: bytes) -> int:
    """The AAC frames in the whole fragments of ``data`` (from each ``trun``'s sample count)."""
    count = 0
    for kind, offset, size in top_level_boxes(data[: complete_length(data)]):
        if kind == b"moof":
            trun = data.find(b"trun", offset, offset + size)
            if trun > 0:
                count += struct.unpack_from(">I", data, trun + 8)[0]
    return count
