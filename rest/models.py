"""Request bodies of the REST contract, validated by pydantic.

Booleans and ports may arrive as JSON values or as strings ("true", "5060"):
pydantic's lax mode converts both. No field may contain control characters,
since several of them end up inside SIP messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, ...)")
    return value


Text = Annotated[str, Field(max_length=256), AfterValidator(_no_control_characters)]
RequiredText = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_control_characters)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


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


class Output(_Model):
    codec: Literal["aac", "pcmu"] = "aac"
    sampleRate: Literal[8000, 16000, 44100, 48000] = 16000
    bitrate: int = Field(32000, ge=8000, le=320000)
    aacCoder: Literal["", "fast", "twoloop", "anmr"] = ""


class CallRequest(_Model):
    callId: RequiredText
    callee: RequiredText
    rtmpUrl: Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_no_control_characters)]
    rtmpStream: RequiredText
    hasAudio: bool = False
    hasVideo: bool = False
    connection: Connection
    output: Output | None = None


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


class CallView(_Open):
    """A call as the API shows it: never the password, never RTMP tokens."""

    callId: str
    callee: str
    sipDomain: str
    appKey: str
    state: str
    reason: str
    streamState: str
    active: bool
    rtmpTarget: str
    createdAt: str
    history: list[StateChangeView]
    streamHistory: list[StateChangeView]
    timeline: list[dict[str, object]]
    sipLadder: list[LadderEntryView]
    counters: dict[str, object]


class CallPage(_Open):
    calls: list[CallView]
    total: int
    limit: int
    offset: int


class CallEvents(_Open):
    callId: str
    history: list[StateChangeView]
    streamHistory: list[StateChangeView]
    timeline: list[dict[str, object]]
    sipLadder: list[LadderEntryView]


class Readiness(_Open):
    ready: bool
    problems: list[str]
