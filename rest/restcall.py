"""The original ``/RESTCall`` contract, unchanged for existing clients."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import ValidationError

from rest.access import caller_of, check_app, shown, visible
from rest.common import MANAGER_KEY, admit, read_json, session_json, validation_error
from rest.errors import error_response
from rest.models import LENIENT, CallRequest, TerminateRequest


async def start_call(request: web.Request) -> web.Response:
    return web.json_response(shown(request, session_json(await admit(request, CallRequest))))


async def terminate_call(request: web.Request) -> web.Response:
    try:
        body = TerminateRequest.model_validate(await read_json(request), context=LENIENT)
    except ValidationError as exc:
        return validation_error(exc).response
    found = request.app[MANAGER_KEY].sessions.get(body.callId)
    session = (
        request.app[MANAGER_KEY].terminate(body.callId)
        if found and caller_of(request).sees(found.spec.app_key)
        else None
    )
    if session is None:
        return error_response(404, "not_found", f"no active call {body.callId!r}", "callId")
    return web.json_response(shown(request, session_json(session)))


async def list_calls(request: web.Request) -> web.Response:
    sessions = request.app[MANAGER_KEY].sessions.values()
    return web.json_response({"calls": visible(request, (session_json(s) for s in sessions))})


async def get_call(request: web.Request) -> web.Response:
    call_id = request.match_info["callId"]
    session = request.app[MANAGER_KEY].find(call_id)
    if session is not None:
        check_app(request, session.spec.app_key, call_id)
        return web.json_response(shown(request, session_json(session)))
    history = request.app[MANAGER_KEY].services.history
    view = await asyncio.to_thread(history.find, call_id) if history is not None else None
    if view is None:
        return error_response(404, "not_found", f"no call {call_id!r} is active or in the history", "callId")
    check_app(request, str(view.get("appKey", "")), call_id)
    return web.json_response(shown(request, view))


def add_restcall_routes(app: web.Application) -> None:
    app.router.add_post("/RESTCall/call", start_call)
    app.router.add_post("/RESTCall/terminate", terminate_call)
    app.router.add_get("/RESTCall/calls", list_calls)
    app.router.add_get("/RESTCall/calls/{callId}", get_call)
