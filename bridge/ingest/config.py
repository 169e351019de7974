"""``[ingest]``: the WebSocket routes that accept calls, and the external URL they are reached by.

```toml
[ingest]
public_url = "wss://bridge.example.com"     # needed to check Twilio signatures behind a proxy

[ingest.routes.webinar]
protocol = "twilio"                         # twilio | acs | ringcentral
secret = "..."                              # twilio: the auth token; acs/ringcentral: ?token=...
rtmp_url = "rtmp://cdn.example.com/live"
stream = "{callSid}"                        # placeholders: start metadata, custom and query parameters
```
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.recording.config import RecordFormat
from bridge.rtmp.url import RtmpUrlError, parse_target

PLACEHOLDER = re.compile(r"{([A-Za-z0-9_.-]*)}")
MIN_SECRET = 16


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestOutput(_Section):
    """The route's audio as for SIP calls' ``output`` (unset: the preset, then [media], decides)."""

    codec: Literal["aac", "pcmu"] | None = None
    sample_rate: int | None = None
    bitrate: int | None = Field(None, ge=8000, le=320000)
    aac_coder: Literal["", "fast", "twoloop"] | None = None


class IngestVideo(_Section):
    mode: Literal["none", "slate"] | None = None
    image: str | None = None


IngestProtocol = Literal["twilio", "acs", "ringcentral"]
INGEST_PROTOCOLS: tuple[str, ...] = get_args(IngestProtocol)


class IngestRoute(_Section):
    protocol: IngestProtocol
    secret: str = Field(repr=False)
    rtmp_url: str
    stream: str = "{callId}"
    preset: str = ""  # generic, youtube, facebook, twitch, ...; "" = detected from rtmp_url
    publish_auth: Literal["", "adobe", "llnw"] = ""
    app_key: str = ""  # the [apps.<appKey>] of the route's calls (webhooks); "" = webhooks.default_app
    output: IngestOutput = IngestOutput()
    video: IngestVideo = IngestVideo()
    layout: Literal["mono", "stereo"] = "mono"  # tracks mixed, or the first left and the second right
    twiml: Literal["start", "connect"] = "start"  # POST /twiml/<route>: <Start><Stream> or <Connect><Stream>
    twiml_pause_seconds: int = Field(14400, ge=1, le=86400)  # <Pause> after <Start>, to keep the call up
    record: list[RecordFormat] | None = None  # recordings of the route's calls; None = [recording] formats

    @field_validator("secret")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if len(value) < MIN_SECRET:
            raise ValueError(
                f"at least {MIN_SECRET} characters: every ingest route is authenticated "
                "(twilio: the account's auth token; acs/ringcentral: the token senders put in ?token=)"
            )
        return value

    @field_validator("stream")
    @classmethod
    def _stream_template(cls, value: str) -> str:
        if not value.strip() or "{}" in value:
            raise ValueError('must name the stream, e.g. "{callSid}" or "call-{callId}"')
        return value

    @model_validator(mode="after")
    def _stereo_is_aac(self) -> IngestRoute:
        if self.layout == "stereo" and self.output.codec == "pcmu":
            raise ValueError('layout "stereo" needs AAC output: G.711 in FLV is mono (set output.codec = "aac")')
        return self

    @model_validator(mode="after")
    def _valid_url(self) -> IngestRoute:
        try:
            parse_target(self.rtmp_url, "check")
        except RtmpUrlError as exc:
            raise ValueError(f"rtmp_url: {exc}") from None
        return self


class IngestConfig(_Section):
    public_url: str = Field("", pattern=r"^(wss?://[^/?#\s]+(/[^?#\s]*)?)?$")
    routes: dict[str, IngestRoute] = Field(default_factory=dict)

    @field_validator("routes")
    @classmethod
    def _route_names(cls, value: dict[str, IngestRoute]) -> dict[str, IngestRoute]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"route name {name!r}: letters, digits, '-' and '_' only (it is a URL path segment)")
        return value

    def public_base(self, host: str, secure: bool) -> str:
        """The external ``ws(s)://host[/prefix]`` the senders use: ``public_url``, else the request's host."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"{'wss' if secure else 'ws'}://{host}"
