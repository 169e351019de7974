"""The tracks of an ingest call's RTP feed, told apart by SSRC, mixed into one playout.

The daemon numbers each WebSocket track with its own SSRC (:mod:`bridge.ingest.feed`);
here each SSRC gets its own receiver (statistics, reordering, concealment) and playout,
created when its first packet arrives, and :class:`~rtp.mix.TrackMix` sums them for the
encoder. Packets from anything but the feed's address, or with an SSRC that is not one of
the feed's tracks, are counted and dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.ingest.feed import track_index
from rtp.mix import TrackMix
from rtp.receiver import RtpReceiver

Address = tuple[str, int]


class FeedTracks:
    """Per-track receivers of one ingest call; track 0 is the call's first receiver."""

    def __init__(self, first: RtpReceiver, new_receiver: Callable[[], RtpReceiver], stereo: bool = False) -> None:
        self._new_receiver = new_receiver
        self.receivers: dict[int, RtpReceiver] = {}
        self._first: RtpReceiver | None = first
        self.mix = TrackMix(first.buffer, stereo)
        self.foreign = 0

    def datagram_received(self, data: bytes, source: Address, arrival: float) -> None:
        index = track_index(int.from_bytes(data[8:12], "big")) if len(data) >= 12 else None
        if index is None:
            self.foreign += 1
            return
        receiver = self.receivers.get(index)
        if receiver is None:
            receiver = self._track(index)
        receiver.datagram_received(data, source, arrival)

    def _track(self, index: int) -> RtpReceiver:
        """The first track to arrive takes the call's first receiver; later ones get their own."""
        if self._first is not None:
            receiver, self._first = self._first, None
        else:
            receiver = self._new_receiver()
            self.mix.add(receiver.buffer)
        self.receivers[index] = receiver
        return receiver

    def track_blocks(self) -> dict[int, npt.NDArray[np.int16]]:
        """Each track's own audio of the mix's last pull, by track index (receivers were added to
        the mix in the order they were created, the first one being the mix's first buffer)."""
        return dict(zip(self.receivers, self.mix.last_blocks, strict=False))

    @property
    def last_packet_at(self) -> float | None:
        times = [r.last_packet_at for r in self.receivers.values() if r.last_packet_at is not None]
        return max(times) if times else None

    def counters(self) -> dict[str, Any]:
        """The call's receive counters summed over its tracks, and the number of tracks."""
        receivers = list(self.receivers.values())
        return {
            "packets": sum(r.counters.packets for r in receivers),
            "lost": sum(r.stats.lost_total for r in receivers),
            "latePackets": sum(r.buffer.stats.late for r in receivers),
            "duplicatePackets": sum(r.buffer.stats.duplicate for r in receivers),
            "concealedMs": sum(r.buffer.stats.concealed_samples * 1000 // r.buffer.rate for r in receivers),
            "foreignPackets": self.foreign + sum(r.counters.foreign_source for r in receivers),
            "ingestTracks": len(receivers),
        }
