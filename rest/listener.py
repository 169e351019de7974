"""The REST listener: idle keep-alive connections closed after ``rest.keepalive_seconds``, at most
``rest.max_connections`` open at once (one more is accepted and closed at once, and counted).

aiohttp keeps an idle connection for about an hour by default and caps nothing; a few hundred
idle connections from anyone would hold descriptors the calls need.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bridge.config import RestConfig, split_host_port
from bridge.net.connlimit import ConnectionLimiter


class _Refused(asyncio.Protocol):
    """A connection beyond the cap: closed as soon as it is made (RST, no descriptor held)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class CappedSite(web.TCPSite):
    """A TCPSite whose protocol factory refuses connections beyond ``limiter``'s total."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, limiter: ConnectionLimiter) -> None:
        super().__init__(runner, host, port)
        self.limiter = limiter

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None

        def factory() -> asyncio.Protocol:
            self.limiter.count = len(server.connections)
            if self.limiter.count >= self.limiter.total:
                self.limiter.refused["total"] += 1
                return _Refused()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, self._host, self._port, backlog=self._backlog)


async def start_rest(app: web.Application, config: RestConfig) -> tuple[web.AppRunner, ConnectionLimiter]:
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.keepalive_seconds)
    await runner.setup()
    host, port = split_host_port(config.listen)
    limiter = ConnectionLimiter("rest", config.max_connections, config.max_connections)
    await CappedSite(runner, host, port, limiter).start()
    return runner, limiter
