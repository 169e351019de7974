"""The per-call media pump: wall-clock playout from the jitter buffer into the encoder.

One monotonic output clock per call: every elapsed 20 ms of wall time yields
exactly 20 ms of audio, taken from the jitter buffer or filled with silence,
so the published timeline advances with real time whatever RTP does.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bridge.media.encoder import AudioEncoder

FRAME_SECONDS = 0.020
EARLY_TOLERANCE = 0.0005  # seconds; the ticker runs a job this much before its deadline at most


def pull_unit(batches: list[int], rate: int = 8000) -> float:
    """The clock's step in seconds: the encoders' common batch when they share one (one pull per
    encode, nothing left waiting: 64 ms for AAC at 16 kHz), else 20 ms frames."""
    unit = min(batches)
    return unit / rate if all(batch % unit == 0 for batch in batches) else FRAME_SECONDS


class PlayoutClock:
    """Counts the frames (20 ms, or one encoder batch) due since ``start`` (sans-IO: ``now`` is given)."""

    def __init__(self, start: float, frame_seconds: float = FRAME_SECONDS) -> None:
        self.start = start
        self.frame_seconds = frame_seconds
        self.frames_played = 0

    def frames_due(self, now: float) -> int:
        # The tolerance makes a wake-up at a deadline count that frame (0.06 / 0.02 < 3.0), also when
        # the millisecond timers of the event loop fire up to half a millisecond early.
        due = int((now - self.start + EARLY_TOLERANCE) / self.frame_seconds) - self.frames_played
        return max(due, 0)

    def advance(self, frames: int) -> None:
        self.frames_played += frames

    def next_deadline(self) -> float:
        return self.start + (self.frames_played + 1) * self.frame_seconds


class EncoderLane:
    """One encoder and the audio waiting for its next whole batch of frames."""

    def __init__(self, encoder: AudioEncoder, batches_per_encode: int = 1) -> None:
        self.encoder = encoder
        # Whole encoder batches per encode call: more means fewer wake-ups, calls and writes
        # per second (less CPU per call) and that much more latency (media.frames_per_batch).
        self.batch = encoder.input_batch * batches_per_encode
        self._pending: list[npt.NDArray[np.int16]] = []
        self._pending_samples = 0
        self.encode_seconds = 0.0

    @property
    def missing(self) -> int:
        """Samples still needed before the next encode."""
        return max(self.batch - self._pending_samples, 1)

    def add(self, block: npt.NDArray[np.int16]) -> None:
        self._pending.append(block)
        self._pending_samples += len(block)

    def encode_ready(self) -> list[tuple[int, bytes]]:
        """Encode every whole batch pending, one batch at a time; (timestamp_ms, FLV body) per frame.

        Always the same block size into the encoder: its upsampler reuses its buffers only
        while the size stays the same, and a late tick with two batches due would change it.
        """
        batch = self.batch
        if self._pending_samples < batch:
            return []
        if self._pending_samples == batch and len(self._pending) == 1:  # the common case: one pull, one batch
            samples = self._pending[0]
            self._pending, self._pending_samples = [], 0
            started = time.perf_counter()
            encoded = self.encoder.encode(np.ascontiguousarray(samples))
            self.encode_seconds += time.perf_counter() - started
            return encoded
        samples = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        whole = len(samples) // batch * batch
        self._pending = [samples[whole:]]
        self._pending_samples = len(samples) - whole
        started = time.perf_counter()
        output: list[tuple[int, bytes]] = []
        for start in range(0, whole, batch):
            output += self.encoder.encode(np.ascontiguousarray(samples[start : start + batch]))
        self.encode_seconds += time.perf_counter() - started
        return output

    def flush(self) -> list[tuple[int, bytes]]:
        """At call end: encode what is pending (padded to whole frames) and drain the encoder."""
        output: list[tuple[int, bytes]] = []
        if self._pending_samples:
            samples = np.concatenate(self._pending)
            batch = self.encoder.input_batch
            padded = np.zeros((-(-len(samples) // batch) * batch, *samples.shape[1:]), np.int16)
            padded[: len(samples)] = samples
            output = self.encoder.encode(padded)
            self._pending, self._pending_samples = [], 0
        return output + self.encoder.flush()


class Playout(Protocol):
    """Where the pipeline pulls audio from: a call's source (:mod:`bridge.media.sources`)."""

    def pull(self, n: int, now: float) -> npt.NDArray[np.int16]: ...


class MediaPipeline:
    """Pulls due audio from the jitter buffer once and feeds every encoder lane (one per output setting)."""

    def __init__(
        self,
        buffer: Playout,
        encoders: list[AudioEncoder],
        clock: PlayoutClock,
        batches_per_encode: int = 1,
    ) -> None:
        self.buffer = buffer
        self.lanes = [EncoderLane(encoder, batches_per_encode) for encoder in encoders]
        self.clock = clock
        self.frame_samples = round(clock.frame_seconds * encoders[0].input_rate)
        self._latest: npt.NDArray[np.int16] = np.zeros(0, np.int16)
        self.played: npt.NDArray[np.int16] | None = None  # the block pulled at the last tick (None: none due)
        self.last_output_at = clock.start

    @property
    def encode_seconds(self) -> float:
        return sum(lane.encode_seconds for lane in self.lanes)

    @property
    def encoded_packets(self) -> int:
        return sum(lane.encoder.encoded_packets for lane in self.lanes)

    def tick(self, now: float) -> list[list[tuple[int, bytes]]]:
        """Play out every frame due at ``now``; per lane, the FLV audio bodies ready to publish."""
        frames = self.clock.frames_due(now)
        self.played = None
        if frames:
            block = self.buffer.pull(frames * self.frame_samples, now)
            self._latest = self.played = block
            for lane in self.lanes:
                lane.add(block)
            self.clock.advance(frames)
        outputs = [lane.encode_ready() for lane in self.lanes]
        if any(outputs):
            self.last_output_at = now
        return outputs

    def flush(self) -> list[list[tuple[int, bytes]]]:
        return [lane.flush() for lane in self.lanes]

    @property
    def level_dbfs(self) -> float:
        """Audio level of the latest block in dBFS (RMS; -120 for digital silence), computed when read."""
        as_float = self._latest.astype(np.float32).ravel()  # stereo: both channels
        rms = math.sqrt(float(np.dot(as_float, as_float)) / len(as_float)) if len(as_float) else 0.0
        return round(20 * math.log10(rms / 32768), 1) if rms > 0 else -120.0

    def next_deadline(self) -> float:
        """When enough audio is due to encode the next whole batch of some lane."""
        missing = min(lane.missing for lane in self.lanes)
        frames = -(-missing // self.frame_samples)
        clock = self.clock
        return clock.start + (clock.frames_played + frames) * clock.frame_seconds
