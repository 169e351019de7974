"""One platform media stream over one WebSocket connection, from the upgrade to its one end (sans-IO).

The daemon drives it from the upgrade until the stream's call is admitted; the call's media
worker drives the same class from then on, on the connection the daemon handed over
(:meth:`MediaStream.handover`, :meth:`MediaStream.adopted`). Either way it takes the bytes read
and ``now`` and returns typed events; what it must write (pongs, its close frame) is collected
for :meth:`data_to_send`. Nothing it is given makes it raise.

Ends (RFC 6455 7.1.5, 7.4.1): a stop message → finished, code 1000; the sender's close with
1000, 1001 or no code → finished, the close echoed; any other close, a torn TCP connection
(1006) or a protocol error (the core's close code) → failed. The first end wins; our close frame
is queued unless the sender's came first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.wsmedia.core import MAX_MESSAGE_BYTES, CoreState, StreamCore
from bridge.wsmedia.events import (
    NORMAL_CLOSURE,
    AudioReceived,
    DigitReceived,
    IngestEvent,
    StreamStarted,
    StreamStopped,
    Violation,
)
from bridge.wsmedia.platforms import resumed_core
from bridge.wsmedia.websocket import (
    NO_STATUS,
    BinaryReceived,
    CloseReceived,
    ServerConnection,
    TextReceived,
    WebSocketEvent,
)

TORN_DOWN = 1006  # RFC 6455 7.1.5: the connection closed with no close frame (never sent)
_CLEAN_CLOSES = (1000, 1001, NO_STATUS)


@dataclass(slots=True)  # built for every media message: not frozen (cheaper)
class StreamAudio:
    """One media message of track number ``track`` (in order of first appearance)."""

    track: int
    timestamp: int  # samples at the stream's rate since the stream started
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class TrackAppeared:
    """Track number ``index`` is the platform's ``name`` (Twilio inbound/outbound, an ACS participant)."""

    index: int
    name: str


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The stream's one end: the close ``code`` (sent, or the sender's) and whether it finished well."""

    code: int
    reason: str
    finished: bool


StreamEvent = StreamStarted | StreamAudio | DigitReceived | TrackAppeared | StreamEnded


@dataclass(frozen=True, slots=True)
class Handover:
    """What the process that continues a started stream needs besides its socket."""

    protocol: str
    core: CoreState
    tracks: tuple[str, ...]  # numbered in order of first appearance
    unparsed: bytes = field(repr=False)  # the start of a frame read but not complete


class MediaStream:
    """A connection's frames, its platform's messages, its tracks by number and its end."""

    def __init__(self, core: StreamCore, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.core = core
        self.websocket = ServerConnection(max_message_bytes)
        self.tracks: list[str] = []
        self._numbers: dict[str, int] = {}  # track name -> its number (its index in tracks)
        self.ended: StreamEnded | None = None
        self.peer_gone = False  # the sender's close frame came, or its TCP connection ended

    @classmethod
    def adopted(cls, handover: Handover) -> MediaStream:
        """The started stream another process handed over, continued where it left off."""
        stream = cls(resumed_core(handover.protocol, handover.core))
        stream.tracks = list(handover.tracks)
        stream._numbers = {name: number for number, name in enumerate(stream.tracks)}
        stream.websocket.resume(handover.unparsed)
        return stream

    def handover(self) -> Handover | None:
        """What another process needs to continue this stream, when it can change hands now; else None.

        It can once started, at a message boundary (no fragmented message under way), with
        nothing left to write and before its end.
        """
        websocket = self.websocket
        if self.ended is not None or self.core.started is None or websocket.fragmenting or websocket.pending_output:
            return None
        return Handover(self.core.protocol, self.core.handover(), tuple(self.tracks), websocket.unparsed())

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[StreamEvent]:
        """Events of the messages ``data`` completes (none after the end).

        A media message, some fifty a second per track, takes the shortest way: its text to the
        core, its audio numbered by a dictionary look-up.
        """
        events: list[StreamEvent] = []
        for message in self.websocket.receive_data(data):
            if type(message) is not TextReceived or self.ended is not None:
                self._message(message, now, events)
                continue
            for event in self.core.receive_text(message.text, now):
                if type(event) is AudioReceived:
                    number = self._numbers.get(event.track)
                    if number is None:
                        number = self._track(event.track, events)
                    events.append(StreamAudio(number, event.timestamp, event.payload))
                else:
                    self._event(event, events)
        return events

    def receive_eof(self) -> list[StreamEvent]:
        """The TCP connection ended."""
        self.peer_gone = True
        reason = f"the connection was torn down ({TORN_DOWN}) without a stop message"
        return self._ended(TORN_DOWN, reason, False)

    def close(self, code: int, reason: str) -> list[StreamEvent]:
        """End the stream from our side (an API hang-up, a shutdown, a refusal): ``code`` is sent."""
        return self._ended(code, reason, code == NORMAL_CLOSURE)

    def abandon(self, code: int, reason: str) -> list[StreamEvent]:
        """Give the connection up with no close handshake (the sender does not read what we send)."""
        self.peer_gone = True  # nothing more is written to it, or waited for
        return self._ended(code, reason, False)

    def data_to_send(self) -> bytes:
        return self.websocket.data_to_send()

    # -- messages ---------------------------------------------------------------------

    def _message(self, message: WebSocketEvent, now: float, events: list[StreamEvent]) -> None:
        if self.ended is not None:
            if isinstance(message, CloseReceived):
                self.peer_gone = True  # the answer to our close frame
            return
        if isinstance(message, TextReceived):
            for event in self.core.receive_text(message.text, now):
                self._event(event, events)
        elif isinstance(message, BinaryReceived):
            for event in self.core.receive_binary():
                self._event(event, events)
        elif isinstance(message, CloseReceived):
            self.peer_gone = True
            events += self._closed_by_peer(message.code)
        else:
            events += self._violation(message.code, message.reason)

    def _event(self, event: IngestEvent, events: list[StreamEvent]) -> None:
        if self.ended is not None:
            return
        if isinstance(event, AudioReceived):
            events.append(StreamAudio(self._track(event.track, events), event.timestamp, event.payload))
        elif isinstance(event, StreamStarted | DigitReceived):
            events.append(event)
        elif isinstance(event, StreamStopped):
            events += self._ended(NORMAL_CLOSURE, event.reason, True)
        elif isinstance(event, Violation):
            events += self._violation(event.code, event.reason)
        # marks and a track's stop change nothing for the call

    def _track(self, name: str, events: list[StreamEvent]) -> int:
        """The track's number; a new one (the core passes at most MAX_TRACKS) is announced."""
        number = self._numbers.get(name)
        if number is None:
            number = self._numbers[name] = len(self.tracks)
            self.tracks.append(name)
            events.append(TrackAppeared(number, name))
        return number

    def _violation(self, code: int, reason: str) -> list[StreamEvent]:
        return self._ended(code, f"protocol error ({code}): {reason}", False)

    def _closed_by_peer(self, code: int) -> list[StreamEvent]:
        if code in _CLEAN_CLOSES:
            return self._ended(code, f"the sender closed the connection ({code}) without a stop message", True)
        return self._ended(code, f"the connection was torn down ({code}) without a stop message", False)

    def _ended(self, code: int, reason: str, finished: bool) -> list[StreamEvent]:
        if self.ended is not None:
            return []
        self.ended = StreamEnded(code, reason, finished)
        if not self.peer_gone:
            self.websocket.close(code, reason)
        return [self.ended]
