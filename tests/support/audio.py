"""What a player receives: pull an RTMP stream with PyAV and analyse the audio."""

from __future__ import annotations

import time
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt


@dataclass
class PulledAudio:
    codec: str
    sample_rate: int
    samples: npt.NDArray[np.float32]
    max_timestamp_gap_ms: float
    ended: bool
    first_ms: float = 0.0
    last_end_ms: float = 0.0

    @property
    def timeline_seconds(self) -> float:
        """From the first frame's timestamp to the end of the last frame."""
        return (self.last_end_ms - self.first_ms) / 1000

    def segment(self, start: float, end: float) -> npt.NDArray[np.float32]:
        """Samples between ``start`` and ``end`` seconds of the stream."""
        return self.samples[int(start * self.sample_rate) : int(end * self.sample_rate)]

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def pull_audio(url: str, seconds: float, open_timeout: float = 15.0) -> PulledAudio:
    """Read ``seconds`` of decoded audio (or until the stream ends) from an RTMP URL."""
    container = av.open(url, options={"rw_timeout": str(int(open_timeout * 1e6))}, timeout=open_timeout)
    try:
        stream = container.streams.audio[0]
        chunks: list[npt.NDArray[np.float32]] = []
        total = 0
        gap = 0.0
        last_end: float | None = None
        first: float | None = None
        ended = True
        deadline = time.monotonic() + seconds + open_timeout
        for frame in container.decode(stream):
            data = frame.to_ndarray().astype(np.float32)
            chunks.append(data.mean(axis=0) if data.ndim > 1 else data)
            if frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base) * 1000
                first = start if first is None else first
                if last_end is not None:
                    gap = max(gap, start - last_end)
                last_end = start + frame.samples * 1000 / frame.sample_rate
            total += frame.samples
            if total >= seconds * frame.sample_rate or time.monotonic() > deadline:
                ended = False
                break
        return PulledAudio(
            stream.codec_context.name,
            stream.codec_context.sample_rate,
            np.concatenate(chunks) if chunks else np.zeros(0, np.float32),
            gap,
            ended,
            first or 0.0,
            last_end or 0.0,
        )
    finally:
        container.close()


def read_recording(path: str) -> PulledAudio:
    """Every audio frame of a recorded FLV file."""
    return pull_audio(path, seconds=1e9, open_timeout=5.0)


def rms_dbfs(samples: npt.NDArray[np.float32]) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
    return 20 * float(np.log10(rms)) if rms > 0 else -120.0


def dominant_frequency(samples: npt.NDArray[np.float32], sample_rate: int) -> float:
    window = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(window))
    spectrum[0] = 0
    peak = int(np.argmax(spectrum))
    # parabolic interpolation around the peak bin for sub-bin accuracy
    if 0 < peak < len(spectrum) - 1:
        a, b, c = spectrum[peak - 1], spectrum[peak], spectrum[peak + 1]
        peak += 0.5 * (a - c) / (a - 2 * b + c)
    return float(peak * sample_rate / len(samples))


def silent_fraction(
    samples: npt.NDArray[np.float32], sample_rate: int, window_ms: int = 20, threshold: float = 0.01
) -> float:
    """Fraction of ``window_ms`` windows whose RMS is below ``threshold`` (full scale = 1.0)."""
    size = sample_rate * window_ms // 1000
    count = len(samples) // size
    if count == 0:
        return 1.0
    windows = samples[: count * size].reshape(count, size)
    rms = np.sqrt((windows**2).mean(axis=1))
    return float((rms < threshold).mean())


def stepped_tone(path: str, seconds: int, seed: int, frequency: float = 440.0, rate: int = 48_000) -> str:
    """A tone whose loudness steps between -6 and -30 dBFS at random instants (0.2-0.9 s apart),
    as a 48 kHz stereo WAV for baresip's aufile: its level envelope has one clear alignment with
    any other recording of it, so two recordings can be matched by correlation (a steady tone cannot)."""
    import wave

    generator = np.random.default_rng(seed)
    t = np.arange(seconds * rate) / rate
    edges = np.cumsum(generator.uniform(0.2, 0.9, size=seconds * 5))
    loud = np.searchsorted(edges, t) % 2 == 0
    amplitude = np.where(loud, 10 ** (-6 / 20), 10 ** (-30 / 20)) * np.sqrt(2)
    samples = (np.sin(2 * np.pi * frequency * t) * amplitude * 32767 * 0.999).clip(-32767, 32767).astype("<i2")
    with wave.open(path, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, 2).tobytes())
    return path


def envelope_db(samples: npt.NDArray[np.float32], sample_rate: int, window_ms: int = 20) -> npt.NDArray[np.float64]:
    """The level of each ``window_ms`` window in dBFS (silence: -120)."""
    size = sample_rate * window_ms // 1000
    count = len(samples) // size
    windows = samples[: count * size].astype(np.float64).reshape(count, size)
    rms = np.sqrt((windows**2).mean(axis=1))
    return np.where(rms > 1e-6, 20 * np.log10(np.maximum(rms, 1e-6)), -120.0)


def best_alignment(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], max_lag: int) -> tuple[int, float]:
    """The lag (in windows) at which ``b`` best matches ``a`` and the correlation coefficient there."""
    best = (0, -1.0)
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b) if lag >= 0 else (a, b[-lag:])
        n = min(len(x), len(y))
        if n < 50:
            continue
        coefficient = float(np.corrcoef(x[:n], y[:n])[0, 1])
        if coefficient > best[1]:
            best = (lag, coefficient)
    return best


def decode_file(path: str) -> tuple[str, int, int, npt.NDArray[np.float32], float]:
    """Any audio file through FFmpeg: (codec, rate, channels, samples of channel 0, largest pts gap ms)."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        chunks, gap, last_end = [], 0.0, None
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            if data.dtype == np.int16:
                data = data.astype(np.float32) / 32768
            channels = len(frame.layout.channels)
            chunks.append(data[0] if frame.format.is_planar else data.reshape(-1)[::channels])
            if frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base) * 1000
                if last_end is not None:
                    gap = max(gap, start - last_end)
                last_end = start + frame.samples * 1000 / frame.sample_rate
        return stream.codec_context.name, stream.rate, stream.channels, np.concatenate(chunks), gap
