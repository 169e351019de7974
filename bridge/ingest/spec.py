"""From a stream's start metadata and its route to a call: the callId and the destination."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from bridge.calls.presets import AudioChoice, Defaults, PresetError, VideoChoice, resolve
from bridge.config import BridgeConfig
from bridge.ingest.config import PLACEHOLDER, IngestRoute
from bridge.model import CallSpec
from bridge.recording.config import check_record_formats
from bridge.rtmp.url import RtmpUrlError, parse_target
from bridge.wsmedia.events import StreamStarted

_CALL_ID = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


class SpecError(Exception):
    """The stream cannot become a call; the message says why (the socket closes with 1008)."""


@dataclass(frozen=True, slots=True)
class IngestSource:
    """How an ingest call arrived (shown in the API as ``source``)."""

    route: str
    protocol: str
    platform_id: str
    tracks: tuple[str, ...]


def call_id_of(started: StreamStarted) -> str:
    """A ``callId`` custom or query parameter if given, else the platform's id (the core chose)."""
    call_id = started.call_id or started.platform_id
    if not _CALL_ID.fullmatch(call_id):
        raise SpecError("the callId (custom parameter, query parameter or the platform's id) is empty or invalid")
    return call_id


def expand(template: str, parameters: dict[str, str]) -> str:
    """``{name}`` placeholders replaced from ``parameters``; a missing one is a SpecError naming it."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in parameters or not parameters[name]:
            raise SpecError(f"the route's stream name needs {{{name}}}, which the stream's start did not carry")
        return parameters[name]

    return PLACEHOLDER.sub(value, template)


def ingest_spec(
    name: str, route: IngestRoute, started: StreamStarted, config: BridgeConfig, images: frozenset[str]
) -> CallSpec:
    call_id = call_id_of(started)
    parameters = {**started.parameters, "callId": call_id, "route": name}
    try:
        target = parse_target(route.rtmp_url, expand(route.stream, parameters))
    except RtmpUrlError as exc:
        raise SpecError(f"route {name}: {exc}") from None
    output, video = route.output, route.video
    defaults = Defaults(config.media.default_output(), config.video.default_video(), images)
    audio = AudioChoice(output.codec, output.sample_rate, output.bitrate, output.aac_coder)
    picture = VideoChoice(video.mode, video.image)
    try:
        destination = resolve(target, route.preset or None, audio, picture, route.publish_auth or None, defaults)
    except PresetError as exc:
        raise SpecError(f"route {name}: {exc}") from None
    if route.layout == "stereo":
        destination = dataclasses.replace(destination, audio=dataclasses.replace(destination.audio, channels=2))
    if destination.audio.codec == "pcmu" and started.rate != 8000:
        raise SpecError(f"route {name}: G.711 output needs 8 kHz audio; this stream is {started.rate} Hz")
    app = config.apps.get(route.app_key) or config.apps.get(config.webhooks.default_app)
    formats = route.record if route.record is not None else app.record if app and app.record is not None else None
    try:
        record = check_record_formats(config.recording.formats if formats is None else formats, destination.audio)
    except ValueError as exc:
        raise SpecError(f"route {name}: record: {exc}") from None
    return CallSpec(
        call_id=call_id,
        callee=f"{route.protocol}:{started.platform_id}",
        destinations=(destination,),
        has_audio=False,
        has_video=False,
        sip_login="",
        sip_password="",
        sip_auth_name="",
        sip_domain="",
        sip_port=None,
        app_key=route.app_key or config.webhooks.default_app,
        reveal_stream_names=app is not None and app.reveal_stream_names,
        record=record,
    )
