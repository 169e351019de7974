"""Domain types shared by the REST layer and the call sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from bridge.rtmp.url import RtmpTarget


class CallState(StrEnum):
    """Session states with the names users of the REST contract know."""

    PENDING = "PENDING"
    TRYING = "TRYING"
    RING = "RING"
    SESSION_PROGRESS = "SESSION_PROGRESS"
    ESTABLISHED = "ESTABLISHED"
    HOLD = "HOLD"
    FINISH = "FINISH"
    FAILED = "FAILED"
    BUSY = "BUSY"

    @property
    def final(self) -> bool:
        return self in (CallState.FINISH, CallState.FAILED, CallState.BUSY)


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """The audio that is published: AAC-LC at a rate/bitrate/coder, or G.711 mu-law passed through."""

    codec: str = "aac"  # "aac" or "pcmu"
    sample_rate: int = 16000
    bitrate: int = 32000
    aac_coder: str = ""
    channels: int = 1  # 2: an ingest call's tracks laid out left and right ([ingest.routes.*] layout)


@dataclass(frozen=True, slots=True)
class VideoSpec:
    """The video track of a destination: none, or a still picture (slate) encoded once per worker."""

    mode: str = "none"  # "none" or "slate"
    image: str = ""  # a file in video.slate_directory; "" = the built-in card
    width: int = 1280
    height: int = 720
    fps: int = 25
    keyframe_seconds: float = 2.0
    rtp: bool = False  # encoded for RTP to a SIP far end: constrained baseline, slices that fit a packet

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """One RTMP destination of a call, with the platform rules (preset) already applied."""

    target: RtmpTarget = field(repr=False)
    preset: str = "generic"
    audio: OutputSpec = OutputSpec()
    video: VideoSpec = VideoSpec()
    authmod: str = "adobe"  # publish authentication used with userinfo: "adobe" or "llnw"


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A validated request to bridge one call (the password stays out of repr)."""

    call_id: str
    callee: str
    destinations: tuple[DestinationSpec, ...]
    has_audio: bool
    has_video: bool
    sip_login: str
    sip_password: str = field(repr=False)
    sip_auth_name: str
    sip_domain: str
    sip_port: int | None
    app_key: str
    register: bool = False
    sip_transport: str = "udp"
    srtp: str = ""  # "", "off", "optional" or "mandatory"; "" = the configured default
    codecs: tuple[str, ...] = ()  # offered in this order; () = [media] codecs
    reveal_stream_names: bool = False  # [apps.<appKey>] reveal_stream_names: a private server's names are shown
    record: tuple[str, ...] = ()  # recording formats (wav, wav-ulaw, m4a); () = none

    def secrets(self) -> tuple[str, ...]:
        """What must never reach a log: the SIP password and every destination's secrets."""
        found = [self.sip_password]
        for destination in self.destinations:
            found += destination.target.secrets(self.reveal_stream_names)
        return tuple(found)


@dataclass(frozen=True, slots=True)
class StateChange:
    state: CallState
    reason: str
    at: datetime

    def to_json(self) -> dict[str, str]:
        return {"state": self.state.value, "reason": self.reason, "at": self.at.isoformat()}


def utc_now() -> datetime:
    return datetime.now(UTC)
