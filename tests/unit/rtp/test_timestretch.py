"""Pitch-preserving stretch: one period removed or repeated, the tone's frequency unchanged, no click."""

from __future__ import annotations

import numpy as np

from rtp.timestretch import MAX_LAG, accelerate, best_lag, expand


def tone(n: int, frequency: float = 440.0, start: int = 0) -> np.ndarray:
    return (8000 * np.sin(2 * np.pi * frequency * (np.arange(start, start + n)) / 8000)).astype(np.int16)


def peak_hz(samples: np.ndarray, rate: int = 8000) -> float:
    padded = np.zeros(1 << 16)
    padded[: len(samples)] = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(padded))
    return float(np.argmax(spectrum) * rate / len(padded))


def largest_step(samples: np.ndarray) -> float:
    return float(np.abs(np.diff(samples.astype(float))).max())


def test_accelerate_removes_whole_periods_and_keeps_the_pitch() -> None:
    block = tone(512 + MAX_LAG)
    shorter = accelerate(block)
    assert shorter is not None
    removed = len(block) - len(shorter)
    periods = removed / (8000 / 440)
    assert removed >= 20 and abs(periods - round(periods)) < 0.05  # whole periods of the tone
    following = tone(400, start=len(block))  # what plays next, as it arrived
    joined = np.concatenate([shorter, following])
    assert abs(peak_hz(joined) - 440) < 0.5
    assert largest_step(joined) <= 1.1 * largest_step(tone(2000))  # no click at the cut or at the seam


def test_expand_repeats_one_period_and_keeps_the_pitch() -> None:
    block = tone(512)
    longer = expand(block)
    assert longer is not None and 20 <= len(longer) - len(block) <= MAX_LAG
    joined = np.concatenate([longer, tone(400, start=len(block))])
    assert abs(peak_hz(joined) - 440) < 0.5
    assert largest_step(joined) <= 1.1 * largest_step(tone(2000))


def test_noise_has_no_period_and_silence_is_cut_anywhere() -> None:
    noise = np.random.default_rng(5).normal(0, 3000, 632).astype(np.int16)
    assert accelerate(noise) is None and expand(noise[:512]) is None
    silence = np.zeros(632, np.int16)
    assert best_lag(silence.astype(np.float32), MAX_LAG) == MAX_LAG
    cut = accelerate(silence)
    assert cut is not None and len(cut) == 632 - MAX_LAG
