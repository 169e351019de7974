"""The resource-oriented API under /api/v1."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web
from pydantic import ValidationError

from bridge.calls.record import BaseSession
from bridge.model import CallState
from bridge.workers.handle import DtmfUnavailable
from rest.access import caller_of, check_app, shown, visible
from rest.cluster_forward import FORWARDED
from rest.cluster_list import cluster_page
from rest.common import MANAGER_KEY, admit, read_json, session_json, validation_error
from rest.errors import RequestError
from rest.models import ApiCallRequest, DtmfRequest

MAX_PAGE = 200


def _session(request: web.Request) -> BaseSession:
    call_id = request.match_info["callId"]
    session = request.app[MANAGER_KEY].find(call_id)
    if session is None:
        raise RequestError(404, "not_found", f"no call {call_id!r} is active or recently ended", "callId")
    check_app(request, session.spec.app_key, call_id)
    return session


async def create_call(request: web.Request) -> web.Response:
    session = await admit(request, ApiCallRequest)
    response = web.json_response(shown(request, session_json(session)), status=201)
    response.headers["Location"] = f"/api/v1/calls/{session.spec.call_id}"
    return response


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name, str(default))
    if not raw.isdigit() or not 0 <= int(raw) <= maximum:
        raise RequestError(400, "invalid_field", f"{name} must be an integer from 0 to {maximum}", name)
    return int(raw)


async def list_calls(request: web.Request) -> web.Response:
    """Active and recently ended calls, newest first; ?state=&limit=&offset=."""
    manager = request.app[MANAGER_KEY]
    state = request.query.get("state")
    if state is not None and state not in CallState.__members__:
        raise RequestError(400, "invalid_field", f"state must be one of {', '.join(CallState.__members__)}", "state")
    limit = _int_query(request, "limit", 50, MAX_PAGE)
    offset = _int_query(request, "offset", 0, 10**9)
    sessions = [*manager.sessions.values(), *reversed(manager.recent.values())]
    caller = caller_of(request)
    sessions = [s for s in sessions if (state is None or s.state.value == state) and caller.sees(s.spec.app_key)]
    registry = manager.services.cluster
    if registry is None:
        page = [shown(request, session_json(s)) for s in sessions[offset : offset + limit]]
        return web.json_response({"calls": page, "total": len(sessions), "limit": limit, "offset": offset})
    mine = [shown(request, session_json(s)) for s in sessions[: offset + limit]]  # each with its node
    if FORWARDED in request.headers:  # a node gathering the cluster's list: this node's part only
        return web.json_response({"calls": mine, "total": len(sessions), "limit": limit, "offset": 0})
    calls, total, unreachable = await cluster_page(request, registry, mine, len(sessions), offset + limit)
    body = {"calls": visible(request, calls)[offset : offset + limit], "total": total, "limit": limit, "offset": offset}
    return web.json_response({**body, "unreachableNodes": unreachable} if unreachable else body)


async def get_call(request: web.Request) -> web.Response:
    """An active or recent call, else the stored history (e.g. after a restart)."""
    session = request.app[MANAGER_KEY].find(request.match_info["callId"])
    view = session_json(session) if session is not None else await _from_history(request)
    check_app(request, str(view.get("appKey", "")), request.match_info["callId"])
    return web.json_response(shown(request, view))


async def _from_history(request: web.Request) -> dict[str, object]:
    call_id = request.match_info["callId"]
    history = request.app[MANAGER_KEY].services.history
    view = await asyncio.to_thread(history.find, call_id) if history is not None else None
    if view is None:
        raise RequestError(404, "not_found", f"no call {call_id!r} is active or in the history", "callId")
    return view


def _time_query(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise RequestError(
                400, "invalid_field", f"{name} must be an ISO 8601 date or time, e.g. 2026-11-21", name
            ) from None
    return value


async def search_history(request: web.Request) -> web.Response:
    """Stored calls, newest first: ?state=&since=<ISO time>&until=<ISO time>&limit=&offset=."""
    history = request.app[MANAGER_KEY].services.history
    if history is None:
        raise RequestError(503, "unavailable", "the history store is not open")
    state = request.query.get("state")
    if state is not None and state not in CallState.__members__:
        raise RequestError(400, "invalid_field", f"state must be one of {', '.join(CallState.__members__)}", "state")
    since, until = _time_query(request, "since"), _time_query(request, "until")
    limit, offset = _int_query(request, "limit", 50, MAX_PAGE), _int_query(request, "offset", 0, 10**9)
    apps = caller_of(request).apps
    total, calls = await asyncio.to_thread(history.search, state, since, limit, offset, until, apps)
    return web.json_response({"calls": visible(request, calls), "total": total, "limit": limit, "offset": offset})


async def hang_up(request: web.Request) -> web.Response:
    session = _session(request)
    if session.state.final:
        raise RequestError(409, "conflict", "the call has already ended", "callId")
    request.app[MANAGER_KEY].terminate(request.match_info["callId"])
    return web.json_response(shown(request, session_json(session)), status=202)


async def call_events(request: web.Request) -> web.Response:
    session = _session(request)
    view = shown(request, session_json(session))
    return web.json_response(
        {key: view[key] for key in ("callId", "history", "streamHistory", "timeline", "sipLadder") if key in view}
    )


async def send_dtmf(request: web.Request) -> web.Response:
    session = _session(request)
    try:
        body = DtmfRequest.model_validate(await read_json(request))
    except ValidationError as exc:
        raise validation_error(exc) from None
    try:
        session.send_dtmf(body.digits, body.durationMs)
    except DtmfUnavailable as exc:
        raise RequestError(409, "conflict", str(exc), "callId") from None
    return web.json_response({"callId": session.spec.call_id, "digits": body.digits}, status=202)


def add_api_v1_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/calls", create_call)
    app.router.add_get("/api/v1/calls", list_calls)
    app.router.add_get("/api/v1/calls/{callId}", get_call)
    app.router.add_delete("/api/v1/calls/{callId}", hang_up)
    app.router.add_get("/api/v1/calls/{callId}/events", call_events)
    app.router.add_get("/api/v1/history", search_history)
    app.router.add_post("/api/v1/calls/{callId}/dtmf", send_dtmf)
