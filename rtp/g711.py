"""G.711 µ-law (ITU-T G.711) decoding and encoding with lookup tables."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PCMU_SILENCE = 0xFF
"""The µ-law code of a zero sample."""

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    sign = inverted & 0x80
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _encode_one(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


ULAW_TO_LINEAR = _build_decode_table()
_LINEAR_TO_ULAW = np.array([_encode_one(s) for s in range(-32768, 32768)], dtype=np.uint8)


def decode_ulaw(payload: bytes) -> npt.NDArray[np.int16]:
    """Decode µ-law bytes to 16-bit linear samples."""
    return ULAW_TO_LINEAR[np.frombuffer(payload, dtype=np.uint8)]


def encode_ulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear samples to µ-law bytes."""
    return _LINEAR_TO_ULAW[samples.astype(np.int32) + 32768].tobytes()
