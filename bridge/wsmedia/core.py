"""What every WebSocket media protocol core shares (sans-IO): JSON fields, limits, tracks.

A core takes each text message with ``now`` and returns events; nothing it is given can
make it raise. Field helpers raise :class:`BadMessage` internally, which :meth:`StreamCore.receive_text`
turns into a :class:`~bridge.wsmedia.events.Violation` with the close code of RFC 6455 7.4.1.
"""

from __future__ import annotations

import binascii
import json
import json.scanner
from dataclasses import dataclass
from typing import Any

from bridge.wsmedia.events import (
    INVALID_PAYLOAD,
    POLICY_VIOLATION,
    UNSUPPORTED_DATA,
    AudioReceived,
    IngestEvent,
    StreamStarted,
    Violation,
)

MAX_TRACKS = 4  # ACS unmixed audio: up to four participants
MAX_CHUNK_SECONDS = 0.2  # one media message; the platforms send 20 ms
MESSAGES_PER_SECOND = 300.0  # sustained; four tracks of 20 ms messages are 200 a second
MESSAGE_BURST = 600  # a sender catching up after a pause
MAX_MESSAGE_BYTES = 64 * 1024  # the WebSocket reader refuses larger messages (close 1009)


_KINDS = {dict: "an object", str: "a string", list: "an array", bool: "true or false"}
# The C scanner json.loads ends in, called directly (typeshed types make_scanner as the class it is in C).
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _json_object(text: str) -> Any:
    """``json.loads(text)``, without its layers for the usual message (a value from the first
    character to the last); anything else goes through ``json.loads`` (and its errors)."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # not a value where it starts (whitespace first, or not JSON): json.loads says which
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


class BadMessage(Exception):
    """A message that breaks the protocol; ``code`` is the close code to use."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def member(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    """``obj[name]``, which must be of ``kind`` (1007 otherwise)."""
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        expected = _KINDS.get(kind, kind.__name__)
        raise BadMessage(INVALID_PAYLOAD, f"{where}.{name} must be {expected}")
    return value


def optional_text(obj: dict[str, Any], name: str, where: str) -> str:
    """A string member that may be absent (then "")."""
    return "" if obj.get(name) is None else str(member(obj, name, str, where))


def number(obj: dict[str, Any], name: str, where: str) -> int:
    """A non-negative integer given as a JSON number or a string of digits (Twilio sends strings)."""
    value = obj.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise BadMessage(INVALID_PAYLOAD, f"{where}.{name} must be a non-negative integer")


def base64_audio(obj: dict[str, Any], name: str, where: str, sample_bytes: int, rate: int) -> bytes:
    """Decoded base64 audio of whole samples, at most MAX_CHUNK_SECONDS long (1007 otherwise)."""
    text = member(obj, name, str, where)
    try:
        payload = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise BadMessage(INVALID_PAYLOAD, f"{where}.{name} is not valid base64") from None
    if not payload or len(payload) % sample_bytes:
        raise BadMessage(INVALID_PAYLOAD, f"{where}.{name} must hold whole {sample_bytes}-byte samples")
    if len(payload) > MAX_CHUNK_SECONDS * rate * sample_bytes:
        raise BadMessage(INVALID_PAYLOAD, f"{where}.{name} holds more than {MAX_CHUNK_SECONDS * 1000:g} ms of audio")
    return payload


def string_parameters(obj: object, where: str) -> dict[str, str]:
    """An object of string (or number) values, as placeholders; anything else is refused."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise BadMessage(INVALID_PAYLOAD, f"{where} must be an object")
    found: dict[str, str] = {}
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadMessage(INVALID_PAYLOAD, f"{where}.{key} must be a string")
        found[str(key)] = str(value)
    return found


@dataclass(frozen=True, slots=True)
class CoreState:
    """What a started stream's core must carry over when another process continues it.

    ``tracks``: the track names it accepts (announced or seen); ``stopped_tracks``: RingCentral
    perspectives already stopped; ``rate``: ACS's sample rate; ``origin``: ACS's first
    AudioData time (ISO 8601, sample 0), "" before it.
    """

    tracks: tuple[str, ...]
    stopped_tracks: tuple[str, ...] = ()
    rate: int = 0
    origin: str = ""


class StreamCore:
    """The state every protocol shares: started or not, the flood limit, the tracks seen."""

    protocol = ""

    def __init__(self, query: dict[str, str], headers: dict[str, str]) -> None:
        self.query = query  # the upgrade request's query parameters (placeholders)
        self.headers = {key.lower(): value for key, value in headers.items()}
        self.started: StreamStarted | None = None
        self.stopped = False
        self.messages = 0
        self.ignored_tracks = 0
        self.tracks: list[str] = []
        self._allowance = float(MESSAGE_BURST)
        self._last: float | None = None

    def handover(self) -> CoreState:
        """This started stream's state, for :meth:`resume` in the process that continues it."""
        return CoreState(tuple(self.tracks))

    def resume(self, state: CoreState) -> None:
        """Continue a stream whose start message another process read."""
        self.started = StreamStarted("", {}, state.tracks, "", 0)
        self.tracks = list(state.tracks)

    def receive_text(self, text: str, now: float) -> list[IngestEvent]:
        """Events from one text message (never raises)."""
        self.messages += 1
        if not self._within_rate(now):
            return [Violation(POLICY_VIOLATION, f"more than {MESSAGES_PER_SECOND:g} messages a second")]
        if self.stopped:
            return []  # what follows a stop is not the call's
        try:
            message = _json_object(text)
            if not isinstance(message, dict):
                raise BadMessage(INVALID_PAYLOAD, "a message must be a JSON object")
            return self.handle(message)
        except BadMessage as exc:
            return [Violation(exc.code, exc.reason)]
        except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
            return [Violation(INVALID_PAYLOAD, "the message is not valid JSON")]

    def receive_binary(self) -> list[IngestEvent]:
        return [Violation(UNSUPPORTED_DATA, f"{self.protocol} media streams send text frames, not binary")]

    def handle(self, message: dict[str, Any]) -> list[IngestEvent]:
        raise NotImplementedError

    def _within_rate(self, now: float) -> bool:
        """Token bucket: MESSAGE_BURST messages at once, MESSAGES_PER_SECOND sustained."""
        if self._last is not None:
            self._allowance = min(MESSAGE_BURST, self._allowance + (now - self._last) * MESSAGES_PER_SECOND)
        self._last = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True

    def require_started(self, kind: str) -> StreamStarted:
        if self.started is None:
            raise BadMessage(POLICY_VIOLATION, f"{kind} before the stream's start message")
        return self.started

    def start(self, started: StreamStarted) -> list[IngestEvent]:
        if self.started is not None:
            raise BadMessage(POLICY_VIOLATION, "a second start message")
        self.started = started
        self.tracks = list(started.tracks[:MAX_TRACKS])
        return [started]

    def audio(self, track: str, sequence: int, timestamp: int, payload: bytes) -> list[IngestEvent]:
        """Media of a known track, or of a new one while fewer than MAX_TRACKS are known."""
        if track not in self.tracks:
            if len(self.tracks) >= MAX_TRACKS:
                self.ignored_tracks += 1
                return []
            self.tracks.append(track)
        return [AudioReceived(track, sequence, timestamp, payload)]
