"""WAV (RIFF) headers for recordings that grow while the call runs (sans-IO).

A recording's header is written first with the sizes of what is on disk so far and
rewritten after every flush, so a file cut short by a crash plays up to its last flush.
:func:`repair` gives the header bytes for a file whose sizes are stale or zero.

Layouts (RIFF/WAVE as in Microsoft's "Multimedia Programming Interface and Data
Specifications 1.0", 1991, and RFC 2361 for the format tags):

- PCM (tag 1): ``RIFF size WAVE | fmt 16: tag ch rate byterate align bits | data size``: 44 bytes.
- µ-law (tag 7, ITU-T G.711): a non-PCM format has an 18-byte ``fmt`` (cbSize 0) and a
  ``fact`` chunk with the number of samples per channel: 58 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PCM = 1
MULAW = 7
_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")


@dataclass(frozen=True, slots=True)
class WavFormat:
    tag: int  # PCM or MULAW
    rate: int
    channels: int

    @property
    def bits(self) -> int:
        return 16 if self.tag == PCM else 8

    @property
    def block_align(self) -> int:
        return self.channels * self.bits // 8

    @property
    def byte_rate(self) -> int:
        return self.rate * self.block_align

    @property
    def header_size(self) -> int:
        return 44 if self.tag == PCM else 58


def header(fmt: WavFormat, data_bytes: int) -> bytes:
    """The whole header for ``data_bytes`` of samples after it (whole blocks only)."""
    data_bytes -= data_bytes % fmt.block_align
    if fmt.tag == PCM:
        body = _CHUNK.pack(b"fmt ", 16) + _FMT.pack(PCM, fmt.channels, fmt.rate, fmt.byte_rate, fmt.block_align, 16)
    else:
        frames = data_bytes // fmt.block_align
        fmt_chunk = _FMT.pack(fmt.tag, fmt.channels, fmt.rate, fmt.byte_rate, fmt.block_align, fmt.bits)
        body = _CHUNK.pack(b"fmt ", 18) + fmt_chunk + struct.pack("<H", 0)
        body += _CHUNK.pack(b"fact", 4) + struct.pack("<I", frames)
    body += _CHUNK.pack(b"data", data_bytes)
    return _RIFF.pack(b"RIFF", 4 + len(body) + data_bytes, b"WAVE") + body


class NotOurWav(ValueError):
    """The bytes are not a header this module writes."""


def parse(head: bytes) -> tuple[WavFormat, int]:
    """The format and the data size a header says (raises :class:`NotOurWav`)."""
    if len(head) < 44:
        raise NotOurWav("shorter than a WAV header")
    riff, _size, wave = _RIFF.unpack_from(head)
    name, length = _CHUNK.unpack_from(head, 12)
    if riff != b"RIFF" or wave != b"WAVE" or name != b"fmt " or length not in (16, 18):
        raise NotOurWav("not a RIFF/WAVE file with fmt first")
    tag, channels, rate, _byte_rate, _align, _bits = _FMT.unpack_from(head, 20)
    if tag not in (PCM, MULAW) or not 1 <= channels <= 8 or rate <= 0:
        raise NotOurWav(f"format tag {tag}, {channels} channel(s), {rate} Hz")
    fmt = WavFormat(tag, rate, channels)
    if len(head) < fmt.header_size:
        raise NotOurWav("header cut short")
    name, data_bytes = _CHUNK.unpack_from(head, fmt.header_size - 8)
    if name != b"data":
        raise NotOurWav("no data chunk where this module writes it")
    return fmt, data_bytes


def repair(head: bytes, file_size: int) -> tuple[bytes, int] | None:
    """For a file of ``file_size`` bytes starting with ``head``: the header its whole samples need
    and the file size to truncate to (a partly written sample is cut off), or None if it is right."""
    fmt, declared = parse(head)
    data_bytes = max(file_size - fmt.header_size, 0)
    data_bytes -= data_bytes % fmt.block_align
    if declared == data_bytes and file_size == fmt.header_size + data_bytes:
        return None
    return header(fmt, data_bytes), fmt.header_size + data_bytes


def duration_seconds(fmt: WavFormat, data_bytes: int) -> float:
    return data_bytes / fmt.byte_rate
