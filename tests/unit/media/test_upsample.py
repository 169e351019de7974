"""The numpy upsampler: passband, image rejection, seamless blocks."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.media.upsample import IntegerUpsampler


def _tone(frequency: float, samples: int = 8000) -> np.ndarray:
    return (10000 * np.sin(2 * np.pi * frequency * np.arange(samples) / 8000)).astype(np.int16)


def _spectrum(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    steady = samples[rate // 10 :]
    magnitude = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    return np.fft.rfftfreq(len(steady), 1 / rate), magnitude


@pytest.mark.parametrize("factor", [2, 6])
@pytest.mark.parametrize("frequency", [300.0, 1000.0, 3400.0])
def test_telephone_band_passes_and_images_are_rejected(factor: int, frequency: float) -> None:
    upsampler = IntegerUpsampler(factor)
    pcm = _tone(frequency)
    out = np.concatenate([upsampler.process(pcm[i : i + 512]) for i in range(0, len(pcm), 512)])
    assert len(out) == len(pcm) * factor
    freqs, magnitude = _spectrum(out, 8000 * factor)
    assert freqs[magnitude.argmax()] == pytest.approx(frequency, abs=2)
    gain_db = 20 * np.log10(np.abs(out[8000 * factor // 10 :]).max() * 32768 / 10000)
    assert -1.2 < gain_db < 0.2
    image_db = 20 * np.log10(magnitude[freqs > 4200].max() / magnitude.max())
    assert image_db < -60


def test_blocks_join_exactly_as_one_long_block() -> None:
    pcm = _tone(1000.0, 4096)
    whole = IntegerUpsampler(2).process(pcm)
    blocks = IntegerUpsampler(2)
    pieces = np.concatenate([blocks.process(pcm[i : i + 512]) for i in range(0, len(pcm), 512)])
    assert np.allclose(whole, pieces, atol=1e-6)


def test_factor_one_only_scales() -> None:
    pcm = np.array([0, 16384, -32768], np.int16)
    assert IntegerUpsampler(1).process(pcm).tolist() == [0.0, 0.5, -1.0]


def test_calls_share_one_filter_per_factor_and_keep_their_own_history() -> None:
    """The filter is designed once per factor (a call's set-up no longer pays for it) and cannot be
    changed by one call under another; each call's samples stay its own."""
    first, second = IntegerUpsampler(3), IntegerUpsampler(3)
    assert first._matrix is second._matrix and not first._matrix.flags.writeable
    loud, quiet = _tone(1000.0, 1024), np.zeros(1024, np.int16)
    first.process(loud)
    assert not second.process(quiet).any()  # the neighbour's history did not leak in
    fresh = IntegerUpsampler(3).process(loud)
    assert np.array_equal(first.process(loud)[-512:], fresh[-512:])
