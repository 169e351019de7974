"""What a caller may see of calls: only its apps' calls (a token bound to ``apps``), and DTMF
digits masked unless it has full scope (with ``log.mask_dtmf`` on, the default)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from bridge.calls.destinations import mask_dtmf
from rest.auth import CALLER_KEY, Caller
from rest.common import MANAGER_KEY
from rest.errors import RequestError

ANONYMOUS = Caller("anonymous", "full")
DTMF_EVENTS = frozenset({"dtmf", "dtmf-sent"})


def caller_of(request: web.Request) -> Caller:
    return request.get(CALLER_KEY) or ANONYMOUS


def check_app(request: web.Request, app_key: str, call_id: str) -> None:
    """404 for a call of an app the caller is not bound to (as if it did not exist)."""
    if not caller_of(request).sees(app_key):
        raise RequestError(404, "not_found", f"no call {call_id!r} is active or recently ended", "callId")


def _masks(request: web.Request) -> bool:
    return caller_of(request).scope != "full" and request.app[MANAGER_KEY].services.config.log.mask_dtmf


def shown(request: web.Request, view: dict[str, Any]) -> dict[str, Any]:
    """A call's view as this caller may see it (DTMF digits masked below full scope)."""
    if not _masks(request) or "timeline" not in view:
        return view
    return {**view, "timeline": [mask_dtmf(entry) for entry in view["timeline"]]}


def shown_event(request: web.Request, payload: dict[str, Any]) -> dict[str, Any]:
    """A bus event's payload as this caller may see it."""
    if payload.get("event") in DTMF_EVENTS and _masks(request):
        return mask_dtmf(payload)
    return payload


async def check_call_app(request: web.Request, call_id: str) -> None:
    """:func:`check_app` for a call known by id only (active, recent or in the history)."""
    if caller_of(request).apps is None:
        return
    manager = request.app[MANAGER_KEY]
    session = manager.find(call_id)
    if session is not None:
        check_app(request, session.spec.app_key, call_id)
        return
    history = manager.services.history
    view = await asyncio.to_thread(history.find, call_id) if history is not None else None
    check_app(request, str(view.get("appKey", "")) if view else "", call_id)


def visible(request: web.Request, views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The views of calls the caller may see, each as it may see it."""
    caller = caller_of(request)
    return [shown(request, view) for view in views if caller.sees(str(view.get("appKey", "")))]
