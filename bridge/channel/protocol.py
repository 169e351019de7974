"""The message protocol between the daemon and its media worker processes.

Framing on a Unix stream socket: a 4-byte big-endian length, then one JSON object whose
``type`` names the message. Only plain data crosses the boundary (no pickled objects,
no closures), so a worker can be restarted or replaced without shared state.

One message is binary, for its rate: :class:`FeedAudio`, an ingest call's frame of audio
(some fifty a second per track). Its body starts with a zero byte, which no JSON text does,
then the call id's length and bytes, the track, the timestamp and the payload.

Daemon to worker: :class:`Configure` (first), :class:`OpenEndpoint`, :class:`StartMedia`,
:class:`UpdateMedia`, :class:`NameTrack`, :class:`FeedAudio`, :class:`AdoptStream`,
:class:`CloseStream`, :class:`Listen`, :class:`SendDtmf`, :class:`StopMedia`.

Sockets cross on a second channel, a Unix ``SOCK_SEQPACKET`` pair (:func:`send_socket`,
:func:`receive_socket`): one datagram per socket, the token of the message that refers to it.
Worker to daemon: :class:`WorkerReady`, :class:`EndpointOpened`, :class:`MediaEvent`,
:class:`StreamStateChanged`, :class:`MediaEnded`, :class:`MediaStopped`, :class:`ListenAudio`,
:class:`WorkerStats`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from bridge.channel.counters import MediaCounters
from bridge.model import OutputSpec, VideoSpec
from bridge.rtmp.url import RtmpTarget
from bridge.wsmedia.core import CoreState
from rtp.peer import Peer

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_LENGTH = struct.Struct(">I")


class StreamState(StrEnum):
    """A destination's state, as the worker reports it (:class:`StreamStateChanged`)."""

    PENDING = "PENDING"
    PUBLISHING = "PUBLISHING"
    RECONNECTING = "RECONNECTING"
    FAILED = "FAILED"
    UNPUBLISHED = "UNPUBLISHED"


class _Message(BaseModel):
    # Binary fields (SRTP master keys) travel as base64 in the JSON.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")


# -- daemon to worker -------------------------------------------------------------------


class Configure(_Message):
    """The daemon's configuration (as JSON) and the worker's number; sent first and on reload."""

    type: Literal["configure"] = "configure"
    worker: int
    config: dict[str, Any]


class OpenEndpoint(_Message):
    """Bind an RTP/RTCP pair on ``host``, trying the daemon's free ``ports`` in order."""

    type: Literal["open"] = "open"
    call: str
    host: str
    ports: list[int]
    video_ports: list[int] = []  # a second pair for H.264 (RFC 6184), tried in order; none: audio only


class DestinationStart(_Message):
    """One destination: where to publish (with credentials), what, and how to name it in reasons."""

    target: RtmpTarget
    label: str  # the masked form shown in reasons and logs
    audio: OutputSpec
    video: VideoSpec
    authmod: str
    secrets: list[str]  # scrubbed from texts the server sends (it may echo the stream key)


class RecordStart(_Message):
    """What to record of a call and where (bridge.media.recorder)."""

    directory: str  # absolute: [recording] directory
    path: str  # relative, with {track} and {ext} left for the worker to fill
    formats: list[str]
    flush_seconds: float
    track_names: list[str] = []  # an ingest call's tracks known at its start, by track index


class StartMedia(_Message):
    """The far end answered: receive, encode and publish. ``secrets`` go to the log redactor."""

    type: Literal["start"] = "start"
    call: str
    peer: Peer
    send_silence: bool
    feed: bool = False  # an ingest call: no RTP endpoint; its audio comes as FeedAudio frames
    stereo: bool = False  # the feed's tracks laid out left/right (its destinations encode two channels)
    destinations: list[DestinationStart]
    secrets: list[str]
    record: RecordStart | None = None


class UpdateMedia(_Message):
    """A re-INVITE/UPDATE changed the far end's address, direction or keys."""

    type: Literal["update"] = "update"
    call: str
    peer: Peer


class NameTrack(_Message):
    """An ingest call's track ``index`` is called ``name`` (its per-track recording files)."""

    type: Literal["track"] = "track"
    call: str
    index: int
    name: str


@dataclass(frozen=True, slots=True)
class FeedAudio:
    """One frame of an ingest call's track: ``timestamp`` in samples from the stream's start."""

    call: str
    track: int
    timestamp: int
    payload: bytes

    type = "feed"

    def encode(self) -> bytes:
        call = self.call.encode()
        header = _FEED_HEADER.pack(FEED_TAG, len(call))
        fields = _FEED_FIELDS.pack(self.track, self.timestamp & 0xFFFFFFFF)
        body_length = len(header) + len(call) + len(fields) + len(self.payload)
        return b"".join((_LENGTH.pack(body_length), header, call, fields, self.payload))

    @classmethod
    def decode(cls, frame: bytes) -> FeedAudio:
        """The frame's fields; ProtocolError when it is too short for what it says it holds."""
        if len(frame) < _FEED_HEADER.size:
            raise ProtocolError("feed frame shorter than its header")
        _tag, call_length = _FEED_HEADER.unpack_from(frame)
        start = _FEED_HEADER.size + call_length
        if len(frame) < start + _FEED_FIELDS.size:
            raise ProtocolError("feed frame shorter than its call id and fields")
        track, timestamp = _FEED_FIELDS.unpack_from(frame, start)
        call = frame[_FEED_HEADER.size : start].decode(errors="replace")
        return cls(call, track, timestamp, frame[start + _FEED_FIELDS.size :])


FEED_TAG = 0
_FEED_HEADER = struct.Struct(">BH")  # the zero tag, the call id's length in bytes
_FEED_FIELDS = struct.Struct(">BI")  # track, timestamp


class AdoptStream(_Message):
    """Read an ingest call's WebSocket from now on: its socket came on the descriptor channel with ``token``.

    The daemon sends the socket (SCM_RIGHTS) just before this message, so it is waiting when
    the message is read. The worker frames, parses and plays the stream from there, answers
    pings and closes it, and reports what the daemon must know (:class:`StreamDigit`,
    :class:`StreamTrack`, :class:`StreamClosed`).
    """

    type: Literal["adopt"] = "adopt"
    call: str
    token: int
    protocol: str
    core: CoreState
    tracks: list[str]  # numbered in order of first appearance
    unparsed: bytes  # the start of a frame the daemon read but could not complete


class CloseStream(_Message):
    """Close an adopted WebSocket with ``code`` (RFC 6455 7.4.1): a hang-up, a shutdown, failed media."""

    type: Literal["close-stream"] = "close-stream"
    call: str
    code: int
    reason: str


class Listen(_Message):
    """Start (``on``) or stop sending the call's published AAC frames as :class:`ListenAudio`."""

    type: Literal["listen"] = "listen"
    call: str
    on: bool


class SendDtmf(_Message):
    type: Literal["dtmf"] = "dtmf"
    call: str
    digits: str
    duration_ms: int


class StopMedia(_Message):
    """Flush and unpublish, close the sockets, answer :class:`MediaStopped`."""

    type: Literal["stop"] = "stop"
    call: str


# -- worker to daemon -------------------------------------------------------------------


class WorkerReady(_Message):
    type: Literal["ready"] = "ready"
    worker: int
    pid: int


class EndpointOpened(_Message):
    """The bound RTP port, or ``port`` 0 and the reason none could be bound."""

    type: Literal["opened"] = "opened"
    call: str
    port: int
    video_port: int = 0
    error: str = ""


# -- what a call's media reports (worker to daemon, inside MediaEvent) ---------------------


class DtmfHeard(_Message):
    """An RFC 4733 digit the far end sent, once per event."""

    type: Literal["dtmf-heard"] = "dtmf-heard"
    digit: str
    duration_ms: int


class EncoderRestarted(_Message):
    """The audio encoder produced nothing for a while and was opened again."""

    type: Literal["encoder-restarted"] = "encoder-restarted"
    reason: str


class DestinationFailed(_Message):
    """A destination was given up (its state change travels as StreamStateChanged)."""

    type: Literal["destination-failed"] = "destination-failed"
    destination: int
    reason: str


class KeyframeWanted(_Message):
    """The far end's video needs a key frame and takes no RTCP feedback: ask by SIP INFO (RFC 5168)."""

    type: Literal["keyframe-wanted"] = "keyframe-wanted"


class KeyframeRequestsIgnored(_Message):
    """The far end answered none of our key-frame requests by ``method`` (noted once a call)."""

    type: Literal["keyframe-requests-ignored"] = "keyframe-requests-ignored"
    method: str
    unanswered: int


class RecordingChanged(_Message):
    """A recording file's state (recording, finished, stopped, failed) and size so far."""

    type: Literal["recording-changed"] = "recording-changed"
    format: str
    track: str
    state: str
    reason: str = ""
    name: str = ""
    path: str | None = None  # relative to the recording directory; None when no file was made
    bytes: int = 0
    duration_seconds: float = 0.0

    def details(self) -> dict[str, Any]:
        """The timeline's and the recording service's fields (the API's names)."""
        found: dict[str, Any] = {"format": self.format, "track": self.track, "state": self.state}
        found["reason"] = self.reason
        if self.path is not None:
            found.update(name=self.name, path=self.path, bytes=self.bytes, durationSeconds=self.duration_seconds)
        return found


class StreamDigit(_Message):
    """A DTMF digit an adopted stream's platform reported (Twilio ``dtmf``, ACS ``DtmfData``)."""

    type: Literal["stream-digit"] = "stream-digit"
    digit: str
    track: str


class StreamTrack(_Message):
    """An adopted stream's track number ``index`` appeared, named ``name`` by the platform."""

    type: Literal["stream-track"] = "stream-track"
    index: int
    name: str


class StreamClosed(_Message):
    """An adopted stream ended (``code`` sent or received, RFC 6455 7.4.1); the worker closes it."""

    type: Literal["stream-closed"] = "stream-closed"
    code: int
    reason: str
    finished: bool  # a stop message or a clean close: the call ends FINISH, else FAILED


MediaReport = (
    DtmfHeard
    | EncoderRestarted
    | DestinationFailed
    | KeyframeWanted
    | KeyframeRequestsIgnored
    | RecordingChanged
    | StreamDigit
    | StreamTrack
    | StreamClosed
)


Reporter = Callable[[MediaReport], None]  # how a call's media parts hand their events to the worker


class MediaEvent(_Message):
    """Something the call's media reports (no counters: they travel with WorkerStats and MediaStopped)."""

    type: Literal["event"] = "event"
    call: str
    event: Annotated[MediaReport, Field(discriminator="type")]


class StreamStateChanged(_Message):
    type: Literal["stream"] = "stream"
    call: str
    destination: int
    state: str
    reason: str
    counters: MediaCounters | None  # fresh, so a reconnect shows at once; None before media


class MediaEnded(_Message):
    """Media cannot go on (no RTP for rtp.timeout, the stream given up); the call should end."""

    type: Literal["ended"] = "ended"
    call: str
    reason: str


class MediaStopped(_Message):
    type: Literal["stopped"] = "stopped"
    call: str
    counters: MediaCounters | None  # the call's last; None when it had no media


class ListenAudio(_Message):
    """The raw AAC frames the call's first destination got this tick (while someone listens)."""

    type: Literal["audio"] = "audio"
    call: str
    frames: list[bytes]


class WorkerStats(_Message):
    """Once a second: every call's counters, the worker's loop lag and its resource use."""

    type: Literal["stats"] = "stats"
    worker: int
    calls: dict[str, MediaCounters]
    loop_lag_ms: dict[str, float]
    cpu_seconds: float
    rss_bytes: int
    tasks: int = 0  # asyncio tasks alive in the worker (a leak shows as growth)
    gc_ms: float = 0.0  # the last full garbage collection after calls ended, in milliseconds
    streams: int = 0  # ingest WebSockets the worker reads (handed over by the daemon), closing ones too
    fast_path: bool = False  # the media's compiled path (rtp._fast) runs, not the Python reference only
    stages: dict[str, float] = {}  # per-stage seconds and calls, only under the stage profiler


ToWorker = Annotated[
    Configure
    | OpenEndpoint
    | StartMedia
    | UpdateMedia
    | NameTrack
    | AdoptStream
    | CloseStream
    | Listen
    | SendDtmf
    | StopMedia,
    Field(discriminator="type"),
]
FromWorker = Annotated[
    WorkerReady
    | EndpointOpened
    | MediaEvent
    | StreamStateChanged
    | MediaEnded
    | MediaStopped
    | ListenAudio
    | WorkerStats,
    Field(discriminator="type"),
]
TO_WORKER: TypeAdapter[ToWorker] = TypeAdapter(ToWorker)
FROM_WORKER: TypeAdapter[FromWorker] = TypeAdapter(FromWorker)


class ProtocolError(Exception):
    """The peer sent something that is not a message of this protocol."""


def encode(message: _Message) -> bytes:
    """The one serializer: length prefix + JSON."""
    body = message.model_dump_json().encode()
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """One frame's JSON, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


def _first_error(exc: ValidationError) -> str:
    """Where and what, without the input (which may hold keys)."""
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"


def decode_to_worker(frame: bytes) -> ToWorker | FeedAudio:
    if frame[:1] == b"\x00":
        return FeedAudio.decode(frame)
    try:
        return TO_WORKER.validate_json(frame)
    except ValidationError as exc:
        raise ProtocolError(f"bad message to worker: {_first_error(exc)}") from None


def decode_from_worker(frame: bytes) -> FromWorker:
    try:
        return FROM_WORKER.validate_json(frame)
    except ValidationError as exc:
        raise ProtocolError(f"bad message from worker: {_first_error(exc)}") from None


TOKEN = struct.Struct(">Q")


def send_socket(channel: socket.socket, token: int, fd: int) -> None:
    """Pass ``fd`` (SCM_RIGHTS) with its token; raises OSError when the channel cannot take it now."""
    socket.send_fds(channel, [TOKEN.pack(token)], [fd])


def receive_socket(channel: socket.socket, token: int) -> socket.socket | None:
    """The socket sent with ``token`` (``channel`` is non-blocking); older ones waiting are closed.

    None when it is not there.
    """
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, TOKEN.size, 1)
        except (BlockingIOError, InterruptedError):
            return None
        if not data and not fds:
            return None  # the channel closed
        if fds and len(data) == TOKEN.size and TOKEN.unpack(data)[0] == token:
            return socket.socket(fileno=fds[0])
        _stale(fds)


def _stale(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
