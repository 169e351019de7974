"""Our RTP toward the far end, one packet every 20 ms whatever the media tick's length.

The call's media tick runs when the pipeline has a batch to encode (about 16 times a second); RTP
sent from it left in bursts of three or four packets, which a far end measured as 26 ms of RFC 3550
interarrival jitter on keep-alive silence, and audio played into a call needs a steady 20 ms. So
sending is a second job on the worker's ticker with a deadline per packet (``SilenceSender``'s
timer), and every call's packets fall on one 20 ms grid of the worker's clock: the ticker runs all
the calls' sends due in one wake-up, 50 a second per worker rather than per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bridge.media.ticker import EARLY

GRID_SECONDS = 0.020


def on_grid(now: float) -> float:
    """The first 20 ms grid point at or after ``now`` (the worker's loop clock)."""
    return math.ceil(now / GRID_SECONDS) * GRID_SECONDS


class PacedSend:
    """A ticker job: ``send(now)`` sends what is due and returns the next packet's time (None: done).

    ``now`` is taken ``EARLY`` ahead, as the ticker runs jobs that fall due within it."""

    def __init__(self, send: Callable[[float], float | None], on_failure: Callable[[Exception], None]) -> None:
        self._send, self._on_failure = send, on_failure

    def tick(self, now: float) -> float | None:
        return self._send(now + EARLY)

    def failed(self, error: Exception) -> None:
        self._on_failure(error)
