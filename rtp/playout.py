"""Adaptive playout of one call's audio (sans-IO): the receive side of the media timeline.

Packets are placed on our own timeline (samples at 8 kHz) by RTP timestamp; the
output clock pulls a fixed number of samples per period, whatever RTP does.

- Adaptive delay: for every packet we measure how early it arrived compared with
  its play time; the smallest margin over the last seconds is steered towards a
  small headroom. Steering (and far-end clock skew up to a few per cent) is absorbed
  by resampling each pulled block by at most ``MAX_STRETCH`` - a pitch change too
  small to hear, with no clicks and no latency growth.
- Loss concealment (repeat-and-fade of the last 20 ms, ITU-T G.711 Appendix I in
  spirit), then silence; comfort noise (RFC 3389) after a CN packet, not counted as loss.
- A new SSRC or a timestamp jump re-anchors the stream right after what is already
  buffered, so the output timeline has no gap and no overlap.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_TS_MODULO = 1 << 32
_TS_HALF = 1 << 31


def timestamp_delta(later: int, earlier: int) -> int:
    """Signed difference of two 32-bit RTP timestamps, wrap-around aware."""
    return (later - earlier + _TS_HALF) % _TS_MODULO - _TS_HALF


RATE = 8000
FRAME = 160
MAX_STRETCH = 0.01  # at most 1 % more or fewer samples per pull: inaudible, twice the drift we must absorb
FADE_FRAMES = 3  # concealment: repeat the last 20 ms, fading, for 60 ms
FADE_GAIN = 0.6
Samples = npt.NDArray[np.int16]


@dataclass(slots=True)
class PlayoutStats:
    played: int = 0
    late: int = 0
    duplicate: int = 0
    resyncs: int = 0
    concealed_samples: int = 0
    silence_samples: int = 0
    comfort_noise_samples: int = 0
    stretched_samples: int = 0
    trimmed_samples: int = 0


@dataclass(slots=True)
class _Chunk:
    samples: Samples
    noise_level: float | None = None  # comfort noise from here (dBov), until the next audio


class PlayoutBuffer:
    """Reorders, conceals and stretches audio so that every pull returns exactly ``n`` samples."""

    def __init__(
        self,
        initial_delay: int = 480,
        min_delay: int = 320,
        max_delay: int = 2400,
        headroom: int = 160,
        window: float = 3.0,
        seed: int = 1,
    ) -> None:
        self.target_delay = initial_delay
        self._min_delay, self._max_delay, self._headroom = min_delay, max_delay, headroom
        self._window = window
        self._chunks: dict[int, _Chunk] = {}
        self._play = 0  # our timeline position of the next sample to output
        self._pulled_at: float | None = None  # wall time of the last pull
        self._ssrc: int | None = None
        self._last_ts = 0
        self._offset: int | None = None  # timeline position = unwrapped timestamp + offset
        self._unwrapped = 0
        self._margins: deque[tuple[float, int]] = deque()
        self._history: Samples = np.zeros(0, np.int16)  # the last 20 ms of real audio played
        self._gap_concealed = 0  # samples concealed in the current gap
        self._noise: tuple[int, float] | None = None  # comfort noise from (position, level dBov)
        self._rng = np.random.default_rng(seed)
        self._steered = 0  # samples of delay added (+) or removed (-) by stretching so far
        self._steer_carry = 0.0
        self.stats = PlayoutStats()

    # -- input ------------------------------------------------------------------------

    def push(self, ssrc: int, timestamp: int, samples: Samples, now: float) -> None:
        """Audio for ``timestamp`` (RTP units at 8 kHz) arriving at wall time ``now``."""
        position = self._position(ssrc, timestamp, now)
        if position is None:
            return
        if position + len(samples) <= self._play:
            self.stats.late += 1
            return
        if position in self._chunks:
            self.stats.duplicate += 1
            return
        self._chunks[position] = _Chunk(samples)
        self._note_margin(position, now)

    def push_comfort_noise(self, ssrc: int, timestamp: int, level_dbov: int, now: float) -> None:
        """RFC 3389: from this timestamp on, play noise at ``-level_dbov`` until audio resumes."""
        position = self._position(ssrc, timestamp, now)
        if position is not None and position >= self._play:
            self._chunks[position] = _Chunk(np.zeros(0, np.int16), noise_level=float(level_dbov))

    def _position(self, ssrc: int, timestamp: int, now: float) -> int | None:
        expected = self._expected_position(now)
        if self._offset is None or ssrc != self._ssrc:
            self._anchor(ssrc, timestamp, expected)
        else:
            self._unwrapped += timestamp_delta(timestamp, self._last_ts)
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
        buffered_end = self._buffered_end()
        if buffered_end >= expected + self._headroom:  # continue right after what is buffered
            self._offset = buffered_end
        else:
            self._offset = expected + self.target_delay
        self._margins.clear()

    def _buffered_end(self) -> int:
        ends = [start + len(chunk.samples) for start, chunk in self._chunks.items()]
        return max(ends, default=self._play)

    def _expected_position(self, now: float) -> int:
        """Where the output clock will be at ``now`` (between pulls)."""
        if self._pulled_at is None:
            return self._play
        return self._play + max(0, int((now - self._pulled_at) * RATE))

    def _note_margin(self, position: int, now: float) -> None:
        """How early the packet is; stored net of the steering so far, judged with the steering since."""
        net = position - self._expected_position(now) - self._steered
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
        return max(0, self._buffered_end() - self._play)

    def pull(self, n: int, now: float) -> Samples:
        """The next ``n`` samples of the output timeline."""
        self._trim()
        steer = self._steering(n)
        self._steered += steer
        take = n - steer
        block = self._take(take)
        self._pulled_at = now
        if take != n:
            self.stats.stretched_samples += abs(n - take)
            block = np.interp(np.linspace(0, take - 1, n), np.arange(take), block).astype(np.int16)
        return block

    def _steering(self, n: int) -> int:
        """Samples to add (+) or remove (-) this pull to bring the earliest margin to the headroom."""
        if not self._margins:
            return 0
        worst = self._margins[0][1] + self._steered
        wanted = self._headroom - worst  # > 0: packets arrive too late, play later
        if abs(wanted) < FRAME:  # dead band: 20 ms either way is fine
            return 0
        if wanted < 0 and self.depth <= self._min_delay:
            return 0  # never steer below the minimum delay
        self._steer_carry += n * MAX_STRETCH  # exactly MAX_STRETCH over time, whatever the pull size
        step = min(int(self._steer_carry), abs(wanted))
        self._steer_carry -= step
        return step if wanted > 0 else -step

    def _trim(self) -> None:
        """A burst beyond the maximum delay is dropped from the oldest end (counted)."""
        excess = self.depth - self._max_delay
        if excess > 0:
            self.stats.trimmed_samples += excess
            self._discard_until(self._play + excess)
            self._steered -= excess

    def _discard_until(self, position: int) -> None:
        for start in sorted(self._chunks):
            if start >= position:
                break
            chunk = self._chunks.pop(start)
            if start + len(chunk.samples) > position:
                self._chunks[position] = _Chunk(chunk.samples[position - start :])
        self._play = position

    def _take(self, count: int) -> Samples:
        """Samples [play, play+count) of the timeline, gaps concealed; advances the play position."""
        begin, end = self._play, self._play + count
        out = np.zeros(count, np.int16)
        filled = np.zeros(count, bool)
        for start in sorted(self._chunks):
            if start >= end:
                break
            chunk = self._chunks.pop(start)
            if chunk.noise_level is not None:
                self._noise = (start, chunk.noise_level)
                continue
            lo, hi = max(start, begin), min(start + len(chunk.samples), end)
            if hi > lo:
                out[lo - begin : hi - begin] = chunk.samples[lo - start : hi - start]
                filled[lo - begin : hi - begin] = True
            if start + len(chunk.samples) > end:
                self._chunks[end] = _Chunk(chunk.samples[end - start :])
            else:
                self.stats.played += 1
        self._play = end
        self._fill_gaps(out, filled, begin)
        return out

    def _fill_gaps(self, out: Samples, filled: npt.NDArray[np.bool_], begin: int) -> None:
        """Conceal each run of missing samples; remember the last 20 ms of real audio for that."""
        if filled.all():
            self._heard(out, begin)
            return
        edges = [0, *(np.flatnonzero(np.diff(filled.view(np.int8))) + 1).tolist(), len(out)]
        for start, end in itertools.pairwise(edges):
            if filled[start]:
                self._heard(out[start:end], begin + start)
            else:
                out[start:end] = self._conceal(begin + start, end - start)

    def _heard(self, audio: Samples, position: int) -> None:
        """Real audio: it ends any concealment and any comfort noise that started before it."""
        self._history = np.concatenate([self._history, audio])[-FRAME:]
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
