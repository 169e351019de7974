"""Liveness and load: ``GET /RESTCall/health``."""

from __future__ import annotations

from aiohttp import web

from bridge.looplag import LoopLagMonitor
from rest.app import MANAGER_KEY

LAG_KEY = web.AppKey("loop_lag", LoopLagMonitor)


async def health(request: web.Request) -> web.Response:
    manager = request.app[MANAGER_KEY]
    return web.json_response(
        {
            "activeCalls": len(manager.sessions),
            "rtpPortsInUse": manager.services.ports.in_use,
            "eventLoopLagMs": request.app[LAG_KEY].summary(),
        }
    )


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/RESTCall/health", health)
