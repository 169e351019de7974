"""One timer per media worker for every call's media tick (the asyncio side of the media clock).

Each call's media is a :class:`TickJob`: a synchronous ``tick(now)`` that plays out, encodes
and publishes what is due and returns when it next needs to run. The ticker keeps the jobs
in a heap by deadline and arms a single loop timer for the earliest; when it fires, every
job that is due runs in that one callback. Compared with a task and a sleep per call, a
tick costs no Future, no TimerHandle, no task step and no coroutine of its own.

Wake-ups fall on one fixed grid of the worker's loop clock (``GRID_SECONDS``): a deadline
between two grid points waits for the next one. Every call's playout clock starts on the
coarser ``CLOCK_GRID_SECONDS`` grid (:func:`clock_start`), so its batch deadlines (64 ms at
16 kHz, 80 ms for G.711 out) fall on grid points, and the worker's calls share four wake-ups
per batch, whatever their number, instead of one each; the RTP pacer's 20 ms grid is on it too.

A job that raises is taken off the ticker and told (``failed``); the other calls go on.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from typing import Protocol

log = logging.getLogger("bridge.media")
EARLY = 0.0005  # libuv timers have millisecond resolution: run what is due within half a millisecond
GRID_SECONDS = 0.004  # divides the pacer's 20 ms and the playout batches (64 ms, 80 ms)
CLOCK_GRID_SECONDS = 0.016  # playout clocks start here: four phases of a 64 ms batch


def grid_point(deadline: float, grid: float = GRID_SECONDS) -> float:
    """The first point of ``grid`` at or after ``deadline`` (within a few nanoseconds of rounding)."""
    return math.ceil(deadline / grid - 1e-6) * grid


def clock_start(now: float) -> float:
    """Where a call's playout clock starts: the next point of the clock grid."""
    return grid_point(now, CLOCK_GRID_SECONDS)


class TickJob(Protocol):
    def tick(self, now: float) -> float | None:
        """Do what is due at ``now``; return the next deadline, or None to leave the ticker."""
        ...

    def failed(self, error: Exception) -> None:
        """``tick`` raised: the job is off the ticker."""
        ...


class Ticker:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, TickJob]] = []
        self._tickets: dict[int, int] = {}  # id(job) -> the ticket of its live heap entry
        self._sequence = 0
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for = math.inf
        self.ticks = 0
        self.wakeups = 0

    def __len__(self) -> int:
        return len(self._tickets)

    def schedule(self, job: TickJob, deadline: float) -> None:
        """Run ``job`` at ``deadline`` (replacing any earlier schedule of it)."""
        self._sequence += 1
        self._tickets[id(job)] = self._sequence
        heapq.heappush(self._heap, (deadline, self._sequence, id(job), job))
        if grid_point(deadline) < self._armed_for:
            self._arm(deadline)

    def cancel(self, job: TickJob) -> None:
        """Take ``job`` off the ticker (its heap entry is skipped when reached)."""
        self._tickets.pop(id(job), None)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._armed_for = None, math.inf
        self._heap.clear()
        self._tickets.clear()

    def _arm(self, deadline: float) -> None:
        """One loop timer, for the grid point of the earliest deadline."""
        if self._handle is not None:
            self._handle.cancel()
        self._armed_for = grid_point(deadline)
        self._handle = asyncio.get_running_loop().call_at(self._armed_for, self._fire)

    def _fire(self) -> None:
        self._handle, self._armed_for = None, math.inf
        self.wakeups += 1
        loop = asyncio.get_running_loop()
        heap, tickets = self._heap, self._tickets
        while heap and heap[0][0] <= loop.time() + EARLY:
            _, ticket, key, job = heapq.heappop(heap)
            if tickets.get(key) != ticket:
                continue  # cancelled or rescheduled
            self.ticks += 1
            following = self._run(job, loop.time())
            if following is None:
                tickets.pop(key, None)
            else:
                heapq.heappush(heap, (following, ticket, key, job))
        while heap and tickets.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)  # drop dead entries at the top so the timer is not armed for them
        if heap:
            self._arm(heap[0][0])

    @staticmethod
    def _run(job: TickJob, now: float) -> float | None:
        try:
            return job.tick(now)
        except Exception as error:  # a defect in one call's media costs that call only
            log.exception("media tick failed")
            job.failed(error)
            return None
