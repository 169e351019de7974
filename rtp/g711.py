"""G.711 µ-law and A-law (ITU-T G.711) decoding, µ-law encoding, with lookup tables."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PCMU_SILENCE = 0xFF
"""The µ-law code of a zero sample."""
PCMA_SILENCE = 0xD5
"""The A-law code of a zero sample (+0, with the even bits inverted)."""

_BIAS = 0x84
_CLIP = 8159


def _build_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    sign = inverted & 0x80
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _build_alaw_table() -> npt.NDArray[np.int16]:
    """ITU-T G.711 table 1b (A-law), as in the reference decoder of ITU-T G.191."""
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (codes & 0x70) >> 4
    magnitude = ((codes & 0x0F) << 4) + 8
    magnitude = np.where(segment >= 1, (magnitude + 0x100) << np.maximum(segment - 1, 0), magnitude)
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _encode_one(sample: int) -> int:
    """The reference encoder of ITU-T G.191 (14-bit magnitude, bias 33, clip 8159)."""
    value = sample >> 2
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, _CLIP) + (_BIAS >> 2)
    segment = next((i for i, end in enumerate(_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


ULAW_TO_LINEAR = _build_decode_table()
ALAW_TO_LINEAR = _build_alaw_table()
_LINEAR_TO_ULAW = np.array([_encode_one(s) for s in range(-32768, 32768)], dtype=np.uint8)


def decode_ulaw(payload: bytes) -> npt.NDArray[np.int16]:
    """Decode µ-law bytes to 16-bit linear samples."""
    return ULAW_TO_LINEAR[np.frombuffer(payload, dtype=np.uint8)]


def decode_alaw(payload: bytes | memoryview) -> npt.NDArray[np.int16]:
    """Decode A-law bytes to 16-bit linear samples."""
    return ALAW_TO_LINEAR[np.frombuffer(payload, dtype=np.uint8)]


def encode_ulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear samples to µ-law bytes."""
    return _LINEAR_TO_ULAW[samples.astype(np.int32) + 32768].tobytes()
