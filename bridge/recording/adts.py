"""ADTS framing of raw AAC-LC frames (ISO/IEC 13818-7 §6.2, ISO/IEC 14496-3 §1.A.2): what a
browser's ``<audio>`` plays as ``audio/aac`` from a live HTTP stream (sans-IO)."""

from __future__ import annotations

SAMPLING_INDEX = {96000: 0, 88200: 1, 64000: 2, 48000: 3, 44100: 4, 32000: 5, 24000: 6, 22050: 7,
                  16000: 8, 12000: 9, 11025: 10, 8000: 11, 7350: 12}  # fmt: skip
AAC_LC = 2  # audio object type; ADTS carries it minus one
HEADER_BYTES = 7


def adts_header(frame_bytes: int, rate: int, channels: int) -> bytes:
    """The 7-byte header (no CRC) of one raw AAC-LC frame of ``frame_bytes``."""
    length = frame_bytes + HEADER_BYTES
    if length >= 1 << 13:
        raise ValueError(f"an AAC frame of {frame_bytes} bytes does not fit an ADTS frame")
    index = SAMPLING_INDEX[rate]
    return bytes(
        [
            0xFF,
            0xF1,  # syncword, MPEG-4, layer 0, protection absent
            ((AAC_LC - 1) << 6) | (index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,  # buffer fullness 0x7FF (variable rate)
            0xFC,  # ...fullness, one raw data block
        ]
    )


def adts(frames: list[bytes], rate: int, channels: int) -> bytes:
    return b"".join(adts_header(len(frame), rate, channels) + frame for frame in frames)
