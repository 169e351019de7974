"""Listening to a live call from a browser, and the tickets that let a URL stand for a token.

``GET /api/v1/calls/{callId}/tickets?purpose=listen|recordings`` gives the caller (with a token)
a short-lived ticket; ``GET /api/v1/calls/{callId}/listen?ticket=…`` then streams the call's
published AAC as ADTS (``audio/aac``) over chunked HTTP for as long as the call and the
listener last: an ``<audio>`` element plays it with about half a second of delay (one AAC frame
batch per worker tick, the browser's own buffer). The media worker sends the frames only while
someone listens.
"""

from __future__ import annotations

import time

from aiohttp import web

from bridge.net.tickets import PURPOSES, Tickets
from bridge.recording.adts import adts
from rest.access import check_call_app
from rest.auth import CALLER_KEY
from rest.common import MANAGER_KEY
from rest.errors import RequestError
from rest.streams import STREAM_LIMITS_KEY

TICKETS_KEY = web.AppKey("tickets", Tickets)


async def issue_ticket(request: web.Request) -> web.Response:
    call_id = request.match_info["callId"]
    await check_call_app(request, call_id)
    purpose = request.query.get("purpose", "listen")
    if purpose not in PURPOSES:
        raise RequestError(400, "invalid_field", f"purpose must be one of {', '.join(PURPOSES)}", "purpose")
    manager = request.app[MANAGER_KEY]
    if manager.find(call_id) is None and purpose == "listen":
        raise RequestError(404, "not_found", f"no call {call_id!r} is active", "callId")
    ttl = manager.services.config.auth.ticket_seconds
    ticket, expires = request.app[TICKETS_KEY].issue(call_id, purpose, time.time(), ttl)
    body = {"callId": call_id, "purpose": purpose, "ticket": ticket, "expiresAt": expires}
    if purpose == "listen":
        body["url"] = f"/api/v1/calls/{call_id}/listen?ticket={ticket}"
    response = web.json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


async def listen(request: web.Request) -> web.StreamResponse:
    limits = request.app[STREAM_LIMITS_KEY]
    caller = request[CALLER_KEY].name
    key = f"ticket:{request.match_info['callId']}" if caller.startswith("ticket:") else caller
    with limits.slot(limits.streams, key):
        return await _listen(request)


async def _listen(request: web.Request) -> web.StreamResponse:
    call_id = request.match_info["callId"]
    await check_call_app(request, call_id)
    session = request.app[MANAGER_KEY].sessions.get(call_id)
    if session is None or session.media is None or not session.media.started:
        raise RequestError(409, "conflict", f"call {call_id!r} has no live audio to listen to", "callId")
    audio = session.spec.destinations[0].audio
    if audio.codec != "aac":
        raise RequestError(
            409,
            "conflict",
            "listening plays the published AAC; this call publishes G.711 (output.codec pcmu)",
            "callId",
        )
    response = web.StreamResponse(headers={"Content-Type": "audio/aac", "Cache-Control": "no-store"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async with session.media.listening() as frames:
            while (batch := await frames.get()) is not None:
                await response.write(adts(batch, audio.sample_rate, audio.channels))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the player went away: that is how a listener stops listening
    return response


def add_listen_routes(app: web.Application, tickets: Tickets) -> None:
    app[TICKETS_KEY] = tickets
    app.router.add_get("/api/v1/calls/{callId}/tickets", issue_ticket)
    app.router.add_get("/api/v1/calls/{callId}/listen", listen)
