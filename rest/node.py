"""This node: ``GET /api/v1/node`` (its id, calls, draining) and ``POST /api/v1/node/drain``;
the cluster's nodes: ``GET /api/v1/nodes`` (capacity, calls, headroom, draining of each).

Draining is how a node leaves for an upgrade: it takes no new calls (in a cluster, placement
stops choosing it at once), lets its calls run to their end, then stops as on SIGTERM and exits 0;
after ``timeoutSeconds`` it hangs up what is left. ``sip-rtmp-bridge drain`` calls it.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from bridge.cluster.placement import NodeRecord
from rest.common import MANAGER_KEY, read_json, validation_error
from rest.models import DrainRequest


def _node_view(request: web.Request) -> dict[str, object]:
    manager = request.app[MANAGER_KEY]
    cluster = manager.services.config.cluster
    return {
        "node": cluster.node,
        "cluster": cluster.name if cluster.enabled else None,
        "draining": manager.draining,
        "activeCalls": len(manager.sessions),
    }


async def show_node(request: web.Request) -> web.Response:
    return web.json_response(_node_view(request))


async def drain(request: web.Request) -> web.Response:
    try:
        body = DrainRequest.model_validate(await read_json(request) if request.can_read_body else {})
    except ValidationError as exc:
        raise validation_error(exc) from None
    manager = request.app[MANAGER_KEY]
    manager.drain(body.timeoutSeconds)
    if manager.services.cluster is not None:
        await manager.services.cluster.announce()  # placement stops choosing this node now, not at the next beat
    return web.json_response({**_node_view(request), "timeoutSeconds": body.timeoutSeconds}, status=202)


async def list_nodes(request: web.Request) -> web.Response:
    """Every live node as the registry knows it (the last heartbeat); this node alone without a cluster."""
    manager = request.app[MANAGER_KEY]
    registry = manager.services.cluster
    config = manager.services.config
    if registry is None:
        capacity = min(config.limits.max_calls, manager.services.ports.capacity)
        calls = len(manager.sessions)
        me = NodeRecord(config.cluster.node, "", capacity, calls, manager.draining)
        return web.json_response({"cluster": None, "nodes": [_record_json(me)], "registryUp": True})
    records = registry.last_records if registry.available else []
    nodes = [_record_json(record) for record in sorted(records, key=lambda record: record.node)]
    return web.json_response({"cluster": config.cluster.name, "nodes": nodes, "registryUp": registry.available})


def _record_json(record: NodeRecord) -> dict[str, object]:
    return {
        "node": record.node,
        "url": record.url,
        "capacity": record.capacity,
        "calls": record.calls,
        "headroom": record.headroom,
        "draining": record.draining,
    }


def add_node_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/nodes", list_nodes)
    app.router.add_get("/api/v1/node", show_node)
    app.router.add_post("/api/v1/node/drain", drain)
