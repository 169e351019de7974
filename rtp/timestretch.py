"""Pitch-preserving time-stretch by one pitch period (sans-IO), in the spirit of WebRTC NetEQ.

To make playout earlier ("accelerate") one pitch period is removed; to make it later
("expand") one is repeated. The period is found by normalised cross-correlation of a short
window with the signal one lag later; the cut is hidden by a linear cross-fade over that
period, so a periodic signal (a tone, voiced speech) comes out with the same pitch and no
click — unlike resampling, which shifts the pitch by the stretch ratio. Silence and very
quiet audio (a speech pause) can be cut anywhere, so the longest lag is used there.
Noise-like audio (unvoiced speech) has no period: the caller tries again a little later.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]
MIN_LAG = 20  # 2.5 ms at 8 kHz (400 Hz; a higher pitch is matched at a multiple of its period)
MAX_LAG = 120  # 15 ms (67 Hz, the lowest speaking voice)
WINDOW = 80  # 10 ms compared at each lag
MIN_CORRELATION = 0.9
QUIET_RMS = 60.0  # about -55 dBFS: a pause, cut anywhere


def best_lag(x: npt.NDArray[np.float32], max_lag: int) -> int | None:
    """The lag in [MIN_LAG, max_lag] at which ``x`` repeats best, or None if it does not repeat."""
    max_lag = min(max_lag, len(x) - WINDOW)
    if max_lag < MIN_LAG:
        return None
    head = x[:WINDOW]
    energy = float(np.dot(head, head))
    if energy / WINDOW < QUIET_RMS**2:
        return max_lag
    candidates = np.lib.stride_tricks.sliding_window_view(x[MIN_LAG : max_lag + WINDOW], WINDOW)
    correlation = candidates @ head
    norms = np.sqrt(np.einsum("ij,ij->i", candidates, candidates) * energy) + 1e-9
    scores = correlation / norms
    best = int(np.argmax(scores))
    return best + MIN_LAG if scores[best] >= MIN_CORRELATION else None


def _ramp(length: int) -> npt.NDArray[np.float32]:
    ramp: npt.NDArray[np.float32] = ((np.arange(length) + 0.5) / length).astype(np.float32)
    return ramp


def _period(x: npt.NDArray[np.float32], max_lag: int, step: int) -> int | None:
    """The pitch period of ``x`` in samples; searched on every ``step``-th sample (audio above 8 kHz)."""
    lag = best_lag(x[::step] if step > 1 else x, min(max_lag // step, (len(x) // step - WINDOW) // 2))
    return lag * step if lag is not None else None


def accelerate(block: Samples, max_lag: int = MAX_LAG, step: int = 1) -> Samples | None:
    """``block`` shortened by one pitch period (cross-faded), or None if no period is found.

    ``step`` is the sample rate over 8 kHz (2 at 16 kHz): the search runs at 8 kHz, the cut at full rate.
    """
    x = block.astype(np.float32)
    lag = _period(x, max_lag, step)
    if lag is None:
        return None
    ramp = _ramp(lag)
    joined = x[:lag] * (1 - ramp) + x[lag : 2 * lag] * ramp
    return np.concatenate([joined, x[2 * lag :]]).astype(np.int16)


def expand(block: Samples, max_lag: int = MAX_LAG, step: int = 1) -> Samples | None:
    """``block`` lengthened by one pitch period (repeated, cross-faded), or None if no period is found."""
    x = block.astype(np.float32)
    lag = _period(x, max_lag, step)
    if lag is None:
        return None
    ramp = _ramp(lag)
    joined = x[lag : 2 * lag] * (1 - ramp) + x[:lag] * ramp
    return np.concatenate([x[: 2 * lag], joined, x[2 * lag :]]).astype(np.int16)
