"""``GET /api/v1/calls`` over the whole cluster: each node's calls, with a ``node`` field, merged
newest first. Nodes are asked at the same time; one that does not answer is named in
``unreachableNodes`` rather than failing the list."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from bridge.cluster.placement import NodeRecord
from bridge.cluster.registry import ClusterRegistry
from rest.cluster_forward import CLIENT_KEY, FORWARDED, REQUEST_HEADERS, peer_refusal

PEER_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


async def cluster_page(
    request: web.Request, registry: ClusterRegistry, local: list[dict[str, Any]], total: int, wanted: int
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Up to ``wanted`` calls (offset + limit) of every node, newest first; the total; unreachable nodes."""
    others = [record for record in await _records(registry) if record.node != registry.node]
    answers = await asyncio.gather(*(_ask(request, record, wanted) for record in others))
    calls, unreachable = list(local), []
    for record, answer in zip(others, answers, strict=True):
        if answer is None:
            unreachable.append(record.node)
            continue
        calls.extend(answer["calls"])
        total += int(answer["total"])
    calls.sort(key=lambda call: str(call.get("createdAt", "")), reverse=True)
    return calls, total, unreachable


async def _records(registry: ClusterRegistry) -> list[NodeRecord]:
    """The other nodes' records; none while Redis is unreachable (this node's calls are still listed)."""
    from redis.exceptions import RedisError

    try:
        return await registry.records()
    except (RedisError, OSError):
        return []


async def _ask(request: web.Request, record: NodeRecord, wanted: int) -> dict[str, Any] | None:
    if await peer_refusal(request, record.url) is not None:
        return None  # listed as unreachable; _relay logs why when a request is relayed there
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    headers[FORWARDED] = "list"
    query = {"limit": str(wanted), "offset": "0"}
    if "state" in request.query:
        query["state"] = request.query["state"]
    url = record.url.rstrip("/") + "/api/v1/calls"
    try:
        async with request.app[CLIENT_KEY].get(url, headers=headers, params=query, timeout=PEER_TIMEOUT) as answer:
            if answer.status != 200:
                return None
            body: dict[str, Any] = await answer.json()
            return body
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
