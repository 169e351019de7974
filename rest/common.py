"""Request parsing and admission shared by /RESTCall and /api/v1, and the session's JSON view."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bridge.calls import AtCapacity, CallManager, DuplicateCall
from bridge.model import CallSpec, OutputSpec
from bridge.rtmp.url import RtmpTarget, RtmpUrlError, parse_target
from bridge.session import CallSession
from bridge.sip.target import TargetError, from_uri, request_uri
from rest.errors import RequestError
from rest.models import CallRequest

MANAGER_KEY = web.AppKey("manager", CallManager)


async def read_json(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[MANAGER_KEY].services.config.limits.max_body_bytes
        raise RequestError(413, "body_too_large", f"request body exceeds {limit} bytes") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None


def validation_error(exc: ValidationError) -> RequestError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if first["type"] == "missing":
        message = "this field is required"
    return RequestError(400, "invalid_field", f"{field}: {message}", field)


def to_spec(body: CallRequest, default_srtp: str) -> tuple[CallSpec, RtmpTarget]:
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
    return session.snapshot()


async def admit(request: web.Request) -> CallSession:
    """Parse, validate and start a call; raise RequestError for every refusal."""
    manager = request.app[MANAGER_KEY]
    try:
        body = CallRequest.model_validate(await read_json(request))
    except ValidationError as exc:
        raise validation_error(exc) from None
    config = manager.services.config
    spec, target = to_spec(body, config.rtp.srtp)
    allowed = config.limits.allowed_rtmp_hosts
    if allowed and target.host.lower() not in {h.lower() for h in allowed}:
        raise RequestError(
            400, "invalid_field", f"RTMP host {target.host!r} is not in limits.allowed_rtmp_hosts", "rtmpUrl"
        )
    if config.apps and spec.app_key not in config.apps and not config.webhooks.default_app:
        raise RequestError(
            400,
            "invalid_field",
            f"unknown appKey {spec.app_key!r}: no [apps.{spec.app_key}] section",
            "connection.appKey",
        )
    try:
        return manager.start(spec, target)
    except DuplicateCall as exc:
        raise RequestError(409, "conflict", str(exc), exc.field) from None
    except AtCapacity as exc:
        raise RequestError(503, exc.code, str(exc), headers={"Retry-After": "5"}) from None
