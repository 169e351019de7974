"""Domain types shared by the REST layer and the call sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


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
    """What is published: AAC-LC at a rate/bitrate/coder, or G.711 mu-law passed through."""

    codec: str = "aac"  # "aac" or "pcmu"
    sample_rate: int = 16000
    bitrate: int = 32000
    aac_coder: str = ""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """A validated request to bridge one call (the password stays out of repr)."""

    call_id: str
    callee: str
    rtmp_url: str
    rtmp_stream: str
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
    output: OutputSpec | None = None  # None = the configured defaults


@dataclass(frozen=True, slots=True)
class StateChange:
    state: CallState
    reason: str
    at: datetime

    def to_json(self) -> dict[str, str]:
        return {"state": self.state.value, "reason": self.reason, "at": self.at.isoformat()}


def utc_now() -> datetime:
    return datetime.now(UTC)
