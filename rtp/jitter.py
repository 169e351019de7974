"""A timestamp-ordered playout buffer for a constant-rate audio stream.

Sans-IO: the caller pushes packets as they arrive and pulls a fixed number of
samples per output period, driven by its own wall clock. Missing audio is
returned as silence of the right length, so the output timeline never stalls
and never slips (RFC 3550 section 5.1: the timestamp, not the sequence number,
positions a packet's samples in time).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtp.g711 import PCMU_SILENCE

_TS_MODULO = 1 << 32
_TS_HALF = 1 << 31


def timestamp_delta(later: int, earlier: int) -> int:
    """Signed difference of two 32-bit RTP timestamps, wrap-around aware."""
    return (later - earlier + _TS_HALF) % _TS_MODULO - _TS_HALF


@dataclass(slots=True)
class JitterStats:
    """What the buffer did with the packets it was given."""

    played: int = 0
    late: int = 0
    duplicate: int = 0
    resyncs: int = 0
    trimmed_samples: int = 0
    concealed_samples: int = 0


class JitterBuffer:
    """Reorders packets by RTP timestamp and plays them out after ``delay``.

    ``delay_samples`` is the playout delay given to the first packet (and after
    each resynchronisation). Packets arriving after their play time are dropped
    and counted; a packet far behind or far ahead of the playout point (a
    timestamp jump, e.g. after hold or a far-end restart) resynchronises the
    buffer instead. Depth beyond ``max_delay_samples`` is trimmed from the
    oldest end so latency cannot grow without bound.
    """

    def __init__(
        self,
        delay_samples: int = 480,
        max_delay_samples: int = 4000,
        resync_samples: int = 8000,
    ) -> None:
        self._delay = delay_samples
        self._max_delay = max_delay_samples
        self._resync = resync_samples
        self._play_position: int | None = None  # unwrapped timestamp of next sample
        self._chunks: dict[int, bytes] = {}
        self.stats = JitterStats()

    @property
    def depth_samples(self) -> int:
        """Samples buffered ahead of the playout point, including gaps."""
        if self._play_position is None or not self._chunks:
            return 0
        end = max(start + len(data) for start, data in self._chunks.items())
        return end - self._play_position

    def reset(self) -> None:
        """Forget the timeline (e.g. on an SSRC change); the next packet re-anchors."""
        self._play_position = None
        self._chunks.clear()

    def push(self, timestamp: int, payload: bytes) -> None:
        """Store one packet's µ-law payload at its RTP timestamp."""
        if not payload:
            return
        if self._play_position is None:
            self._anchor(timestamp)
        assert self._play_position is not None
        offset = timestamp_delta(timestamp, self._play_position % _TS_MODULO)
        if offset + len(payload) <= 0 and -offset < self._resync:
            self.stats.late += 1
            return
        if offset < -self._resync or offset > self._resync:
            self.stats.resyncs += 1
            self._anchor(timestamp)
            offset = self._delay
        start = self._play_position + offset
        if start in self._chunks:
            self.stats.duplicate += 1
            return
        self._chunks[start] = payload
        self._trim()

    def pull(self, samples: int) -> bytes:
        """Return the next ``samples`` µ-law samples, silence where nothing arrived."""
        out = bytearray([PCMU_SILENCE]) * samples
        if self._play_position is None:
            return bytes(out)
        begin = self._play_position
        end = begin + samples
        filled = 0
        for start in sorted(self._chunks):
            if start >= end:
                break
            data = self._chunks.pop(start)
            lo = max(start, begin)
            hi = min(start + len(data), end)
            if hi > lo:
                out[lo - begin : hi - begin] = data[lo - start : hi - start]
                filled += hi - lo
            if start + len(data) > end:
                self._chunks[end] = data[end - start :]
            else:
                self.stats.played += 1
        self.stats.concealed_samples += samples - filled
        self._play_position = end
        return bytes(out)

    def _anchor(self, timestamp: int) -> None:
        self._chunks.clear()
        self._play_position = timestamp - self._delay

    def _trim(self) -> None:
        assert self._play_position is not None
        excess = self.depth_samples - self._max_delay
        if excess <= 0:
            return
        self.stats.trimmed_samples += excess
        self._play_position += excess
        for start in [s for s in self._chunks if s + len(self._chunks[s]) <= self._play_position]:
            del self._chunks[start]
