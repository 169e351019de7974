"""Bounds on connections anyone can open: a total, a share per source, and refusals counted.

Sans-IO: the listeners (SIP TCP, REST, SSE, listen and ingest WebSockets) ask :meth:`admit` before
they serve a connection and call :meth:`release` when it ends. A refusal is counted by reason for
the metrics (``bridge_connections_refused_total{listener,reason}``), never logged per connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections import Counter
from typing import Any

log = logging.getLogger("bridge.connections")
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

TOTAL = "total"
PER_SOURCE = "per_source"


class ConnectionLimiter:
    """At most ``total`` connections, at most ``per_source`` from one source (address or token)."""

    def __init__(self, listener: str, total: int, per_source: int) -> None:
        self.listener = listener
        self.total, self.per_source = total, per_source
        self._open: Counter[str] = Counter()
        self.count = 0
        self.refused: Counter[str] = Counter()

    def admit(self, source: str) -> bool:
        """Count a new connection from ``source``; False (and counted as refused) beyond a limit."""
        if self.count >= self.total:
            self.refused[TOTAL] += 1
            return False
        if self._open[source] >= self.per_source:
            self.refused[PER_SOURCE] += 1
            return False
        self._open[source] += 1
        self.count += 1
        return True

    def release(self, source: str) -> None:
        if self._open[source] <= 0:
            return
        self._open[source] -= 1
        self.count -= 1
        if not self._open[source]:
            del self._open[source]

    def configure(self, total: int, per_source: int) -> None:
        """New limits (SIGHUP); connections already open stay."""
        self.total, self.per_source = total, per_source


class Throttle:
    """At most one event per ``interval`` seconds (a log line about something anyone can cause)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None
        self.suppressed = 0

    def allow(self, now: float) -> bool:
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return False
        self._last = now
        return True

    def take_suppressed(self) -> int:
        """How many were held back since the last allowed one (and start counting again)."""
        count, self.suppressed = self.suppressed, 0
        return count


class AcceptErrors:
    """The event loop's exception handler: ``accept()`` failing for want of descriptors is counted
    (``bridge_accept_errors_total``) and logged at most once a minute; anything else goes to
    asyncio's default handler. (asyncio logs each such failure with a traceback: hundreds of
    thousands of lines in minutes when idle connections exhaust the descriptors.)"""

    def __init__(self) -> None:
        self.count = 0
        self._throttle = Throttle(60.0)

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        if not (isinstance(exception, OSError) and exception.errno in _RESOURCE_ERRORS):
            loop.default_exception_handler(context)
            return
        self.count += 1
        if self._throttle.allow(time.monotonic()):
            held = self._throttle.take_suppressed()
            log.error(
                "cannot accept connections: %s (%d more since the last such line); raise LimitNOFILE= or "
                "lower rest.max_connections / sip.tcp_max_connections",
                exception.strerror,
                held,
            )


ACCEPT_ERRORS = AcceptErrors()
