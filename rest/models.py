"""Request bodies of the REST contract, validated by pydantic.

Booleans and ports may arrive as JSON values or as strings ("true", "5060"):
pydantic's lax mode converts both. No field may contain control characters,
since several of them end up inside SIP messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    model_validator,
)

from bridge.recording.config import RecordFormat
from rtp.codecs import check_codec_names

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, ...)")
    return value


Text = Annotated[str, Field(max_length=256), AfterValidator(_no_control_characters)]
RequiredText = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_control_characters)]


def _codec_list(value: object) -> object:
    """Lenient: a JSON list, or one string naming codecs separated by commas or spaces ("pcma, pcmu")."""
    if isinstance(value, str):
        return re.findall(r"[A-Za-z0-9]+", value)
    return value


Codecs = Annotated[
    list[Annotated[str, Field(max_length=16)]],
    BeforeValidator(_codec_list),
    Field(max_length=8),
    AfterValidator(check_codec_names),
]


LENIENT = {"lenient": True}  # validation context of /RESTCall: unknown fields are ignored there


class _Model(BaseModel):
    """Unknown fields are refused (400 naming the field), except under the :data:`LENIENT` context."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_when_lenient(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and isinstance(info.context, dict) and info.context.get("lenient"):
            return {key: value for key, value in data.items() if key in cls.model_fields}
        return data


class Connection(_Model):
    sipLogin: RequiredText
    sipPassword: SecretStr = Field(max_length=256)
    sipAuthenticationName: Text = ""
    sipDomain: RequiredText
    sipPort: int | None = Field(None, ge=1, le=65535, description="default 5060, or 5061 for tls")
    sipTransport: Literal["udp", "tcp", "tls", "UDP", "TCP", "TLS"] = "udp"
    srtp: Literal["off", "optional", "mandatory"] | None = None
    sipRegisterRequired: bool = False
    appKey: Text = ""
    codecs: Codecs | None = Field(None, description="offered in this order; default [media] codecs")


Preset = Literal["youtube", "facebook", "twitch", "wowza", "generic"]
PublishAuth = Literal["adobe", "llnw"]
RtmpUrl = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_no_control_characters)]
RtmpStream = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_no_control_characters)]


class Video(_Model):
    """A destination's video track; unset fields come from the preset, then from [video]."""

    mode: Literal["none", "slate"] | None = Field(None, description="slate: a still picture, encoded once")
    image: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")] | None = Field(
        None, description="a picture in video.slate_directory; omitted = the built-in card"
    )
    width: int | None = Field(None, ge=64, le=1920, multiple_of=2)
    height: int | None = Field(None, ge=64, le=1080, multiple_of=2)
    fps: int | None = Field(None, ge=1, le=30)
    keyframeSeconds: float | None = Field(None, ge=0.5, le=10.0)


class Output(_Model):
    """What is published; unset fields come from the preset, then from [media]/[video]."""

    codec: Literal["aac", "pcmu"] | None = None
    sampleRate: Literal[8000, 16000, 44100, 48000] | None = None
    bitrate: int | None = Field(None, ge=8000, le=320000)
    aacCoder: Literal["", "fast", "twoloop"] | None = None
    preset: Preset | None = Field(None, description="default: chosen from the ingest host")
    publishAuth: PublishAuth | None = Field(None, description="authmod used with rtmp://user:password@host")
    video: Video | None = None


class Destination(_Model):
    """One of several destinations of a call (/api/v1 only)."""

    rtmpUrl: RtmpUrl
    rtmpStream: RtmpStream
    preset: Preset | None = None
    publishAuth: PublishAuth | None = None
    video: Video | None = None


class Record(_Model):
    """What to record of the call (/api/v1 only; /RESTCall calls take their app's default)."""

    formats: list[RecordFormat] = Field(
        default_factory=list, max_length=3, description="wav (PCM16), wav-ulaw (G.711 µ-law), m4a (the published AAC)"
    )


class CallRequest(_Model):
    """The original contract (/RESTCall/call): one destination."""

    callId: RequiredText
    callee: RequiredText
    rtmpUrl: RtmpUrl
    rtmpStream: RtmpStream
    hasAudio: bool = False
    hasVideo: bool = False
    connection: Connection
    output: Output | None = None


MAX_OUTPUTS = 8


class ApiCallRequest(_Model):
    """POST /api/v1/calls: one destination (rtmpUrl + rtmpStream) or several (outputs)."""

    callId: RequiredText
    callee: RequiredText
    rtmpUrl: RtmpUrl | None = None
    rtmpStream: RtmpStream | None = None
    outputs: list[Destination] | None = Field(None, min_length=1, max_length=MAX_OUTPUTS)
    hasAudio: bool = False
    hasVideo: bool = False
    connection: Connection
    output: Output | None = None
    record: Record | None = Field(
        None, description="default: the app's [apps.<appKey>] record, then [recording] formats"
    )


class DtmfRequest(_Model):
    digits: Annotated[str, Field(pattern=r"^[0-9*#A-Da-d]{1,32}$", description="0-9, *, #, A-D")]
    durationMs: int = Field(160, ge=40, le=2000)


class TerminateRequest(_Model):
    callId: RequiredText


# -- response bodies (documented in the OpenAPI document) ---------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Open):
    code: str
    message: str
    field: str | None


class ErrorBody(_Open):
    error: ErrorDetail


class StateChangeView(_Open):
    state: str
    reason: str
    at: str


class LadderEntryView(_Open):
    at: float
    direction: str
    message: str
    cseq: str


class DestinationView(_Open):
    """One destination: its masked target, rules, stream state and counters."""

    index: int
    rtmpTarget: str
    preset: str
    video: str
    streamState: str
    streamHistory: list[StateChangeView]
    counters: dict[str, object]


class CallView(_Open):
    """A call as the API shows it: never the password, a stream key or an RTMP token."""

    callId: str
    callee: str
    sipDomain: str | None = None  # SIP calls only (source.kind "sip"), like sipCallId and sipLadder
    appKey: str
    state: str
    reason: str
    streamState: str
    active: bool
    rtmpTarget: str
    destinations: list[DestinationView]
    createdAt: str
    history: list[StateChangeView]
    streamHistory: list[StateChangeView]
    timeline: list[dict[str, object]]
    sipLadder: list[LadderEntryView] | None = None
    counters: dict[str, object]
    node: str | None = None  # [cluster]: the node that owns the call (in cluster-wide lists)


class CallPage(_Open):
    calls: list[CallView]
    total: int
    limit: int
    offset: int
    unreachableNodes: list[str] | None = None  # [cluster]: nodes whose calls are missing from this page


class CallEvents(_Open):
    callId: str
    history: list[StateChangeView]
    streamHistory: list[StateChangeView]
    timeline: list[dict[str, object]]
    sipLadder: list[LadderEntryView] | None = None  # SIP calls only


class Readiness(_Open):
    ready: bool
    problems: list[str]


class UploadView(_Open):
    state: str  # pending, uploading, retrying, uploaded, failed
    attempts: int | None = None
    url: str | None = None  # without any query (no SAS, no signature)
    md5: str | None = None
    error: str | None = None
    at: str | None = None


class RecordingView(_Open):
    """One recording file of a call."""

    name: str
    format: str  # wav, wav-ulaw, m4a
    track: str  # mix, or a track of an ingest call (inbound, outbound, participant, ...)
    durationSeconds: float | None
    bytes: int | None
    state: str  # recording, complete, stopped, interrupted, deleted
    reason: str | None
    url: str  # the file (token or ?ticket=), with HTTP Range support
    upload: UploadView | None


class RecordingList(_Open):
    callId: str
    recordings: list[RecordingView]


class TicketView(_Open):
    callId: str
    purpose: str
    ticket: str
    expiresAt: int
    url: str | None = None  # the listen URL (purpose listen)


class NodeView(_Open):
    node: str
    cluster: str | None = None
    draining: bool
    activeCalls: int


class ClusterNode(_Open):
    node: str
    url: str
    capacity: int
    calls: int
    headroom: int
    draining: bool


class NodeList(_Open):
    """``GET /api/v1/nodes``: every live node of the cluster (this node alone without one)."""

    cluster: str | None = None
    nodes: list[ClusterNode]
    registryUp: bool


class DrainRequest(BaseModel):
    """``POST /api/v1/node/drain``: how long the node's calls may run before it hangs them up."""

    model_config = ConfigDict(extra="forbid")

    timeoutSeconds: float = Field(3600.0, gt=0, le=7 * 86400)
