"""Daemon configuration: TOML validated by pydantic, overridable by environment.

Every key can be set as ``BRIDGE_<SECTION>__<KEY>``, e.g.
``BRIDGE_REST__LISTEN=127.0.0.1:9191``. Errors name the offending key.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.cluster.config import ClusterConfig
from bridge.ingest.config import IngestConfig
from bridge.model import OutputSpec, VideoSpec
from bridge.net import netpolicy
from bridge.net.netpolicy import NetworkPolicy
from bridge.recording.config import RecordFormat, RecordingConfig
from rtp.codecs import check_codec_names

ENV_PREFIX = "BRIDGE_"
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):(?P<port>\d{1,5})$")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


def split_host_port(value: str) -> tuple[str, int]:
    """Parse ``host:port`` (``[v6]:port`` for IPv6)."""
    match = _HOST_PORT.match(value.strip())
    if match is None or int(match["port"]) > 65535:
        raise ValueError(f"expected host:port, e.g. 127.0.0.1:9091, got {value!r}")
    return match["host"].strip("[]"), int(match["port"])


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_host_port(value: str) -> str:
    split_host_port(value)
    return value


def _check_cidrs(value: list[str]) -> list[str]:
    netpolicy.parse_networks(value)
    return value


class RestConfig(_Section):
    listen: str = "127.0.0.1:9091"
    # Host header values accepted besides the listen address and localhost (DNS rebinding):
    # the names clients and a reverse proxy use to reach this listener, e.g. ["bridge.example.com"].
    allowed_hosts: list[str] = Field(default_factory=list)
    # Origins of web pages allowed to call the API from a browser (CORS); every other page's
    # request is refused (403). The console's own origin is always allowed.
    cors_origins: list[str] = Field(default_factory=list)
    # Idle keep-alive connections are closed after this long; at most max_connections are open.
    keepalive_seconds: float = Field(30.0, gt=0, le=3600)
    max_connections: int = Field(1024, ge=16, le=65536)

    _check_listen = field_validator("listen")(_check_host_port)

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_hosts(cls, value: list[str]) -> list[str]:
        return [host.strip().lower().strip("[]") for host in value if host.strip()]


class SipConfig(_Section):
    listen: str = "0.0.0.0:5060"
    public_address: str = ""
    user_agent: str = "sip-rtmp-bridge"
    answer_timeout: float = Field(60.0, gt=0, description="seconds to wait for an answer")
    t1: float = Field(0.5, gt=0, description="RFC 3261 T1 in seconds")
    session_expires: int = Field(1800, ge=0, description="RFC 4028 interval asked for; 0 = off")
    register_expires: int = Field(600, ge=60, le=86400, description="REGISTER interval asked for")
    early_media: bool = False
    tls_ca_file: str = ""
    tls_verify: bool = True
    dns_servers: list[str] = Field(default_factory=list)
    # Requests that belong to no call of ours (scanners, sweeps): "drop" them without a reply unless
    # they come from a SIP domain of an active call or from trusted_sources; "reply" answers anyone.
    unknown_requests: Literal["drop", "reply"] = "drop"
    trusted_sources: list[str] = Field(default_factory=list)  # addresses or CIDR blocks
    out_of_dialog_rate: float = Field(20.0, gt=0, description="answered stray requests per second")
    max_message_bytes: int = Field(16384, ge=1500, le=65535, description="larger datagrams are dropped unread")
    # Connections accepted on the SIP TCP listener: no complete message within tcp_idle_seconds
    # closes one; at most tcp_max_connections in all and tcp_max_per_source from one address.
    tcp_idle_seconds: float = Field(32.0, gt=0, le=3600)
    tcp_max_connections: int = Field(256, ge=1, le=65536)
    tcp_max_per_source: int = Field(16, ge=1, le=65536)
    # CIDR blocks a call's SIP domain may resolve to (empty = any); link-local and cloud metadata
    # addresses are refused whatever this says.
    allowed_networks: list[str] = Field(default_factory=list)

    _check_networks = field_validator("allowed_networks")(_check_cidrs)

    def network_policy(self) -> NetworkPolicy:
        return NetworkPolicy(self.allowed_networks, "sip.allowed_networks")

    @field_validator("trusted_sources")
    @classmethod
    def _check_trusted(cls, value: list[str]) -> list[str]:
        netpolicy.parse_networks(value)
        return value

    @field_validator("dns_servers")
    @classmethod
    def _check_dns_servers(cls, value: list[str]) -> list[str]:
        for server in value:
            split_host_port(server)
        return value

    @property
    def dns_server_addresses(self) -> list[tuple[str, int]]:
        return [split_host_port(server) for server in self.dns_servers]

    @field_validator("session_expires")
    @classmethod
    def _check_session_expires(cls, value: int) -> int:
        if 0 < value < 90:
            raise ValueError("must be 0 (off) or at least 90 seconds (RFC 4028 Min-SE)")
        return value

    _check_listen = field_validator("listen")(_check_host_port)


class RtpConfig(_Section):
    port_range: str = "20000-29999"
    timeout: float = Field(30.0, gt=0, description="hang up after this many seconds without RTP")
    latch: bool = False
    jitter_delay_ms: int = Field(20, ge=0, le=1000)
    srtp: Literal["off", "optional", "mandatory"] = "off"

    @field_validator("port_range")
    @classmethod
    def _check_range(cls, value: str) -> str:
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
        if not match:
            raise ValueError(f"expected 'first-last', e.g. '20000-29999', got {value!r}")
        first, last = int(match[1]), int(match[2])
        if not 1024 <= first < last <= 65535:
            raise ValueError("ports must satisfy 1024 <= first < last <= 65535")
        return value

    @property
    def ports(self) -> tuple[int, int]:
        first, last = (int(p) for p in self.port_range.split("-"))
        return first, last


class MediaConfig(_Section):
    codec: Literal["aac", "pcmu"] = "aac"
    aac_sample_rate: int = 16000
    aac_bitrate: int = Field(32000, ge=8000, le=320000)
    aac_coder: str = "fast"  # measured: a third of twoloop's CPU and a better PESQ (docs/decisions.md)
    workers: int = Field(0, ge=0, le=64, description="media worker processes; 0 = one per CPU")
    frames_per_batch: int = Field(1, ge=1, le=4, description="AAC frames encoded and sent per wake-up")
    codecs: list[str] = Field(
        default_factory=lambda: ["pcmu"], description="offered in this order: pcmu, pcma, g722, opus"
    )

    def default_output(self) -> OutputSpec:
        """What calls publish unless a request says otherwise."""
        return OutputSpec(self.codec, self.aac_sample_rate, self.aac_bitrate, self.aac_coder)

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @field_validator("aac_sample_rate")
    @classmethod
    def _check_rate(cls, value: int) -> int:
        if value not in (8000, 16000, 44100, 48000):
            raise ValueError("must be one of 8000, 16000, 44100, 48000")
        return value

    @field_validator("codecs")
    @classmethod
    def _check_codecs(cls, value: list[str]) -> list[str]:
        return check_codec_names(value)

    @field_validator("aac_coder")
    @classmethod
    def _check_coder(cls, value: str) -> str:
        if value not in ("", "fast", "twoloop"):
            raise ValueError("must be '', 'fast' or 'twoloop' (FFmpeg's experimental anmr coder is not offered)")
        return value


class VideoConfig(_Section):
    """Defaults of a destination's video track (a preset that requires video turns the slate on)."""

    mode: Literal["none", "slate"] = "none"
    slate_directory: str = ""  # pictures that output.video.image may name; "" = only the built-in card
    image: str = ""  # default picture (a file in slate_directory); "" = the built-in card
    width: int = Field(1280, ge=64, le=1920, multiple_of=2)
    height: int = Field(720, ge=64, le=1080, multiple_of=2)
    fps: int = Field(25, ge=1, le=30)
    keyframe_seconds: float = Field(2.0, ge=0.5, le=10.0)
    send_width: int = Field(640, ge=64, le=1920, multiple_of=2)  # our picture to SIP video far ends (hasVideo)
    send_height: int = Field(360, ge=64, le=1080, multiple_of=2)
    send_fps: int = Field(5, ge=1, le=30)
    stall_seconds: float = Field(3.0, ge=0.5, le=60.0)  # far-end video missing this long → the slate
    # The far end's video passed through: a key frame asked for (FIR, PLI or SIP INFO) at least this
    # often, for destinations without a video track of their own (a slate destination's keyframeSeconds,
    # bounded by its preset, wins): players that join late see a picture within it.
    passthrough_keyframe_seconds: float = Field(2.0, ge=0.5, le=10.0)

    def default_video(self) -> VideoSpec:
        return VideoSpec(self.mode, self.image, self.width, self.height, self.fps, self.keyframe_seconds)

    def sent_video(self) -> VideoSpec:
        """The slate as we send it over RTP when ``hasVideo`` is true (key frame every 2 s)."""
        return VideoSpec("slate", self.image, self.send_width, self.send_height, self.send_fps, 2.0, rtp=True)


class RtmpConfig(_Section):
    connect_timeout: float = Field(10.0, gt=0)
    reconnect_initial_interval: float = Field(0.5, gt=0)
    reconnect_max_interval: float = Field(2.0, gt=0)
    max_reconnect_seconds: float = Field(60.0, ge=0, description="0 = retry forever")
    keep_call_on_failure: bool = False
    max_backlog_seconds: float = Field(10.0, gt=0)
    stall_seconds: float = Field(10.0, gt=0)
    # Ask the server to acknowledge every this many bytes it reads (RTMP Window Acknowledgement Size);
    # two windows unacknowledged for stall_seconds restart the connection. 0 = do not ask.
    ack_window_bytes: int = Field(8192, ge=0, le=16 * 1024 * 1024)
    tls_ca_file: str = ""
    tls_verify: bool = True
    # CIDR blocks RTMP destinations may be in, checked after DNS resolution at connect time
    # (empty = any); link-local and cloud metadata addresses are refused whatever this says.
    allowed_networks: list[str] = Field(default_factory=list)

    _check_networks = field_validator("allowed_networks")(_check_cidrs)

    def network_policy(self) -> NetworkPolicy:
        return NetworkPolicy(self.allowed_networks, "rtmp.allowed_networks")


class LogConfig(_Section):
    level: str = "info"
    format: Literal["text", "json"] = "text"
    mask_dtmf: bool = True  # DTMF digits (often PINs) masked in logs and the stored history

    @field_validator("level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be debug, info, warning or error")
        return value.lower()


class TokenConfig(_Section):
    """A bearer token, stored as its SHA-256 hex digest (``sip-rtmp-bridge hash-token`` prints it)."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # "read": GET only, DTMF digits masked, no listening or recordings; "listen": read, plus
    # listening to calls and downloading their recordings; "full": everything.
    scope: Literal["read", "listen", "full"] = "full"
    name: str = ""
    # The appKeys whose calls this token may see and act on (empty = every app's).
    apps: list[str] = Field(default_factory=list)


class AuthConfig(_Section):
    tokens: list[TokenConfig] = Field(default_factory=list)
    required: Literal["auto", "always", "never"] = "auto"  # auto: required unless REST listens on loopback
    rate_per_second: float = Field(50.0, gt=0)
    burst: int = Field(100, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    # Tickets let a URL stand for a token (the console's <audio> for listening and recordings);
    # a request must start before its ticket expires.
    ticket_seconds: float = Field(60.0, ge=5, le=3600)


class AppConfig(_Section):
    """Settings of the calls with this appKey: where their status webhooks go, what the API shows."""

    url: str = Field("", pattern=r"^(https?://.*)?$")  # "" = no webhooks
    secret: str = ""
    # Stream names are secrets (the stream key of YouTube, Facebook, Twitch) and shown masked;
    # true shows them in full for this app's calls (an operator's private server).
    reveal_stream_names: bool = False
    record: list[RecordFormat] | None = None  # recordings of this app's calls; None = [recording] formats

    @model_validator(mode="after")
    def _secret_with_url(self) -> AppConfig:
        if self.url and len(self.secret) < 16:
            raise ValueError("secret: at least 16 characters are needed to sign webhooks to url")
        return self


class WebhooksConfig(_Section):
    default_app: str = ""  # the app for calls whose appKey matches no [apps.*] section
    retry_seconds: float = Field(300.0, gt=0, description="give up on an event after this long")
    timeout: float = Field(5.0, gt=0)


class LimitsConfig(_Section):
    max_calls: int = Field(500, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    allowed_rtmp_hosts: list[str] = Field(default_factory=list)  # empty = any host
    shutdown_timeout: float = Field(10.0, gt=0, le=300)
    max_call_seconds: float = Field(0.0, ge=0, description="0 = no limit")
    # Admission by measured headroom: a new call needs this much CPU left on some media worker
    # (fraction of one core, after the call's own cost) and that worker's recent loop lag (p99 of
    # the last 5 s) below max_worker_lag_ms: a loop that far behind is overloaded, not just busy
    # with a burst of call set-ups. 0 turns a check off.
    max_worker_cpu: float = Field(0.85, ge=0, le=1)
    max_worker_lag_ms: float = Field(250.0, ge=0)
    # Long-lived HTTP streams (SSE events, listen): at most this many per token (or per ticket's
    # call) and max_streams in all; ingest WebSockets: at most max_calls per route.
    max_streams_per_token: int = Field(32, ge=1, le=65536)
    max_streams: int = Field(256, ge=1, le=65536)


class HistoryConfig(_Section):
    path: str = ""  # "" = history.sqlite3 in $STATE_DIRECTORY (systemd), else in the working directory
    # PostgreSQL instead of the SQLite file, e.g. "postgresql://bridge:secret@db.example.com/bridge"
    # (libpq URL; its query may add sslmode=verify-full etc.); shared by every node of a cluster.
    url: str = Field("", max_length=2048)
    retention_days: float = Field(30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and urllib.parse.urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL (or empty for the SQLite file history.path)")
        return value

    def secrets(self) -> list[str]:
        """The password in ``url``, kept out of logs."""
        password = urllib.parse.urlsplit(self.url).password if self.url else None
        return [password] if password else []

    def resolved_path(self) -> Path:
        if self.path:
            return Path(self.path)
        return Path(os.environ.get("STATE_DIRECTORY", ".")) / "history.sqlite3"


class ConsoleConfig(_Section):
    """The web console served at ``/``."""

    enabled: bool = True
    # A player link shown for each call, e.g. "https://cdn.example.com/hls/{app}/{stream}.m3u8";
    # {host}, {app} and {stream} come from the call's RTMP target. Empty = no link.
    playback_url: str = Field("", max_length=1024)

    @field_validator("playback_url")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = set(re.findall(r"{([^}]*)}", value)) - {"host", "app", "stream"}
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {{host}}, {{app}} or {{stream}}")
        if value and not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value


class BridgeConfig(_Section):
    rest: RestConfig = RestConfig()
    sip: SipConfig = SipConfig()
    rtp: RtpConfig = RtpConfig()
    media: MediaConfig = MediaConfig()
    rtmp: RtmpConfig = RtmpConfig()
    video: VideoConfig = VideoConfig()
    log: LogConfig = LogConfig()
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()
    history: HistoryConfig = HistoryConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    apps: dict[str, AppConfig] = Field(default_factory=dict)
    console: ConsoleConfig = ConsoleConfig()
    ingest: IngestConfig = IngestConfig()
    recording: RecordingConfig = RecordingConfig()
    cluster: ClusterConfig = ClusterConfig()


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``BRIDGE_<SECTION>__<KEY>`` variables onto the TOML data."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{name}: [{section}] is not a section")
        target[key] = _env_value(value)
    return merged


def _env_value(value: str) -> Any:
    """Lists and tables may be given as JSON, e.g. BRIDGE_SIP__DNS_SERVERS='["10.0.0.2:53"]'."""
    if value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """Read, merge and validate; raise :class:`ConfigError` naming the bad key."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data = apply_environment(data, os.environ if environ is None else environ)
    try:
        config = BridgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    check_extras(config)
    return config


# Optional parts: (is it configured?, the module it imports, the extra that installs it, what asks for it)
_EXTRAS: tuple[tuple[Callable[[BridgeConfig], bool], str, str, str], ...] = (
    (lambda c: c.cluster.enabled, "redis.asyncio", "cluster", "[cluster] redis_url"),
    (lambda c: bool(c.history.url), "psycopg", "postgres", "history.url"),
    (
        lambda c: c.recording.upload.kind == "azure",
        "azure.storage.blob.aio",
        "azure",
        'recording.upload.kind = "azure"',
    ),
)


def check_extras(config: BridgeConfig) -> None:
    """Raise :class:`ConfigError` naming the extra to install when a configured optional part's
    package is missing (one line at start-up instead of a traceback when it is first used)."""
    for configured, module, extra, asked_by in _EXTRAS:
        if not configured(config):
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(
                f"{asked_by} needs the {extra!r} extra, which is not installed: "
                f"pip install 'sip-rtmp-bridge[{extra}]' (in the daemon's virtual environment)"
            ) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against conf/bridge.toml)"
        lines.append(f"config key {key}: {message}")
    return "; ".join(lines)
