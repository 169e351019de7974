"""Request parsing and admission shared by /RESTCall and /api/v1, and the session's JSON view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bridge.calls.presets import AudioChoice, Defaults, PresetError, VideoChoice, resolve
from bridge.calls.record import BaseSession
from bridge.calls.registry import AtCapacity, CallManager, DuplicateCall
from bridge.config import AppConfig, BridgeConfig
from bridge.model import CallSpec, DestinationSpec
from bridge.recording.config import check_record_formats
from bridge.rtmp.url import RtmpUrlError, parse_target
from bridge.sip.target import TargetError, from_uri, request_uri
from rest.auth import CALLER_KEY
from rest.errors import RequestError
from rest.models import LENIENT, ApiCallRequest, CallRequest, Output, Video

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
    except RecursionError:  # e.g. 40,000 nested "[": the decoder's stack, not a server error
        raise RequestError(400, "invalid_json", "request body is nested too deeply; no field needs that") from None


def validation_error(exc: ValidationError) -> RequestError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = first["msg"]
    if first["type"] == "missing":
        message = "this field is required"
    elif first["type"] == "extra_forbidden":
        message = "unknown field: this API takes no such field (see /api/v1/docs); remove it or check its spelling"
    return RequestError(400, "invalid_field", f"{field}: {message}", field)


def to_spec(body: CallRequest | ApiCallRequest, config: BridgeConfig, slate_images: frozenset[str]) -> CallSpec:
    connection = body.connection
    defaults = Defaults(config.media.default_output(), config.video.default_video(), slate_images)
    destinations = _destinations(body, defaults, config)
    secure_signalling = connection.sipTransport.lower() == "tls" or body.callee.lower().startswith("sips:")
    if (connection.srtp or config.rtp.srtp) == "mandatory" and not secure_signalling:
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
    refused = config.sip.network_policy().refusal(connection.sipDomain)
    if refused is not None:
        raise RequestError(400, "invalid_field", f"sipDomain: {refused}", "connection.sipDomain")
    app = config.apps.get(connection.appKey) or config.apps.get(config.webhooks.default_app)
    record = _record_formats(body, app, config, destinations)
    return CallSpec(
        call_id=body.callId,
        callee=body.callee,
        destinations=destinations,
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
        codecs=tuple(connection.codecs or ()),
        reveal_stream_names=app is not None and app.reveal_stream_names,
        record=record,
    )


def _record_formats(
    body: CallRequest | ApiCallRequest,
    app: AppConfig | None,
    config: BridgeConfig,
    destinations: tuple[DestinationSpec, ...],
) -> tuple[str, ...]:
    """What to record: the request's ``record`` (/api/v1), else the app's default, else [recording] formats."""
    asked = body.record if isinstance(body, ApiCallRequest) else None
    if asked is not None:
        formats = asked.formats
    elif app is not None and app.record is not None:
        formats = app.record
    else:
        formats = config.recording.formats
    try:
        return check_record_formats(formats, destinations[0].audio)
    except ValueError as exc:
        raise RequestError(400, "invalid_field", str(exc), "record.formats") from None


@dataclass(frozen=True, slots=True)
class _Asked:
    """One destination as the request names it, with where its fields live in the body."""

    prefix: str  # "" for the top-level rtmpUrl/rtmpStream, "outputs.N." otherwise
    rtmp_url: str
    rtmp_stream: str
    preset: str | None
    publish_auth: str | None
    video: Video | None


def _asked(body: CallRequest | ApiCallRequest) -> list[_Asked]:
    output = body.output or Output()
    if isinstance(body, ApiCallRequest):
        if body.outputs is not None and (body.rtmpUrl is not None or body.rtmpStream is not None):
            raise RequestError(
                400, "invalid_field", "give either rtmpUrl and rtmpStream, or outputs, not both", "outputs"
            )
        if body.outputs is not None:
            return [
                _Asked(
                    f"outputs.{i}.",
                    d.rtmpUrl,
                    d.rtmpStream,
                    d.preset or output.preset,
                    d.publishAuth or output.publishAuth,
                    d.video,
                )
                for i, d in enumerate(body.outputs)
            ]
        for name in ("rtmpUrl", "rtmpStream"):
            if getattr(body, name) is None:
                raise RequestError(400, "invalid_field", f"{name}: this field is required (or give outputs)", name)
    assert body.rtmpUrl is not None and body.rtmpStream is not None
    return [_Asked("", body.rtmpUrl, body.rtmpStream, output.preset, output.publishAuth, None)]


def _destinations(
    body: CallRequest | ApiCallRequest, defaults: Defaults, config: BridgeConfig
) -> tuple[DestinationSpec, ...]:
    allowed_hosts = config.limits.allowed_rtmp_hosts
    policy = config.rtmp.network_policy()
    output = body.output or Output()
    audio = AudioChoice(output.codec, output.sampleRate, output.bitrate, output.aacCoder)
    call_video = _video_choice(output.video)
    resolved = []
    for asked in _asked(body):
        try:
            target = parse_target(asked.rtmp_url, asked.rtmp_stream)
        except RtmpUrlError as exc:
            field = "rtmpStream" if "rtmpStream" in str(exc) else "rtmpUrl"
            raise RequestError(400, "invalid_field", str(exc), asked.prefix + field) from None
        if allowed_hosts and target.host.lower() not in {host.lower() for host in allowed_hosts}:
            message = f"RTMP host {target.host!r} is not in limits.allowed_rtmp_hosts"
            raise RequestError(400, "invalid_field", message, asked.prefix + "rtmpUrl")
        refused = policy.refusal(target.host)
        if refused is not None:
            raise RequestError(400, "invalid_field", f"rtmpUrl: {refused}", asked.prefix + "rtmpUrl")
        own_video = _video_choice(asked.video)
        try:
            resolved.append(
                resolve(target, asked.preset, audio, own_video.over(call_video), asked.publish_auth, defaults)
            )
        except PresetError as exc:
            raise RequestError(400, "invalid_field", str(exc), _preset_field(exc.field, asked, own_video)) from None
    return tuple(resolved)


def _video_choice(video: Video | None) -> VideoChoice:
    if video is None:
        return VideoChoice()
    return VideoChoice(video.mode, video.image, video.width, video.height, video.fps, video.keyframeSeconds)


def _preset_field(field: str, asked: _Asked, own_video: VideoChoice) -> str:
    """Where in the request the refused value was given (or should be)."""
    if field == "rtmpUrl":
        return asked.prefix + field
    if field.startswith("video."):
        attribute = {"keyframeSeconds": "keyframe_seconds"}.get(field[6:], field[6:])
        own = asked.prefix and getattr(own_video, attribute) is not None
        return (asked.prefix if own else "output.") + field
    return "output." + field


def session_json(session: BaseSession) -> dict[str, Any]:
    """The public view of a session: never the password, a stream key or an RTMP token."""
    return session.snapshot()


async def admit(request: web.Request, model: type[CallRequest] | type[ApiCallRequest]) -> BaseSession:
    """Parse, validate and start a call; raise RequestError for every refusal."""
    manager = request.app[MANAGER_KEY]
    try:
        context = LENIENT if model is CallRequest else None  # /RESTCall stays lenient for existing clients
        body = model.model_validate(await read_json(request), context=context)
    except ValidationError as exc:
        raise validation_error(exc) from None
    config = manager.services.config
    spec = to_spec(body, config, manager.services.slate_images)
    caller = request.get(CALLER_KEY)
    if caller is not None and not caller.sees(spec.app_key):
        message = f"token {caller.name!r} may not start calls for appKey {spec.app_key!r} (it is bound to other apps)"
        raise RequestError(403, "forbidden", message, "connection.appKey")
    if config.apps and spec.app_key not in config.apps and not config.webhooks.default_app:
        raise RequestError(
            400,
            "invalid_field",
            f"unknown appKey {spec.app_key!r}: no [apps.{spec.app_key}] section",
            "connection.appKey",
        )
    try:
        return await manager.admit(spec)
    except DuplicateCall as exc:
        raise RequestError(409, "conflict", str(exc), exc.field) from None
    except AtCapacity as exc:
        raise RequestError(503, exc.code, str(exc), headers={"Retry-After": "5"}) from None
