"""What a call reports to its owner (sans-IO events)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rtp.peer import Peer


class EndCause(StrEnum):
    """Why a call ended, in the terms the session states use."""

    REMOTE_HANGUP = "remote hangup"
    LOCAL_HANGUP = "local hangup"
    NO_ANSWER = "no answer"
    CANCELLED = "cancelled"
    BUSY = "busy"
    NOT_FOUND = "not found"
    DECLINED = "declined"
    AUTH_FAILED = "authentication failed"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    REJECTED = "rejected"
    BAD_ANSWER = "unusable answer"
    SESSION_EXPIRED = "session refresh failed"
    NO_ACK = "no ACK for our 2xx"


@dataclass(frozen=True, slots=True)
class CallProgress:
    """A provisional response other than 100 (e.g. 180 Ringing, 183 Session Progress);
    ``remote`` is its SDP (early media), if it carried a usable one."""

    code: int
    phrase: str
    remote: Peer | None = None


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A 2xx to our INVITE established the dialog; ``remote`` is its SDP answer, or None
    with ``error`` saying why the answer is unusable (the call must then be hung up)."""

    code: int
    phrase: str
    remote: Peer | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over. ``code``/``phrase`` are the SIP status that ended it, if any."""

    cause: EndCause
    code: int | None = None
    phrase: str = ""

    def describe(self) -> str:
        if self.code is None:
            return self.cause.value
        return f"{self.cause.value} ({self.code} {self.phrase})"


@dataclass(frozen=True, slots=True)
class MediaChanged:
    """A re-INVITE or UPDATE changed the far end's media: address, direction (hold/resume), keys, video."""

    peer: Peer


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A DTMF digit signalled in the dialog (INFO application/dtmf-relay)."""

    digit: str
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class ServerFailover:
    """The INVITE moved on to the next server of the SIP domain (RFC 3263 section 4.3)."""

    destination: str
    reason: str


CallEvent = CallProgress | CallAnswered | CallEnded | MediaChanged | DtmfReceived | ServerFailover


def cause_for_status(code: int) -> EndCause:
    """Map a final failure status to a cause, RFC 3261 section 21."""
    if code in (486, 600):
        return EndCause.BUSY
    if code in (404, 604):
        return EndCause.NOT_FOUND
    if code == 603:
        return EndCause.DECLINED
    if code in (401, 403, 407):
        return EndCause.AUTH_FAILED
    if code in (480, 503):
        return EndCause.UNAVAILABLE
    if code == 408:
        return EndCause.TIMEOUT
    if code == 487:
        return EndCause.CANCELLED
    return EndCause.REJECTED
