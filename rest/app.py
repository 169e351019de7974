"""The aiohttp application serving the ``/RESTCall`` contract.

Errors have one shape everywhere: ``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bridge.calls import CallManager, DuplicateCall
from bridge.model import CallSpec, OutputSpec
from bridge.rtmp.url import RtmpTarget, RtmpUrlError, parse_target
from bridge.session import CallSession
from bridge.sip.target import TargetError, from_uri, request_uri
from rest.models import CallRequest, TerminateRequest

MAX_BODY_BYTES = 64 * 1024
MANAGER_KEY = web.AppKey("manager", CallManager)


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return web.json_response(body, status=status)


class RequestError(Exception):
    """A client error to report with :func:`error_response`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.response = error_response(status, code, message, field)


async def _read_json(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestError(413, "body_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None


def _validation_error(exc: ValidationError) -> RequestError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if first["type"] == "missing":
        message = "this field is required"
    return RequestError(400, "invalid_field", f"{field}: {message}", field)


def _to_spec(body: CallRequest, default_srtp: str) -> tuple[CallSpec, RtmpTarget]:
    connection = body.connection
    try:
        target = parse_target(body.rtmpUrl, body.rtmpStream)
    except RtmpUrlError as exc:
        field = "rtmpStream" if "rtmpStream" in str(exc) else "rtmpUrl"
        raise RequestError(400, "invalid_field", str(exc), field) from None
    secure_signalling = connection.sipTransport.lower() == "tls" or body.callee.lower().startswith("sips:")
    if (connection.srtp or default_srtp) == "mandatory" and not secure_signalling:
        raise RequestError(
            400,
            "invalid_field",
            "srtp=mandatory sends the media keys in the SDP, so it needs TLS signalling: "
            'set connection.sipTransport to "tls" (or use a sips: callee)',
            "connection.srtp",
        )
    try:
        request_uri(body.callee, connection.sipDomain, connection.sipPort)
        from_uri(connection.sipLogin, connection.sipDomain)
    except TargetError as exc:
        raise RequestError(400, "invalid_field", str(exc), exc.field) from None
    spec = CallSpec(
        call_id=body.callId,
        callee=body.callee,
        rtmp_url=body.rtmpUrl,
        rtmp_stream=body.rtmpStream,
        has_audio=body.hasAudio,
        has_video=body.hasVideo,
        sip_login=connection.sipLogin,
        sip_password=connection.sipPassword.get_secret_value(),
        sip_auth_name=connection.sipAuthenticationName,
        sip_domain=connection.sipDomain,
        sip_port=connection.sipPort,
        app_key=connection.appKey,
        register=connection.sipRegisterRequired,
        sip_transport=connection.sipTransport.lower(),
        srtp=connection.srtp or "",
        output=_output(body),
    )
    return spec, target


def _output(body: CallRequest) -> OutputSpec | None:
    out = body.output
    return None if out is None else OutputSpec(out.codec, out.sampleRate, out.bitrate, out.aacCoder)


def session_json(session: CallSession) -> dict[str, Any]:
    """The public view of a session: never the password, never RTMP tokens."""
    spec = session.spec
    return {
        "callId": spec.call_id,
        "callee": spec.callee,
        "sipDomain": spec.sip_domain,
        "sipCallId": session.sip_call_id,
        "appKey": spec.app_key,
        "hasAudio": spec.has_audio,
        "hasVideo": spec.has_video,
        "rtmpTarget": session.target.public_url(),
        "active": not session.state.final,
        "state": session.state.value,
        "streamState": session.stream_state.value,
        "streamHistory": session.stream_history,
        "reason": session.reason,
        "createdAt": session.created_at.isoformat(),
        "history": [change.to_json() for change in session.history],
        "timeline": session.timeline,
        "sipLadder": session.sip_ladder(),
        "counters": session.counters(),
    }


async def start_call(request: web.Request) -> web.Response:
    try:
        body = CallRequest.model_validate(await _read_json(request))
    except ValidationError as exc:
        return _validation_error(exc).response
    spec, target = _to_spec(body, request.app[MANAGER_KEY].services.config.rtp.srtp)
    try:
        session = request.app[MANAGER_KEY].start(spec, target)
    except DuplicateCall as exc:
        return error_response(409, "conflict", str(exc), exc.field)
    return web.json_response(session_json(session))


async def terminate_call(request: web.Request) -> web.Response:
    try:
        body = TerminateRequest.model_validate(await _read_json(request))
    except ValidationError as exc:
        return _validation_error(exc).response
    session = request.app[MANAGER_KEY].terminate(body.callId)
    if session is None:
        return error_response(404, "not_found", f"no active call {body.callId!r}", "callId")
    return web.json_response(session_json(session))


async def list_calls(request: web.Request) -> web.Response:
    sessions = request.app[MANAGER_KEY].sessions.values()
    return web.json_response({"calls": [session_json(s) for s in sessions]})


async def get_call(request: web.Request) -> web.Response:
    call_id = request.match_info["callId"]
    session = request.app[MANAGER_KEY].find(call_id)
    if session is None:
        return error_response(404, "not_found", f"no call {call_id!r} is active or recently ended", "callId")
    return web.json_response(session_json(session))


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except RequestError as exc:
        return exc.response


def create_app(manager: CallManager) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_errors])
    app[MANAGER_KEY] = manager
    app.router.add_post("/RESTCall/call", start_call)
    app.router.add_post("/RESTCall/terminate", terminate_call)
    app.router.add_get("/RESTCall/calls", list_calls)
    app.router.add_get("/RESTCall/calls/{callId}", get_call)
    return app
