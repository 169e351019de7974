"""The encoder the worker opens for an output, judged by FFmpeg's AAC decoder: telephone-band input
keeps its band (and nothing above it is coded), wider input keeps its width."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt
import pytest

from bridge.media.encoder import new_encoder
from bridge.model import OutputSpec


def _decoded_spectrum(input_rate: int, rate: int, tones: list[float]) -> tuple[npt.NDArray[np.float64], float]:
    seconds = np.arange(input_rate * 3) / input_rate
    pcm = sum(4000 * np.sin(2 * np.pi * f * seconds) for f in tones)
    encoder = new_encoder(OutputSpec("aac", rate, 64000, "fast"), input_rate)
    batch = encoder.input_batch
    bodies = [
        b for s in range(0, len(pcm) - batch + 1, batch) for _, b in encoder.encode(pcm[s : s + batch].astype(np.int16))
    ]
    decoder = av.CodecContext.create("aac", "r")
    header = encoder.sequence_header()
    assert header is not None
    decoder.extradata = header[2:]
    audio = np.concatenate([f.to_ndarray()[0] for body in bodies for f in decoder.decode(av.Packet(body[2:]))])[
        rate // 2 :
    ]
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return spectrum, rate / len(audio)


def level_db(spectrum: npt.NDArray[np.float64], hz_per_bin: float, frequency: float) -> float:
    around = spectrum[int((frequency - 30) / hz_per_bin) : int((frequency + 30) / hz_per_bin)]
    return float(20 * np.log10(around.max() / spectrum.max()))


@pytest.mark.parametrize(("rate", "floor_db"), [(16000, -115.0), (48000, -104.0)])
def test_telephone_band_input_keeps_its_band_and_nothing_above_is_coded(rate: int, floor_db: float) -> None:
    """The band passes; above the encoder's 4.4 kHz low-pass the decoder finds nothing but rounding
    (without it, FFmpeg codes the upsampler's -100 dB residue there: -105 and -98 dB measured)."""
    spectrum, step = _decoded_spectrum(8000, rate, [1000.0, 3400.0])
    assert level_db(spectrum, step, 1000.0) > -1 and level_db(spectrum, step, 3400.0) > -3
    above = spectrum[int(4600 / step) :]
    assert 20 * np.log10(above.max() / spectrum.max()) < floor_db


def test_wideband_input_keeps_its_width() -> None:
    spectrum, step = _decoded_spectrum(16000, 16000, [1000.0, 6500.0])
    assert level_db(spectrum, step, 6500.0) > -3  # no telephone low-pass on G.722 or ACS audio
