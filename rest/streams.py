"""Bounds on long-lived streams: SSE events and listen per token, ingest WebSockets per route."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from aiohttp import web

from bridge.config import BridgeConfig
from bridge.net.connlimit import ConnectionLimiter
from rest.errors import RequestError


class StreamLimits:
    """One limiter for SSE and listen streams (keyed by token) and one for ingest (keyed by route).

    The streams' caps are fixed at start-up (their descriptors are budgeted then: bridge/daemon/fdlimit.py);
    the ingest cap follows ``limits.max_calls`` as a reload changes it (``config`` is read at each use).
    """

    def __init__(self, config: Callable[[], BridgeConfig]) -> None:
        self._config = config
        limits = config().limits
        self.streams = ConnectionLimiter("streams", limits.max_streams, limits.max_streams_per_token)
        self.ingest = ConnectionLimiter("ingest", limits.max_calls + limits.max_streams_per_token, limits.max_calls)

    @contextlib.contextmanager
    def slot(self, limiter: ConnectionLimiter, key: str) -> Iterator[None]:
        """Hold one stream for ``key`` while the body runs; 429 when ``key`` or everyone is at the limit."""
        if limiter is self.ingest:
            limits = self._config().limits
            limiter.configure(limits.max_calls + limits.max_streams_per_token, limits.max_calls)
        if not limiter.admit(key):
            message = f"too many open {limiter.listener} connections; close one or retry later"
            raise RequestError(429, "too_many_streams", message, headers={"Retry-After": "5"})
        try:
            yield
        finally:
            limiter.release(key)


STREAM_LIMITS_KEY = web.AppKey("stream_limits", StreamLimits)
