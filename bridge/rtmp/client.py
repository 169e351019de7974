"""A sans-IO RTMP publishing client (Adobe RTMP specification 1.0, sections 5-7).

Feed it received bytes with :meth:`RtmpClientCore.receive_data`; take bytes to
send from :meth:`data_to_send`; read :attr:`events`. It performs the simple
handshake (section 5.2), connect / releaseStream / FCPublish / createStream /
publish (section 7.2), answers pings and acknowledgements, and reports onStatus.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from enum import Enum

from bridge.rtmp import amf0
from bridge.rtmp.auth import Failed, PublishAuth, Retry
from bridge.rtmp.chunks import ChunkError, ChunkReader, ChunkWriter, RtmpMessage
from bridge.rtmp.flv import AUDIO, VIDEO
from bridge.rtmp.url import RtmpTarget

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3
OUR_CHUNK_SIZE = 4096
FLASH_VERSION = "FMLE/3.0 (compatible; sip-rtmp-bridge)"

SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL = 1, 2, 3, 4
WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 5, 6
DATA_AMF0, COMMAND_AMF0 = 18, 20  # audio (8) and video (9) messages: the FLV tag types
PING_REQUEST, PING_RESPONSE = 6, 7
CSID_CONTROL, CSID_COMMAND, CSID_AUDIO, CSID_DATA, CSID_VIDEO, CSID_STREAM_COMMAND = 2, 3, 4, 5, 6, 8
MEDIA_CSID = {AUDIO: CSID_AUDIO, VIDEO: CSID_VIDEO}


class RtmpState(Enum):
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    CREATING_STREAM = "creating stream"
    PUBLISH_REQUESTED = "publish requested"
    PUBLISHING = "publishing"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PublishStarted:
    """The server answered NetStream.Publish.Start."""


@dataclass(frozen=True, slots=True)
class RtmpFailed:
    """The server refused (connect ``_error``, onStatus level error) or broke the protocol."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class AuthRetry:
    """The server challenged our publish authentication: connect again with ``query``."""

    query: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """Our publish credentials were refused (or could not answer the challenge): ``reason`` says which."""

    reason: str


RtmpEvent = PublishStarted | RtmpFailed | AuthRetry | AuthFailed


class RtmpClientCore:
    """Publishes one stream to one server over one connection."""

    def __init__(
        self,
        target: RtmpTarget,
        handshake_random: bytes | None = None,
        auth: PublishAuth | None = None,
        ack_window: int = 0,
    ) -> None:
        """``ack_window``: ask the server to acknowledge every that many bytes it reads (section 5.4.4;
        nginx-rtmp, FFmpeg and Wowza do), so a server that stops reading can be told from one whose
        kernel still takes our bytes; 0 = do not ask."""
        self.target = target
        self.ack_window_asked = ack_window
        self.peer_acknowledged: int | None = None  # the last sequence number the server acknowledged
        self.auth = auth
        self.state = RtmpState.HANDSHAKE
        self.events: list[RtmpEvent] = []
        self.stream_id = 0
        self.bytes_sent = 0
        self._out = bytearray()
        self._in = bytearray()
        self._reader = ChunkReader()
        self._writer = ChunkWriter()
        self._received_total = 0
        self._ack_window = 0
        self._acknowledged = 0
        self._c1 = bytes(8) + (handshake_random or os.urandom(HANDSHAKE_SIZE - 8))
        self._out += bytes([RTMP_VERSION]) + self._c1

    # -- input ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Process bytes from the server; protocol errors become :class:`RtmpFailed`."""
        if self.state in (RtmpState.CLOSED, RtmpState.FAILED):
            return
        self._received_total += len(data)
        try:
            if self.state is RtmpState.HANDSHAKE:
                data = self._handshake(data)
                if self.state is RtmpState.HANDSHAKE:
                    return
            self._reader.feed(data)
            while (message := self._reader.next_message()) is not None:
                self._on_message(message)
        except (ChunkError, amf0.AmfError) as exc:
            self._fail("Protocol.Error", str(exc))
        self._maybe_acknowledge()

    def _handshake(self, data: bytes) -> bytes:
        """Section 5.2.5: read S0+S1+S2, answer C2 (echo of S1), then connect."""
        self._in += data
        needed = 1 + 2 * HANDSHAKE_SIZE
        if len(self._in) < needed:
            return b""
        if self._in[0] != RTMP_VERSION:
            self._fail("Handshake.Error", f"server speaks RTMP version {self._in[0]}")
            return b""
        s1 = bytes(self._in[1 : 1 + HANDSHAKE_SIZE])
        rest = bytes(self._in[needed:])
        self._in.clear()
        self._out += s1
        self.state = RtmpState.CONNECTING
        self._send_control(SET_CHUNK_SIZE, struct.pack("!I", OUR_CHUNK_SIZE))
        if self.ack_window_asked:
            self._send_control(WINDOW_ACK_SIZE, struct.pack("!I", self.ack_window_asked))
        self._writer.chunk_size = OUR_CHUNK_SIZE
        self._send_connect()
        return rest

    def _on_message(self, message: RtmpMessage) -> None:
        if message.type_id == SET_CHUNK_SIZE and len(message.payload) >= 4:
            size = struct.unpack_from("!I", message.payload)[0] & 0x7FFFFFFF
            if not 1 <= size <= 0xFFFFFF:
                raise ChunkError(f"invalid chunk size {size}")
            self._reader.chunk_size = size
        elif message.type_id == WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self._ack_window = struct.unpack_from("!I", message.payload)[0]
        elif message.type_id == ACKNOWLEDGEMENT and len(message.payload) >= 4:
            self.peer_acknowledged = struct.unpack_from("!I", message.payload)[0]
        elif message.type_id == USER_CONTROL and len(message.payload) >= 6:
            self._on_user_control(message.payload)
        elif message.type_id == COMMAND_AMF0:
            self._on_command(amf0.decode_all(message.payload))

    def _on_user_control(self, payload: bytes) -> None:
        event = struct.unpack_from("!H", payload)[0]
        if event == PING_REQUEST:
            self._send_control(USER_CONTROL, struct.pack("!H", PING_RESPONSE) + payload[2:6])

    def _on_command(self, values: list[amf0.AmfValue]) -> None:
        if not values or not isinstance(values[0], str):
            return
        name = values[0]
        transaction = values[1] if len(values) > 1 else 0
        if name == "_result":
            self._on_result(transaction, values[2:])
        elif name == "_error":
            info = _info_object(values[2:])
            code, description = str(info.get("code", "NetConnection.Call.Failed")), str(info.get("description", ""))
            if transaction == 1 and self.auth is not None and self._auth_step(description):
                return
            self._fail(code, description)
        elif name == "onStatus":
            self._on_status(_info_object(values[2:]))

    def _on_result(self, transaction: amf0.AmfValue, args: list[amf0.AmfValue]) -> None:
        if self.state is RtmpState.CONNECTING and transaction == 1:
            self.state = RtmpState.CREATING_STREAM
            name = self.target.stream
            self._send_command("releaseStream", 2, None, name)
            self._send_command("FCPublish", 3, None, name)
            self._send_command("createStream", 4, None)
        elif self.state is RtmpState.CREATING_STREAM and transaction == 4:
            stream_id = next((a for a in args if isinstance(a, float)), None)
            if stream_id is None:
                self._fail("NetConnection.Call.Failed", "createStream returned no stream id")
                return
            self.stream_id = int(stream_id)
            self.state = RtmpState.PUBLISH_REQUESTED
            self._send_command("publish", 5, None, self.target.stream, "live", stream=True)

    def _auth_step(self, description: str) -> bool:
        """A connect rejection about publish authentication: retry with a response, or fail saying why."""
        assert self.auth is not None
        step = self.auth.rejected(description)
        if isinstance(step, Retry):
            self.state = RtmpState.FAILED
            self.events.append(AuthRetry(step.query))
        elif isinstance(step, Failed):
            self.state = RtmpState.FAILED
            self.events.append(AuthFailed(step.reason))
        return step is not None

    def _on_status(self, info: dict[str, amf0.AmfValue]) -> None:
        code = str(info.get("code", ""))
        if code == "NetStream.Publish.Start" and self.state is RtmpState.PUBLISH_REQUESTED:
            self.state = RtmpState.PUBLISHING
            self.events.append(PublishStarted())
        elif str(info.get("level", "")) == "error":
            self._fail(code or "NetStream.Error", str(info.get("description", "")))

    # -- output ---------------------------------------------------------------------

    def send_metadata(self, metadata: dict[str, amf0.AmfValue]) -> None:
        """``@setDataFrame onMetaData`` (FLV section E.5) so players learn the codec."""
        payload = amf0.encode("@setDataFrame", "onMetaData", metadata)
        self._send(CSID_DATA, RtmpMessage(DATA_AMF0, self.stream_id, 0, payload))

    def send_media(self, kind: int, timestamp_ms: int, payload: bytes) -> None:
        """One FLV AUDIODATA (type 8) or VIDEODATA (type 9) body at ``timestamp_ms``."""
        if self.state is RtmpState.PUBLISHING:
            self._send(MEDIA_CSID[kind], RtmpMessage(kind, self.stream_id, timestamp_ms, payload))

    def media_bytes(self, kind: int, timestamp_ms: int, payload: bytes) -> bytes | None:
        """The publish fast path: the bytes of one media message as a single chunk, counted as sent,
        when publishing with nothing else waiting to go out; else None (use :meth:`send_media`)."""
        if self.state is not RtmpState.PUBLISHING or self._out:
            return None
        data = self._writer.single(MEDIA_CSID[kind], kind, self.stream_id, timestamp_ms, payload)
        if data is not None:
            self.bytes_sent += len(data)
        return data

    def close(self) -> None:
        """Unpublish cleanly: FCUnpublish and deleteStream (section 7.2.2.3)."""
        if self.state in (RtmpState.PUBLISHING, RtmpState.PUBLISH_REQUESTED):
            self._send_command("FCUnpublish", 6, None, self.target.stream)
            self._send_command("deleteStream", 7, None, float(self.stream_id))
        if self.state is not RtmpState.FAILED:
            self.state = RtmpState.CLOSED

    @property
    def sent_after_handshake(self) -> int:
        """What the server's acknowledgements count: our bytes after C0, C1 and C2."""
        return max(self.bytes_sent - (1 + 2 * HANDSHAKE_SIZE), 0)

    @property
    def unacknowledged(self) -> int | None:
        """Bytes we sent that the server has not acknowledged yet (None: it has acknowledged nothing)."""
        if self.peer_acknowledged is None:
            return None
        return (self.sent_after_handshake - self.peer_acknowledged) & 0xFFFFFFFF  # sequence numbers wrap at 2**32

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        self.bytes_sent += len(data)
        return data

    def _send_connect(self) -> None:
        query = self.auth.query() if self.auth is not None else ""
        command: dict[str, amf0.AmfValue] = {
            "app": _with_query(self.target.app, query),
            "type": "nonprivate",
            "flashVer": FLASH_VERSION,
            "tcUrl": _with_query(self.target.tc_url, query),
        }
        self._send_command("connect", 1, command)

    def _send_command(self, name: str, transaction: int, *args: amf0.AmfValue, stream: bool = False) -> None:
        payload = amf0.encode(name, float(transaction), *args)
        csid = CSID_STREAM_COMMAND if stream else CSID_COMMAND
        self._send(csid, RtmpMessage(COMMAND_AMF0, self.stream_id if stream else 0, 0, payload))

    def _send_control(self, type_id: int, payload: bytes) -> None:
        self._send(CSID_CONTROL, RtmpMessage(type_id, 0, 0, payload))

    def _send(self, csid: int, message: RtmpMessage) -> None:
        self._out += self._writer.write(csid, message)

    def _maybe_acknowledge(self) -> None:
        """Section 5.4.3: acknowledge after each window of received bytes."""
        if self._ack_window and self._received_total - self._acknowledged >= self._ack_window:
            self._acknowledged = self._received_total
            self._send_control(ACKNOWLEDGEMENT, struct.pack("!I", self._received_total & 0xFFFFFFFF))

    def _fail(self, code: str, description: str) -> None:
        if self.state is not RtmpState.FAILED:
            self.state = RtmpState.FAILED
            self.events.append(RtmpFailed(code, description))


def _with_query(base: str, query: str) -> str:
    """``base`` with the authentication query appended (after its own query, if it has one)."""
    if not query:
        return base
    return f"{base}{'&' if '?' in base else '?'}{query}"


def _info_object(args: list[amf0.AmfValue]) -> dict[str, amf0.AmfValue]:
    for arg in args:
        if isinstance(arg, dict):
            return arg
    return {}
