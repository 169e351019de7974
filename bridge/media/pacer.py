"""Our RTP toward the far end, one packet every 20 ms whatever the media tick's length.

The call's media tick runs when the pipeline has a batch to encode (about 16 times a second); RTP
sent from it left in bursts of three or four packets, which a far end measured as 27 ms of RFC 3550
interarrival jitter on keep-alive silence, and audio played into a call needs a steady 20 ms. So
every call's sender starts on one 20 ms grid of the worker's clock, and one job on the worker's
ticker sends what every call has due at each grid point: 50 wake-ups a second per worker, and no
heap entry per call and packet.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable

from bridge.media.ticker import EARLY, Ticker

log = logging.getLogger("bridge.media")
GRID_SECONDS = 0.020
Send = Callable[[float], None]
Failure = Callable[[Exception], None]


def on_grid(now: float) -> float:
    """The first 20 ms grid point at or after ``now`` (the worker's loop clock)."""
    return math.ceil(now / GRID_SECONDS) * GRID_SECONDS


def after_grid(now: float) -> float:
    """The grid point after the one ``now`` falls on or just before (within ``EARLY``)."""
    return (math.floor((now + EARLY) / GRID_SECONDS) + 1) * GRID_SECONDS


class GridPacer:
    """The ticker job that sends every call's due RTP at each grid point (one per ticker: :meth:`of`)."""

    _by_ticker: weakref.WeakKeyDictionary[Ticker, GridPacer] = weakref.WeakKeyDictionary()

    def __init__(self, ticker: Ticker) -> None:
        self._ticker = ticker
        self._calls: dict[int, tuple[Send, Failure]] = {}

    @classmethod
    def of(cls, ticker: Ticker) -> GridPacer:
        pacer = cls._by_ticker.get(ticker)
        if pacer is None:
            pacer = cls._by_ticker[ticker] = cls(ticker)
        return pacer

    def add(self, key: int, send: Send, on_failure: Failure, now: float) -> None:
        """``send(now)`` at every grid point from now on, until :meth:`remove` (or it raises)."""
        if not self._calls:
            self._ticker.schedule(self, on_grid(now))
        self._calls[key] = (send, on_failure)

    def remove(self, key: int) -> None:
        self._calls.pop(key, None)

    def tick(self, now: float) -> float | None:
        due = now + EARLY  # the ticker runs jobs that fall due within EARLY
        for key, (send, on_failure) in list(self._calls.items()):
            try:
                send(due)
            except Exception as error:  # one call's defect costs that call only
                log.exception("RTP send failed")
                self._calls.pop(key, None)
                on_failure(error)
        return after_grid(now) if self._calls else None

    def failed(self, error: Exception) -> None:
        self._calls.clear()
