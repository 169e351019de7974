"""This node: ``GET /api/v1/node`` (its id, calls, draining) and ``POST /api/v1/node/drain``.

Draining is how a node leaves for an upgrade: it takes no new calls (in a cluster, placement
stops choosing it at once), lets its calls run to their end, then stops as on SIGTERM and exits 0;
after ``timeoutSeconds`` it hangs up what is left. ``sip-rtmp-bridge drain`` calls it.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

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


def add_node_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/node", show_node)
    app.router.add_post("/api/v1/node/drain", drain)
