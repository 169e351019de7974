"""Live events as Server-Sent Events: ``GET /api/v1/events[?callId=...][&stats=<seconds>]``.

Every bus event (call.state, stream.state, call.event) is sent as it happens. With
``stats=N`` (1-60) a ``calls.stats`` event also comes every N seconds with the counters of
every active call (one event for all calls, so a dashboard needs no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from bridge.calls import CallManager
from bridge.media.counters import zero_counters
from rest.common import MANAGER_KEY
from rest.errors import RequestError

HEARTBEAT_SECONDS = 15.0
MAX_STATS_SECONDS = 60


def _stats_interval(request: web.Request) -> float | None:
    raw = request.query.get("stats")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_STATS_SECONDS:
        raise RequestError(400, "invalid_field", f"stats must be a whole number of seconds from 1 to 60, got {raw!r}")
    return float(raw)


def stats_event(manager: CallManager, call_id: str | None) -> dict[str, Any]:
    """The counters of every active call (or of ``call_id``), as one ``calls.stats`` payload."""
    calls = [
        {
            "callId": session.spec.call_id,
            "state": session.state.value,
            "streamState": session.stream_state.value,
            "counters": {**zero_counters(), **session.counters()},  # all keys, even before media starts
        }
        for session in manager.sessions.values()
        if call_id is None or session.spec.call_id == call_id
    ]
    return {"type": "calls.stats", "calls": calls}


def _frame(event_id: int | None, kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    prefix = f"id: {event_id}\n" if event_id is not None else ""
    return f"{prefix}event: {kind}\ndata: {data}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    manager = request.app[MANAGER_KEY]
    interval = _stats_interval(request)
    call_id = request.query.get("callId")
    subscription = manager.services.bus.subscribe(limit=1000, call_id=call_id)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    next_stats = loop.time()
    try:
        await response.write(b": connected\n\n")
        while True:
            if interval is not None and loop.time() >= next_stats:
                await response.write(_frame(None, "calls.stats", stats_event(manager, call_id)))
                next_stats = loop.time() + interval
            wait = HEARTBEAT_SECONDS if interval is None else max(0.0, next_stats - loop.time())
            try:
                event = await asyncio.wait_for(subscription.get(), wait)
            except TimeoutError:
                if interval is None:
                    await response.write(b": heartbeat\n\n")
                continue
            await response.write(_frame(event.id, event.type, event.to_json()))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        subscription.close()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def add_event_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/events", events)
