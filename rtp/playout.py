"""Adaptive playout of one call's audio (sans-IO): the receive side of the media timeline.

Packets are placed on our own timeline (samples at 8 kHz) by RTP timestamp, into a
preallocated ring with one validity byte per sample; the output clock pulls a fixed number
of samples per period, whatever RTP does. A packet costs two slice copies; a pull of
audio that all arrived costs one copy and one count (no per-packet objects, no sorting).

- Adaptive delay: for every packet we measure how early it arrived compared with its play
  time; the smallest margin over the last seconds must stay within a band (about 10 to
  60 ms ahead). Outside it, playout is made later or earlier by one pitch period at a time
  (:mod:`rtp.timestretch`: NetEQ-style expand/accelerate), which keeps the pitch: a 440 Hz
  tone stays 440 Hz. Far-end clocks that run up to 1 % fast or slow are absorbed the same way.
- Loss concealment (repeat-and-fade of the last 20 ms, ITU-T G.711 Appendix I in spirit),
  then silence; comfort noise (RFC 3389) after a CN packet, not counted as loss.
- A new SSRC or a timestamp jump re-anchors the stream right after what is already
  buffered, so the output timeline has no gap and no overlap; so does a stream whose every
  packet has come too late for half a second (its start was far ahead of the rest).
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rtp.fast import FAST
from rtp.g711 import ULAW_TO_LINEAR
from rtp.timestretch import accelerate, expand

_TS_MODULO = 1 << 32
_TS_HALF = 1 << 31


def timestamp_delta(later: int, earlier: int) -> int:
    """Signed difference of two 32-bit RTP timestamps, wrap-around aware."""
    return (later - earlier + _TS_HALF) % _TS_MODULO - _TS_HALF


RATE = 8000
FRAME = 160
RING = 1 << 15  # 4.1 s of timeline at 8 kHz: far more than max_delay plus a pull
FADE_FRAMES = 3  # concealment: repeat the last 20 ms, fading, for 60 ms
FADE_GAIN = 0.6
LATE_RESYNC_SECONDS = 0.5  # only late packets for this long: re-anchor (section "late for good")
STRETCH_LAG = 120  # the longest pitch period looked for when stretching (15 ms at 8 kHz)
Samples = npt.NDArray[np.int16]


def ring_size(rate: int) -> int:
    """A power of two holding at least 4 s of timeline at ``rate``."""
    return RING * (1 << max(0, (rate // RATE - 1).bit_length()))


@functools.cache
def _fills(size: int) -> tuple[memoryview, memoryview]:
    """Ones and zeros to mark a ring's samples arrived or played: read-only, shared by every call
    (they were 64 KiB of each call's memory at 8 kHz)."""
    return memoryview(b"\x01" * size), memoryview(bytes(size))


@dataclass(slots=True)
class PlayoutStats:
    accepted: int = 0  # packets placed on the timeline
    late: int = 0
    duplicate: int = 0
    resyncs: int = 0
    concealed_samples: int = 0
    silence_samples: int = 0
    comfort_noise_samples: int = 0
    stretched_samples: int = 0  # samples removed or repeated (pitch periods) to steer the delay
    trimmed_samples: int = 0


class LinearRing:
    """The timeline's samples as 16-bit linear PCM."""

    def __init__(self, size: int = RING) -> None:
        self._size = size
        self._samples = np.zeros(size, np.int16)

    def write(self, offset: int, media: Samples, count: int) -> None:
        first = min(count, self._size - offset)
        self._samples[offset : offset + first] = media[:first]
        if first < count:
            self._samples[: count - first] = media[first:]

    def read(self, offset: int, count: int) -> Samples:
        if offset + count <= self._size:
            return self._samples[offset : offset + count].copy()
        return np.concatenate([self._samples[offset:], self._samples[: offset + count - self._size]])


class PcmuRing:
    """The timeline as G.711 µ-law codes, decoded when read: a packet costs one byte copy."""

    def __init__(self) -> None:
        self.codes = bytearray(RING)

    def write(self, offset: int, media: bytes | memoryview, count: int) -> None:
        first = min(count, RING - offset)
        self.codes[offset : offset + first] = media[:first]
        if first < count:
            self.codes[: count - first] = media[first:]

    def read(self, offset: int, count: int) -> Samples:
        if offset + count <= RING:
            decoded: Samples = ULAW_TO_LINEAR[np.frombuffer(self.codes, np.uint8, count, offset)]
            return decoded
        head = np.frombuffer(self.codes, np.uint8, RING - offset, offset)
        tail = np.frombuffer(self.codes, np.uint8, offset + count - RING)
        wrapped: Samples = ULAW_TO_LINEAR[np.concatenate([head, tail])]
        return wrapped


class PlayoutBuffer:
    """Reorders, conceals and steers audio so that every pull returns exactly ``n`` samples.

    ``encoding`` is what :meth:`push` takes: ``"linear"`` (16-bit samples) or ``"pcmu"``
    (the µ-law payload of G.711 packets, stored as it came and decoded at playout).
    ``rate`` is the audio's sample rate (8 kHz for G.711, 16 kHz for G.722, 48 kHz for Opus);
    delays are in samples at that rate (defaults: 60, 40, 300 and 20 ms). ``samples_per_tick``
    maps RTP timestamps to samples: 2 for G.722, whose RTP clock is 8000 (RFC 3551 4.5.2).
    """

    def __init__(
        self,
        initial_delay: int | None = None,
        min_delay: int | None = None,
        max_delay: int | None = None,
        headroom: int | None = None,
        window: float = 3.0,
        seed: int = 1,
        encoding: str = "linear",
        rate: int = RATE,
        samples_per_tick: int = 1,
    ) -> None:
        self.encoding, self.rate, self._scale = encoding, rate, samples_per_tick
        per_ms = rate // 1000
        self._ring = ring_size(rate)
        self._mask = self._ring - 1
        self._frame = rate // 50
        self._ones, self._zeros = _fills(self._ring)
        self._store: LinearRing | PcmuRing = PcmuRing() if encoding == "pcmu" else LinearRing(self._ring)
        self.target_delay = initial_delay if initial_delay is not None else 60 * per_ms
        self._min_delay = min_delay if min_delay is not None else 40 * per_ms
        self._max_delay = max_delay if max_delay is not None else 300 * per_ms
        self._headroom = headroom if headroom is not None else 20 * per_ms
        self._window = window
        self._valid = bytearray(self._ring)
        self._play = 0  # our timeline position of the next sample to output
        self._end = 0  # the end of the latest audio placed on the timeline
        self._pulled_at: float | None = None  # wall time of the last pull
        self._late_since: float | None = None  # arrival of the first of the packets late in a row
        self._ssrc: int | None = None
        self._last_ts = 0
        self._offset: int | None = None  # timeline position = unwrapped timestamp + offset
        self._unwrapped = 0
        self._margins: deque[tuple[float, int]] = deque()
        self._history: Samples = np.zeros(0, np.int16)  # the last 20 ms of real audio played
        self._gap_concealed = 0  # samples concealed in the current gap
        self._noise_marks: list[tuple[int, float]] = []  # CN packets not yet reached: (position, dBov)
        self._noise: tuple[int, float] | None = None  # comfort noise from (position, level dBov)
        self._rng = np.random.default_rng(seed)
        self._steered = 0  # samples of delay added (+) or removed (-) by stretching so far
        self.stats = PlayoutStats()

    # -- input ------------------------------------------------------------------------

    def push(self, ssrc: int, timestamp: int, samples: Any, now: float) -> None:
        """Audio for ``timestamp`` (RTP units) arriving at wall time ``now``.

        ``samples`` is int16 PCM, or µ-law bytes for a ``"pcmu"`` buffer.
        """
        expected = self._expected_position(now)
        position = self._position(ssrc, timestamp, expected)
        count = len(samples)
        play = self._play
        if position + count <= play and not self._late_for_good(now):
            self.stats.late += 1
            return
        if position + count <= play:  # every packet late for LATE_RESYNC_SECONDS: start over from this one
            self.stats.resyncs += 1
            self._anchor(ssrc, timestamp, expected)
            assert self._offset is not None
            position, play = self._unwrapped + self._offset, self._play
        if position < play:  # partly late: keep what can still be played
            samples, count, position = samples[play - position :], count - (play - position), play
        self._late_since = None
        end = position + count
        ring, ones = self._ring, self._ones
        if end - play > ring - self._max_delay:
            self.stats.trimmed_samples += count  # a burst the ring cannot hold
            return
        offset = position & self._mask
        if self._valid[offset]:
            self.stats.duplicate += 1
            return
        self._store.write(offset, samples, count)
        if offset + count <= ring:
            self._valid[offset : offset + count] = ones[:count]
        else:
            self._valid[offset:] = ones[: ring - offset]
            self._valid[: count - (ring - offset)] = ones[: count - (ring - offset)]
        if end > self._end:
            self._end = end
        self.stats.accepted += 1
        self._note_margin(position - expected, now)

    def _late_for_good(self, now: float) -> bool:
        """Whether packets have arrived only too late for LATE_RESYNC_SECONDS (not a burst after a spike).

        A far end whose first packet came well ahead of the rest (a pause after it, then a steady
        stream) makes every later packet miss its play time by the same amount: nothing would be
        heard again, since lateness is only steered with audio that plays. A late burst after a
        network spike arrives within milliseconds and is dropped, as concealment covered it.
        """
        if self._late_since is None:
            self._late_since = now
        return now - self._late_since >= LATE_RESYNC_SECONDS

    def push_comfort_noise(self, ssrc: int, timestamp: int, level_dbov: int, now: float) -> None:
        """RFC 3389: from this timestamp on, play noise at ``-level_dbov`` until audio resumes."""
        position = self._position(ssrc, timestamp, self._expected_position(now))
        if position >= self._play:
            self._noise_marks.append((position, float(level_dbov)))

    def _position(self, ssrc: int, timestamp: int, expected: int) -> int:
        if self._offset is None or ssrc != self._ssrc:
            self._anchor(ssrc, timestamp, expected)
        else:
            delta = (timestamp - self._last_ts + _TS_HALF) % _TS_MODULO - _TS_HALF  # timestamp_delta
            self._unwrapped += delta * self._scale
            self._last_ts = timestamp
        assert self._offset is not None
        position = self._unwrapped + self._offset
        if abs(position - (expected + self.target_delay)) > self.rate:  # a jump of more than 1 s
            self.stats.resyncs += 1
            self._anchor(ssrc, timestamp, expected)
            position = self._unwrapped + self._offset
        return position

    def _anchor(self, ssrc: int, timestamp: int, expected: int) -> None:
        """Place this stream right after what is buffered, and at least the target delay ahead."""
        if self._ssrc is not None:
            self.stats.resyncs += ssrc != self._ssrc
        self._ssrc, self._last_ts, self._unwrapped = ssrc, timestamp, 0
        buffered_end = max(self._end, self._play)
        if buffered_end >= expected + self._headroom:  # continue right after what is buffered
            self._offset = buffered_end
        else:
            self._offset = expected + self.target_delay
        self._margins.clear()

    def _expected_position(self, now: float) -> int:
        """Where the output clock will be at ``now`` (between pulls)."""
        if self._pulled_at is None:
            return self._play
        return self._play + max(0, int((now - self._pulled_at) * self.rate))

    def _note_margin(self, early: int, now: float) -> None:
        """How early the packet is; stored net of the steering so far, judged with the steering since."""
        net = early - self._steered
        margins = self._margins  # a monotonic queue: the window's minimum is always at the left
        while margins and margins[-1][1] >= net:
            margins.pop()
        margins.append((now, net))
        while margins[0][0] < now - self._window:
            margins.popleft()

    # -- output -----------------------------------------------------------------------

    @property
    def added_delay(self) -> float:
        """Seconds from a packet's arrival (unqueued) to its playout: the start depth plus the steering since."""
        return (self.target_delay + self._steered) / self.rate

    @property
    def depth(self) -> int:
        """Samples buffered ahead of the play position."""
        return max(0, self._end - self._play)

    def pull(self, n: int, now: float) -> Samples:
        """The next ``n`` samples of the output timeline."""
        if FAST is not None and isinstance(self._store, PcmuRing):
            taken: Samples = np.empty(n, np.int16)
            if FAST.pull_ulaw(self, taken, now):  # only a take was due: decoded and consumed in C
                self._heard(taken, self._play - n)
                return taken
        self._trim()
        self._pulled_at = now
        direction = self._steering()
        if direction:
            block = self._stretched(n, direction)
            if block is not None:
                return block
        return self._take(n)

    def _steering(self) -> int:
        """-1 to play earlier (packets arrive far ahead), +1 to play later (they arrive too close), else 0."""
        if not self._margins:
            return 0
        worst = self._margins[0][1] + self._steered
        if worst < self._headroom // 2:
            return 1
        if worst > self._headroom + 2 * self._frame and self.depth > self._min_delay:
            return -1
        return 0

    def _stretched(self, n: int, direction: int) -> Samples | None:
        """``n`` samples made from one pitch period more (-1) or fewer (+1) of the timeline, if it has one."""
        step = max(1, self.rate // RATE)  # pitch search on every step-th sample (8 kHz)
        span = n + STRETCH_LAG * step if direction < 0 else n
        if self._missing(span):
            return None  # only real audio is stretched; gaps are concealed as they are
        source = self._peek(span)
        max_lag = STRETCH_LAG * step
        result = accelerate(source, max_lag, step) if direction < 0 else expand(source, max_lag, step)
        if result is None:
            return None
        changed = abs(len(source) - len(result))
        used = n + changed if direction < 0 else n - changed  # the cut is at the start of the block
        block = result[:n]
        begin = self._play
        self._consume(used)
        self._steered += direction * changed
        self.stats.stretched_samples += changed
        self._heard(block, begin)
        return block

    def _trim(self) -> None:
        """A burst beyond the maximum delay is dropped from the oldest end (counted)."""
        excess = self.depth - self._max_delay
        if excess > 0:
            self.stats.trimmed_samples += excess
            self._consume(excess)
            self._steered -= excess

    def _missing(self, count: int) -> int:
        """How many of the next ``count`` samples have not arrived."""
        offset = self._play & self._mask
        first = min(count, self._ring - offset)
        missing = self._valid.count(0, offset, offset + first)
        return missing + (self._valid.count(0, 0, count - first) if first < count else 0)

    def _peek(self, count: int) -> Samples:
        return self._store.read(self._play & self._mask, count)

    def _consume(self, count: int) -> None:
        """Advance the play position, forgetting what it passes."""
        offset = self._play & self._mask
        first = min(count, self._ring - offset)
        self._valid[offset : offset + first] = self._zeros[:first]
        if first < count:
            self._valid[: count - first] = self._zeros[: count - first]
        self._play += count

    def _take(self, count: int) -> Samples:
        """Samples [play, play+count) of the timeline, gaps concealed; advances the play position."""
        begin = self._play
        self._reach_noise_marks(begin + count)
        if FAST is not None and isinstance(self._store, PcmuRing):
            block = np.empty(count, np.int16)
            if FAST.take_ulaw(self._store.codes, self._valid, begin, block):  # decoded and consumed
                self._play += count
                self._heard(block, begin)
                return block
        if not self._missing(count):
            block = self._peek(count)
            self._consume(count)
            self._heard(block, begin)
            return block
        filled = self._filled(count)
        block = self._peek(count)
        self._consume(count)
        self._fill_gaps(block, filled, begin)
        return block

    def _filled(self, count: int) -> npt.NDArray[np.bool_]:
        offset = self._play & self._mask
        first = min(count, self._ring - offset)
        head = np.frombuffer(self._valid, np.uint8, first, offset)
        if first == count:
            return head.astype(bool)
        return np.concatenate([head, np.frombuffer(self._valid, np.uint8, count - first)]).astype(bool)

    def _reach_noise_marks(self, end: int) -> None:
        """Comfort-noise packets whose position the output reaches now start the noise."""
        if self._noise_marks:
            reached = [mark for mark in self._noise_marks if mark[0] < end]
            if reached:
                self._noise = max(reached)
                self._noise_marks = [mark for mark in self._noise_marks if mark[0] >= end]

    def _fill_gaps(self, out: Samples, filled: npt.NDArray[np.bool_], begin: int) -> None:
        """Conceal each run of missing samples; remember the last 20 ms of real audio for that."""
        edges = [0, *(np.flatnonzero(np.diff(filled.view(np.int8))) + 1).tolist(), len(out)]
        for start, end in itertools.pairwise(edges):
            if filled[start]:
                self._heard(out[start:end], begin + start)
            else:
                out[start:end] = self._conceal(begin + start, end - start)

    def _heard(self, audio: Samples, position: int) -> None:
        """Real audio: it ends any concealment and any comfort noise that started before it."""
        frame = self._frame
        self._history = audio[-frame:] if len(audio) >= frame else np.concatenate([self._history, audio])[-frame:]
        self._gap_concealed = 0
        if self._noise is not None and self._noise[0] <= position:
            self._noise = None

    def _conceal(self, position: int, count: int) -> Samples:
        """Comfort noise after a CN packet (RFC 3389); else repeat-and-fade the last 20 ms, then silence."""
        if self._noise is not None and self._noise[0] <= position:
            self.stats.comfort_noise_samples += count
            amplitude = 32767 * 10 ** (-self._noise[1] / 20)
            return (self._rng.standard_normal(count) * amplitude).clip(-32768, 32767).astype(np.int16)
        out = np.zeros(count, np.int16)
        frame = self._frame
        budget = FADE_FRAMES * frame - self._gap_concealed if len(self._history) == frame else 0
        faded = max(0, min(count, budget))
        if faded:
            index = np.arange(self._gap_concealed, self._gap_concealed + faded)
            gains = FADE_GAIN ** (index // frame + 1)
            out[:faded] = (self._history[index % frame] * gains).astype(np.int16)
            self._gap_concealed += faded
        self.stats.concealed_samples += faded
        self.stats.silence_samples += count - faded
        return out
