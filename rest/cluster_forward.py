"""One API over the cluster: a request about a call another node owns is answered by that node,
and a new call is placed on the node with the most headroom (``[cluster]``).

The request keeps its token (every node shares ``[auth]``), and is marked with
``X-Bridge-Forwarded-By`` so the receiving node handles it itself: a request is forwarded at most
once. The answer, streaming ones (SSE, recordings, listen) included, is relayed as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.parse
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from bridge.cluster.placement import NodeRecord, choose
from bridge.cluster.registry import ClusterRegistry, RegistryUnavailable
from rest.common import MANAGER_KEY
from rest.errors import RequestError

FORWARDED = "X-Bridge-Forwarded-By"
PLACED_PATHS = frozenset({"/api/v1/calls", "/RESTCall/call"})
REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept", "Range", "Last-Event-ID")
ANSWER_HEADERS = ("Content-Type", "Content-Encoding", "Content-Length", "Content-Range", "Content-Disposition",
                  "Accept-Ranges", "Cache-Control", "Retry-After", "Location")  # fmt: skip
CLIENT_KEY = web.AppKey("cluster_client", aiohttp.ClientSession)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("bridge.cluster")


@web.middleware
async def forward_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    registry = request.app[MANAGER_KEY].services.cluster
    if registry is None or FORWARDED in request.headers:
        return await handler(request)
    target = await _target(request, registry)
    if target is None:
        return await handler(request)
    return await _relay(request, target, registry.node)


async def _target(request: web.Request, registry: ClusterRegistry) -> NodeRecord | None:
    """The other node this request belongs on, or None to answer it here."""
    try:
        if request.method == "POST" and request.path in PLACED_PATHS:
            return await _placement(registry)
        call_id = await _call_id(request)
        if call_id is None or request.app[MANAGER_KEY].find(call_id) is not None:
            return None
        return await registry.owner(call_id)
    except RegistryUnavailable:
        return None  # answered here: a new call then gets its 503, a known call its own answer


async def _placement(registry: ClusterRegistry) -> NodeRecord | None:
    chosen = choose(await _records(registry), registry.node)
    if chosen is None:
        raise RequestError(503, "at_capacity", "no node of the cluster has room for a new call; retry later",
                           headers={"Retry-After": "5"})  # fmt: skip
    return None if chosen.node == registry.node else chosen


async def _records(registry: ClusterRegistry) -> list[NodeRecord]:
    from redis.exceptions import RedisError

    try:
        return await registry.records()
    except (RedisError, OSError) as exc:
        raise RegistryUnavailable(str(exc)) from None


async def _call_id(request: web.Request) -> str | None:
    call_id = request.match_info.get("callId")
    if call_id is None and request.method == "POST" and request.path == "/RESTCall/terminate":
        try:
            body = json.loads(await request.read() or b"null")
        except (ValueError, RecursionError):
            return None
        found = body.get("callId") if isinstance(body, dict) else None
        return found if isinstance(found, str) else None
    return call_id


async def peer_refusal(request: web.Request, url: str) -> str | None:
    """Why a node's URL (as Redis has it) may not receive relayed requests, or None: every address
    its host resolves to must be in ``cluster.peer_networks``. Whoever can write to Redis could
    otherwise send callers' tokens and SIP passwords anywhere."""
    host = urllib.parse.urlsplit(url).hostname or ""
    policy = request.app[MANAGER_KEY].services.config.cluster.peer_policy()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return f"its host {host!r} does not resolve"
    for address in dict.fromkeys(str(info[4][0]) for info in infos):
        refused = policy.refusal(address)
        if refused is not None:
            return refused
    return None


async def _relay(request: web.Request, target: NodeRecord, me: str) -> web.StreamResponse:
    refused = await peer_refusal(request, target.url)
    if refused is not None:
        log.error("not relaying to node %s (%s): %s", target.node, target.url, refused)
        message = f"node {target.node} is not reachable from this node (see its log); retry later"
        raise RequestError(502, "node_unreachable", message, headers={"Retry-After": "2"})
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    headers[FORWARDED] = me
    body = await request.read() if request.can_read_body else None
    url = target.url.rstrip("/") + request.rel_url.raw_path_qs
    response = web.StreamResponse()
    try:
        async with request.app[CLIENT_KEY].request(request.method, url, headers=headers, data=body) as answer:
            response.set_status(answer.status)
            for name in ANSWER_HEADERS:
                if name in answer.headers:
                    response.headers[name] = answer.headers[name]
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
    except (aiohttp.ClientError, TimeoutError, ConnectionResetError) as exc:
        if response.prepared:
            return response  # the client or the owner went away mid-answer: the relay ends with it
        message = f"node {target.node} ({target.url}) did not answer: {exc or type(exc).__name__}; retry later"
        raise RequestError(502, "node_unreachable", message, headers={"Retry-After": "2"}) from None
    return response


async def open_client(app: web.Application) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=3.0, sock_read=None)
    app[CLIENT_KEY] = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)


async def close_client(app: web.Application) -> None:
    await app[CLIENT_KEY].close()
