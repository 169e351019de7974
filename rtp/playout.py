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
  buffered, so the output timeline has no gap and no overlap.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rtp.g711 import ULAW_TO_LINEAR
from rtp.timestretch import accelerate, expand

_TS_MODULO = 1 << 32
_TS_HALF = 1 << 31


def timestamp_delta(later: int, earlier: int) -> int:
    """Signed difference of two 32-bit RTP timestamps, wrap-around aware."""
    return (later - earlier + _TS_HALF) % _TS_MODULO - _TS_HALF


RATE = 8000
FRAME = 160
RING = 1 << 15  # 4.1 s of timeline: far more than max_delay plus a pull
MASK = RING - 1
FADE_FRAMES = 3  # concealment: repeat the last 20 ms, fading, for 60 ms
FADE_GAIN = 0.6
STRETCH_LAG = 120  # the longest pitch period looked for when stretching
Samples = npt.NDArray[np.int16]
_ONES = memoryview(b"\x01" * RING)
_ZEROS = memoryview(bytes(RING))


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

    def __init__(self) -> None:
        self._samples = np.zeros(RING, np.int16)

    def write(self, offset: int, media: Samples, count: int) -> None:
        first = min(count, RING - offset)
        self._samples[offset : offset + first] = media[:first]
        if first < count:
            self._samples[: count - first] = media[first:]

    def read(self, offset: int, count: int) -> Samples:
        if offset + count <= RING:
            return self._samples[offset : offset + count].copy()
        return np.concatenate([self._samples[offset:], self._samples[: offset + count - RING]])


class PcmuRing:
    """The timeline as G.711 µ-law codes, decoded when read: a packet costs one byte copy."""

    def __init__(self) -> None:
        self._codes = bytearray(RING)

    def write(self, offset: int, media: bytes | memoryview, count: int) -> None:
        first = min(count, RING - offset)
        self._codes[offset : offset + first] = media[:first]
        if first < count:
            self._codes[: count - first] = media[first:]

    def read(self, offset: int, count: int) -> Samples:
        if offset + count <= RING:
            decoded: Samples = ULAW_TO_LINEAR[np.frombuffer(self._codes, np.uint8, count, offset)]
            return decoded
        head = np.frombuffer(self._codes, np.uint8, RING - offset, offset)
        tail = np.frombuffer(self._codes, np.uint8, offset + count - RING)
        wrapped: Samples = ULAW_TO_LINEAR[np.concatenate([head, tail])]
        return wrapped


class PlayoutBuffer:
    """Reorders, conceals and steers audio so that every pull returns exactly ``n`` samples.

    ``encoding`` is what :meth:`push` takes: ``"linear"`` (16-bit samples) or ``"pcmu"``
    (the µ-law payload of G.711 packets, stored as it came and decoded at playout).
    """

    def __init__(
        self,
        initial_delay: int = 480,
        min_delay: int = 320,
        max_delay: int = 2400,
        headroom: int = 160,
        window: float = 3.0,
        seed: int = 1,
        encoding: str = "linear",
    ) -> None:
        self.encoding = encoding
        self._store: LinearRing | PcmuRing = PcmuRing() if encoding == "pcmu" else LinearRing()
        self.target_delay = initial_delay
        self._min_delay, self._max_delay, self._headroom = min_delay, max_delay, headroom
        self._window = window
        self._valid = bytearray(RING)
        self._play = 0  # our timeline position of the next sample to output
        self._end = 0  # the end of the latest audio placed on the timeline
        self._pulled_at: float | None = None  # wall time of the last pull
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
        """Audio for ``timestamp`` (RTP units at 8 kHz) arriving at wall time ``now``.

        ``samples`` is int16 PCM, or µ-law bytes for a ``"pcmu"`` buffer.
        """
        expected = self._expected_position(now)
        position = self._position(ssrc, timestamp, expected)
        count = len(samples)
        play = self._play
        if position < play:  # (partly) late: keep what can still be played
            if position + count <= play:
                self.stats.late += 1
                return
            samples, count, position = samples[play - position :], count - (play - position), play
        end = position + count
        if end - play > RING - self._max_delay:
            self.stats.trimmed_samples += count  # a burst the ring cannot hold
            return
        offset = position & MASK
        if self._valid[offset]:
            self.stats.duplicate += 1
            return
        self._store.write(offset, samples, count)
        if offset + count <= RING:
            self._valid[offset : offset + count] = _ONES[:count]
        else:
            self._valid[offset:] = _ONES[: RING - offset]
            self._valid[: count - (RING - offset)] = _ONES[: count - (RING - offset)]
        if end > self._end:
            self._end = end
        self.stats.accepted += 1
        self._note_margin(position - expected, now)

    def push_comfort_noise(self, ssrc: int, timestamp: int, level_dbov: int, now: float) -> None:
        """RFC 3389: from this timestamp on, play noise at ``-level_dbov`` until audio resumes."""
        position = self._position(ssrc, timestamp, self._expected_position(now))
        if position >= self._play:
            self._noise_marks.append((position, float(level_dbov)))

    def _position(self, ssrc: int, timestamp: int, expected: int) -> int:
        if self._offset is None or ssrc != self._ssrc:
            self._anchor(ssrc, timestamp, expected)
        else:
            self._unwrapped += (timestamp - self._last_ts + _TS_HALF) % _TS_MODULO - _TS_HALF  # timestamp_delta
            self._last_ts = timestamp
        assert self._offset is not None
        position = self._unwrapped + self._offset
        if abs(position - (expected + self.target_delay)) > RATE:  # a jump of more than 1 s
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
        return self._play + max(0, int((now - self._pulled_at) * RATE))

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
    def depth(self) -> int:
        """Samples buffered ahead of the play position."""
        return max(0, self._end - self._play)

    def pull(self, n: int, now: float) -> Samples:
        """The next ``n`` samples of the output timeline."""
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
        if worst > self._headroom + 2 * FRAME and self.depth > self._min_delay:
            return -1
        return 0

    def _stretched(self, n: int, direction: int) -> Samples | None:
        """``n`` samples made from one pitch period more (-1) or fewer (+1) of the timeline, if it has one."""
        span = n + STRETCH_LAG if direction < 0 else n
        if self._missing(span):
            return None  # only real audio is stretched; gaps are concealed as they are
        source = self._peek(span)
        result = accelerate(source) if direction < 0 else expand(source)
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
        offset = self._play & MASK
        first = min(count, RING - offset)
        missing = self._valid.count(0, offset, offset + first)
        return missing + (self._valid.count(0, 0, count - first) if first < count else 0)

    def _peek(self, count: int) -> Samples:
        return self._store.read(self._play & MASK, count)

    def _consume(self, count: int) -> None:
        """Advance the play position, forgetting what it passes."""
        offset = self._play & MASK
        first = min(count, RING - offset)
        self._valid[offset : offset + first] = _ZEROS[:first]
        if first < count:
            self._valid[: count - first] = _ZEROS[: count - first]
        self._play += count

    def _take(self, count: int) -> Samples:
        """Samples [play, play+count) of the timeline, gaps concealed; advances the play position."""
        begin = self._play
        self._reach_noise_marks(begin + count)
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
        offset = self._play & MASK
        first = min(count, RING - offset)
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
        self._history = audio[-FRAME:] if len(audio) >= FRAME else np.concatenate([self._history, audio])[-FRAME:]
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
        budget = FADE_FRAMES * FRAME - self._gap_concealed if len(self._history) == FRAME else 0
        faded = max(0, min(count, budget))
        if faded:
            index = np.arange(self._gap_concealed, self._gap_concealed + faded)
            gains = FADE_GAIN ** (index // FRAME + 1)
            out[:faded] = (self._history[index % FRAME] * gains).astype(np.int16)
            self._gap_concealed += faded
        self.stats.concealed_samples += faded
        self.stats.silence_samples += count - faded
        return out
