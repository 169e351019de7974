"""Live events as Server-Sent Events: ``GET /api/v1/events[?callId=...]`` (for dashboards)."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from rest.common import MANAGER_KEY

HEARTBEAT_SECONDS = 15.0


async def events(request: web.Request) -> web.StreamResponse:
    bus = request.app[MANAGER_KEY].services.bus
    subscription = bus.subscribe(limit=1000, call_id=request.query.get("callId"))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        await response.write(b": connected\n\n")
        while True:
            try:
                event = await asyncio.wait_for(subscription.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            payload = json.dumps(event.to_json(), separators=(",", ":"))
            await response.write(f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        subscription.close()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def add_event_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/events", events)
