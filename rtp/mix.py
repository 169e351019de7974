"""Several audio tracks played out together as one mono timeline (sans-IO).

An ingest call may carry two to four tracks (Twilio inbound and outbound, RingCentral's
Participant and Conference perspectives, ACS unmixed participants). Each track has its own
:class:`~rtp.playout.PlayoutBuffer` (its own reordering, concealment and delay); every pull
takes the same number of samples from each and sums them, saturating at 16 bits, as a
conference bridge mixes; or, laid out in stereo, puts the first track left and the second right.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rtp.playout import PlayoutBuffer

Samples = npt.NDArray[np.int16]


class TrackMix:
    """Pulls every track's playout at once; the sum is the call's audio."""

    def __init__(self, first: PlayoutBuffer, stereo: bool = False) -> None:
        self.buffers = [first]
        self.stereo = stereo
        self.last_blocks: list[Samples] = []  # each track's block of the last pull, in ``buffers`` order

    def add(self, buffer: PlayoutBuffer, position: int | None = None) -> None:
        """A track that appeared mid-call: it joins at the next pull (silence until its audio plays),
        at ``position`` in the layout (the end if None)."""
        self.buffers.insert(len(self.buffers) if position is None else position, buffer)

    def pull(self, n: int, now: float) -> Samples:
        """``n`` samples: mono, or ``(n, 2)`` left/right (even tracks left, odd ones right; one track: both)."""
        blocks = [buffer.pull(n, now) for buffer in self.buffers]
        self.last_blocks = blocks
        if not self.stereo:
            return blocks[0] if len(blocks) == 1 else _sum(blocks)
        left = _sum(blocks[0::2])
        right = _sum(blocks[1::2]) if len(blocks) > 1 else left
        return np.ascontiguousarray(np.stack([left, right], axis=1))


def _sum(blocks: list[Samples]) -> Samples:
    if len(blocks) == 1:
        return blocks[0]
    total = np.sum(np.stack(blocks).astype(np.int32), axis=0)
    mixed: Samples = np.clip(total, -32768, 32767).astype(np.int16)
    return mixed
