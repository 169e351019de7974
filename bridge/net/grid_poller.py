"""Reading many stream sockets on one 10 ms grid, with one ``epoll`` for all of them.

A platform sends each call's 20 ms media message on its own, so a connection read by the event
loop wakes it once per message: at 100 calls that is 5,000 wake-ups a second, and the loop's own
work per wake-up (the poll, the read, the callback) cost more than the message (docs/decisions.md,
"WebSocket ingest"). Here a timer polls every connection at once every ``interval``: one
``epoll_wait`` and one ``recv`` per ready connection, whatever the number of calls. The daemon
reads an ingest WebSocket this way every 10 ms from its upgrade to its call's admission, the
call's media worker every 20 ms from then on (plain TCP only: a TLS connection is read through its
transport). The playout absorbs what this adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
from typing import Protocol

POLL_SECONDS = 0.010
READ_BYTES = 65536
READS_PER_POLL = 4  # at most 256 KiB from one connection per poll: a flood cannot starve the others


class PolledConnection(Protocol):
    def feed_data(self, data: bytes) -> tuple[bool, bytes]: ...

    def feed_eof(self) -> None: ...


class GridPoller:
    """The connections read on the grid; the timer runs only while there is one."""

    def __init__(self, interval: float = POLL_SECONDS) -> None:
        self.interval = interval
        self._epoll: select.epoll | None = None
        self._connections: dict[int, tuple[socket.socket, PolledConnection]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._next = 0.0

    def add(self, fileno: int, connection: PolledConnection) -> socket.socket | None:
        """Read ``fileno`` (a duplicate of it) on the grid from now on; None if it cannot be."""
        try:
            sock = socket.socket(fileno=os.dup(fileno))
        except OSError:
            return None
        sock.setblocking(False)
        if self._epoll is None:
            self._epoll = select.epoll()
        self._epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        self._connections[sock.fileno()] = (sock, connection)
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._next = loop.time() + self.interval
            self._timer = loop.call_at(self._next, self._poll)
        return sock

    def remove(self, sock: socket.socket) -> None:
        """Stop reading ``sock`` and close the duplicate (the transport closes its own)."""
        entry = self._connections.pop(sock.fileno(), None) if sock.fileno() >= 0 else None
        if entry is not None and self._epoll is not None:
            with contextlib.suppress(OSError):
                self._epoll.unregister(sock.fileno())
        sock.close()
        if not self._connections and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        for sock, _ in list(self._connections.values()):
            self.remove(sock)
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None

    def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        self._next = max(self._next + self.interval, loop.time())  # a late poll does not bunch the next ones
        self._timer = loop.call_at(self._next, self._poll)
        assert self._epoll is not None
        for fileno, _ in self._epoll.poll(0, len(self._connections) or 1):
            entry = self._connections.get(fileno)
            if entry is not None and not _read(*entry) and self._connections.get(fileno) is entry:
                self._epoll.unregister(fileno)  # ended: polled no more; its owner closes it


def _read(sock: socket.socket, connection: PolledConnection) -> bool:
    """What the connection holds now (at most READS_PER_POLL reads); False once it has ended.

    A connection may be removed from the poller while it is fed (it ended, or changed hands).
    """
    for _ in range(READS_PER_POLL):
        try:
            data = sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:  # reset by the peer: an end without a close frame
            data = b""
        if not data:
            connection.feed_eof()
            return False
        connection.feed_data(data)
        if len(data) < READ_BYTES or sock.fileno() < 0:  # all there was, or removed while it was fed
            return True
    return True
