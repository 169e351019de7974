"""Call set-ups on a media worker, taken one per loop turn.

Starting a call's media costs the worker about 2 ms on its loop, most of it in the call's first
step: opening FFmpeg's AAC encoder (0.6-0.9 ms, holding the GIL), the pipeline, the recorder and
the destinations. The daemon's StartMedia messages come in bursts (200 calls POSTed in a few
seconds, a restarted worker's share); every call's first step then ran in the same loop turn, back
to back, and every running call's tick waited behind them (loop lag p99 318 ms at 200 calls).

So a call's media waits for its turn (:meth:`SetupQueue.turn`) before that step. Turns are given one
per loop turn, in order: each set-up runs after the ticks and I/O that were ready before it. The
call's objects exist from StartMedia on, so the messages that follow it (a stream handed over, a
track named, a re-INVITE) find them. The queue is bounded (``limit``): a set-up beyond it is refused
at once (:class:`SetupQueueFull`), with a reason the daemon reports, rather than waiting behind
hundreds of others.
"""

from __future__ import annotations

import asyncio
from collections import deque

SETUP_QUEUE_LIMIT = 256  # set-ups waiting on one worker: more than a worker carries calls


class SetupQueueFull(Exception):
    """More call set-ups are waiting on this worker than its queue holds."""


class SetupQueue:
    def __init__(self, limit: int = SETUP_QUEUE_LIMIT) -> None:
        self._limit = limit
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._handle: asyncio.Handle | None = None
        self.given = 0
        self.most_waiting = 0  # the longest the queue has been

    def __len__(self) -> int:
        return len(self._waiting)

    def turn(self) -> asyncio.Future[None]:
        """Done when it is this set-up's turn; raises :class:`SetupQueueFull` if the queue is full.

        A caller that is cancelled while waiting simply loses its place."""
        if len(self._waiting) >= self._limit:
            raise SetupQueueFull(f"{len(self._waiting)} call set-ups are waiting on this media worker")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        self.most_waiting = max(self.most_waiting, len(self._waiting))
        if self._handle is None:
            self._handle = loop.call_soon(self._give_one)
        return waiter

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for waiter in self._waiting:
            waiter.cancel()
        self._waiting.clear()

    def _give_one(self) -> None:
        """One turn: the first waiter still waiting resumes in the next loop turn; the next turn is
        given after it, at the back of that turn's ready queue."""
        self._handle = None
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.given += 1
                break
        if self._waiting:
            self._handle = asyncio.get_running_loop().call_soon(self._give_one)
