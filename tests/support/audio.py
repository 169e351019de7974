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
