"""Live events as Server-Sent Events: ``GET /api/v1/events[?callId=...][&stats=<seconds>]``.

Every bus event (call.state, stream.state, call.event) is sent as it happens. With
``stats=N`` (1-60) a ``calls.stats`` event also comes every N seconds with the counters of
every active call (one event for all calls, so a dashboard needs no polling).

In a cluster (``[cluster]``) the stream shows the whole cluster: other nodes' events arrive
through the cluster feed (bridge.cluster.feed), ``calls.stats`` lists every node's active calls,
and every event and call carries ``node``; event ids are then ``<node>.<id>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from bridge.calls.registry import CallManager
from bridge.ops.bus import BusEvent
from rest.access import caller_of, shown_event
from rest.auth import CALLER_KEY
from rest.common import MANAGER_KEY
from rest.errors import RequestError
from rest.streams import STREAM_LIMITS_KEY

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
    """The counters of every active call (or of ``call_id``), as one ``calls.stats`` payload;
    in a cluster, every node's, each with its ``node``."""
    calls = manager.stats(call_id)
    feed = manager.services.cluster_feed
    if feed is not None:
        calls = [{**call, "node": feed.node} for call in calls]
        calls += [call for call in feed.remote_calls() if call_id is None or call.get("callId") == call_id]
    return {"type": "calls.stats", "calls": calls}


def _visible_stats(request: web.Request, call_id: str | None) -> dict[str, Any]:
    """:func:`stats_event` with only the calls of the caller's apps."""
    stats = stats_event(request.app[MANAGER_KEY], call_id)
    caller = caller_of(request)
    return {**stats, "calls": [call for call in stats["calls"] if caller.sees(str(call.get("appKey", "")))]}


def _event_frame(request: web.Request, event: BusEvent, node: str | None) -> bytes:
    """One bus event as the caller may see it; in a cluster with the node it happened on (``node``),
    in its id too."""
    payload = shown_event(request, event.to_json())
    if node is None:
        return _frame(event.id, event.type, payload)
    payload.setdefault("node", node)
    return _frame(f"{payload['node']}.{event.id}", event.type, payload)


def _frame(event_id: int | str | None, kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    prefix = f"id: {event_id}\n" if event_id is not None else ""
    return f"{prefix}event: {kind}\ndata: {data}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    limits = request.app[STREAM_LIMITS_KEY]
    with limits.slot(limits.streams, request[CALLER_KEY].name):
        return await _events(request)


async def _events(request: web.Request) -> web.StreamResponse:
    manager, caller = request.app[MANAGER_KEY], caller_of(request)
    interval = _stats_interval(request)
    call_id = request.query.get("callId")
    feed = manager.services.cluster_feed
    node = feed.node if feed is not None else None
    subscription = manager.services.bus.subscribe(limit=1000, call_id=call_id, remote=feed is not None)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    next_stats = loop.time()
    watching = feed if interval is not None else None
    if watching is not None:
        watching.watchers += 1  # the other nodes publish their counters while this is above 0
    try:
        await response.write(b": connected\n\n")
        while True:
            if interval is not None and loop.time() >= next_stats:
                await response.write(_frame(None, "calls.stats", _visible_stats(request, call_id)))
                next_stats = loop.time() + interval
            wait = HEARTBEAT_SECONDS if interval is None else max(0.0, next_stats - loop.time())
            try:
                async with asyncio.timeout(wait):
                    event = await subscription.get()
            except TimeoutError:
                if interval is None:
                    await response.write(b": heartbeat\n\n")
                continue
            if caller.sees(event.app_key):
                await response.write(_event_frame(request, event, node))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        subscription.close()
        if watching is not None:
            watching.watchers -= 1
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def add_event_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/events", events)
