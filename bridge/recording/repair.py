"""Bring a recording cut short by a crash back to a valid file (run off the event loop).

A WAV whose header is older than its samples gets the sizes of its whole samples (a torn last
sample is cut off); a fragmented MP4 is cut after its last whole fragment. Both play up to the
last chunk the media worker handed to the disk before it died.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bridge.recording import fmp4, wav


@dataclass(frozen=True, slots=True)
class Repaired:
    size: int
    duration_seconds: float
    changed: bool


def repair_wav(path: Path) -> Repaired:
    with open(path, "r+b") as file:
        head = file.read(58)
        size = os.fstat(file.fileno()).st_size
        fmt, _declared = wav.parse(head)
        fixed = wav.repair(head, size)
        if fixed is not None:
            header, length = fixed
            file.seek(0)
            file.write(header)
            file.truncate(length)
            size = length
            os.fsync(file.fileno())
    return Repaired(size, wav.duration_seconds(fmt, size - fmt.header_size), fixed is not None)


def repair_mp4(path: Path, rate: int) -> Repaired:
    data = path.read_bytes()
    length = fmp4.complete_length(data)
    changed = length != len(data)
    if changed:
        with open(path, "r+b") as file:
            file.truncate(length)
            os.fsync(file.fileno())
    return Repaired(length, fmp4.sample_count(data[:length]) * fmp4.AAC_FRAME_SAMPLES / rate, changed)


def mp4_rate(path: Path) -> int:
    """The sample rate in the ``mdhd`` of our init segment."""
    with open(path, "rb") as file:
        head = file.read(4096)
    at = head.find(b"mdhd")
    if at < 0:
        raise ValueError("no mdhd box in the first 4 KiB")
    return int.from_bytes(head[at + 16 : at + 20], "big")  # version/flags, two times, then timescale


def repair(path: Path, kind: str) -> Repaired:
    """Repair ``path`` written as ``kind`` (wav, wav-ulaw or m4a); raises OSError/ValueError."""
    if kind == "m4a":
        return repair_mp4(path, mp4_rate(path))
    return repair_wav(path)
