"""An ingest call's audio: timestamped frames per track straight into playout (sans-IO).

A WebSocket media stream (Twilio, ACS, RingCentral) carries each track's audio with the
platform's timestamp; the daemon hands each frame on as (track, timestamp in samples, payload)
and here it goes into that track's :class:`~rtp.playout.PlayoutBuffer` as it is: no RTP
header is made or parsed. Each track has its own playout (reordering, concealment, late
frames), created when its first frame arrives; :class:`~rtp.mix.TrackMix` sums them for the
encoder (or lays them out left/right).

Loss is counted as RFC 3550 appendix A.3 counts it, in 20 ms frames of the timeline: what the
highest timestamp so far says should have arrived, less what did. A frame that never came
after the last one received cannot be seen, as in RTP.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rtp.mix import TrackMix
from rtp.playout import PlayoutBuffer

Samples = npt.NDArray[np.int16]
MAX_TRACKS = 8  # more tracks than any platform sends; the rest are counted and dropped
TIMESTAMP_MASK = 0xFFFFFFFF


@dataclass(slots=True)
class TrackCounters:
    """One track's frames: how many came, how much of the timeline they cover, where it starts."""

    frames: int = 0
    first: int | None = None  # the first frame's timestamp (unwrapped)
    highest_end: int = 0  # the end of the latest audio received (unwrapped)
    received_samples: int = 0
    last_timestamp: int = 0
    unwrapped: int = 0


class FeedTrack:
    """One track's playout and its loss accounting."""

    def __init__(self, buffer: PlayoutBuffer, ssrc: int) -> None:
        self.buffer = buffer
        self._ssrc = ssrc  # the playout's notion of a source: one per track, never changes
        self.counters = TrackCounters()
        self.last_frame_at: float | None = None

    def push(self, timestamp: int, audio: Any, samples: int, now: float) -> None:
        counters = self.counters
        position = self._unwrap(timestamp)
        if counters.first is None:
            counters.first = position
        counters.frames += 1
        counters.received_samples += samples
        counters.highest_end = max(counters.highest_end, position + samples)
        self.last_frame_at = now
        self.buffer.push(self._ssrc, timestamp & TIMESTAMP_MASK, audio, now)

    def _unwrap(self, timestamp: int) -> int:
        """The timestamp on an unwrapped timeline (32-bit wrap, RFC 3550 5.1)."""
        counters = self.counters
        timestamp &= TIMESTAMP_MASK
        if counters.first is None:
            counters.unwrapped, counters.last_timestamp = timestamp, timestamp
            return timestamp
        delta = (timestamp - counters.last_timestamp) & TIMESTAMP_MASK
        if delta >= 0x80000000:
            delta -= 0x100000000
        counters.last_timestamp = timestamp
        counters.unwrapped += delta
        return counters.unwrapped

    def lost_frames(self, frame: int) -> int:
        """Frames of ``frame`` samples the timeline says are missing (never negative)."""
        counters = self.counters
        if counters.first is None:
            return 0
        expected = counters.highest_end - counters.first
        return max(0, (expected - counters.received_samples) // frame)


class FeedTracks:
    """Every track of one ingest call, mixed into the audio its destinations encode."""

    def __init__(
        self,
        new_buffer: Callable[[], PlayoutBuffer],
        decode: Callable[[bytes], Samples] | None,
        sample_bytes: int,
        stereo: bool = False,
    ) -> None:
        self._new_buffer = new_buffer
        self._decode = decode  # None: µ-law stored as it came
        self._sample_bytes = sample_bytes
        first = new_buffer()
        self.rate = first.rate
        self._spare: PlayoutBuffer | None = first
        self.mix = TrackMix(first, stereo)
        self.tracks: dict[int, FeedTrack] = {}
        self._order: list[int] = []  # track numbers in the mix's order (ascending)
        self.refused = 0  # frames of a track beyond MAX_TRACKS

    def push(self, track: int, timestamp: int, payload: bytes, now: float) -> None:
        """One frame of ``track`` at ``timestamp`` (samples from the stream's start) arriving at ``now``."""
        feed = self.tracks.get(track)
        if feed is None:
            if not 0 <= track < MAX_TRACKS:
                self.refused += 1
                return
            feed = self._add(track)
        samples = len(payload) // self._sample_bytes
        if samples == 0:
            return
        audio = payload if self._decode is None else self._decode(payload)
        feed.push(timestamp, audio, samples, now)

    def _add(self, track: int) -> FeedTrack:
        """A track's playout, placed in the mix by track number (so the stereo layout and each track's
        file follow the platform's order, not which track's frame happened to arrive first); the first
        track to arrive takes the mix's first playout."""
        position = bisect.bisect(self._order, track)
        if self._spare is not None:
            buffer, self._spare = self._spare, None
        else:
            buffer = self._new_buffer()
            self.mix.add(buffer, position)
        self._order.insert(position, track)
        feed = FeedTrack(buffer, track + 1)
        self.tracks[track] = feed
        return feed

    def pull(self, n: int, now: float) -> Samples:
        return self.mix.pull(n, now)

    def track_blocks(self) -> dict[int, Samples]:
        """Each track's own audio of the mix's last pull, by track number."""
        return dict(zip(self._order, self.mix.last_blocks, strict=False))

    @property
    def last_frame_at(self) -> float | None:
        times = [t.last_frame_at for t in self.tracks.values() if t.last_frame_at is not None]
        return max(times) if times else None

    @property
    def buffered_samples(self) -> int:
        return self.mix.buffers[0].depth

    def counters(self) -> dict[str, Any]:
        """The call's receive counters summed over its tracks, and the number of tracks."""
        tracks = list(self.tracks.values())
        frame = self.rate // 50
        return {
            "packets": sum(t.counters.frames for t in tracks),
            "lost": sum(t.lost_frames(frame) for t in tracks),
            "latePackets": sum(t.buffer.stats.late for t in tracks),
            "duplicatePackets": sum(t.buffer.stats.duplicate for t in tracks),
            "concealedMs": sum(t.buffer.stats.concealed_samples * 1000 // t.buffer.rate for t in tracks),
            "foreignPackets": self.refused,
            "ingestTracks": len(tracks),
        }
