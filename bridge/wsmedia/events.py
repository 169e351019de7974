"""What a WebSocket media stream tells us, whatever the platform (sans-IO).

The protocol cores (:mod:`bridge.wsmedia.twilio`, :mod:`bridge.wsmedia.acs`,
:mod:`bridge.wsmedia.ringcentral`) return these from every message; bad input becomes a
:class:`Violation` carrying the WebSocket close code (RFC 6455 section 7.4.1), never an
exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 6455 section 7.4.1
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
UNSUPPORTED_DATA = 1003  # a binary frame where the protocol sends text, a media format we cannot take
INVALID_PAYLOAD = 1007  # not JSON, bad base64, a field of the wrong type or size
POLICY_VIOLATION = 1008  # unknown event, media before start, a second start, a flood, a duplicate call
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # the bridge is at capacity


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The stream's metadata: the platform's call id, placeholders for names, the audio format."""

    platform_id: str  # Twilio callSid, RingCentral callId-sessionId, ACS call connection id
    parameters: dict[str, str]  # every placeholder: metadata, custom parameters, query parameters
    tracks: tuple[str, ...]  # the tracks announced (media may also name others, up to MAX_TRACKS)
    encoding: str  # "pcmu" (G.711 µ-law) or "l16" (16-bit linear PCM, little-endian as sent)
    rate: int
    call_id: str = ""  # the bridge's callId: a callId custom/query parameter, else platform_id


@dataclass(slots=True)  # not frozen: built for every media message, and frozen costs 0.8 µs more
class AudioReceived:
    """One media message: ``timestamp`` in samples at the stream's rate since the stream started."""

    track: str
    sequence: int
    timestamp: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DigitReceived:
    digit: str = field(repr=False)  # DTMF digits are often PINs
    track: str = ""


@dataclass(frozen=True, slots=True)
class MarkReceived:
    name: str


@dataclass(frozen=True, slots=True)
class TrackStopped:
    """One track ended (RingCentral sends one Stop per perspective)."""

    track: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    reason: str


@dataclass(frozen=True, slots=True)
class Violation:
    """The sender broke the protocol: close with ``code``; ``reason`` holds no payload data."""

    code: int
    reason: str


IngestEvent = StreamStarted | AudioReceived | DigitReceived | MarkReceived | TrackStopped | StreamStopped | Violation
