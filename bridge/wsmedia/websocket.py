"""The server side of a WebSocket connection (RFC 6455), sans-IO.

The bridge terminates the platforms' media streams itself (the daemon until a stream's call is
admitted, the call's media worker from then on): each read goes to
:meth:`ServerConnection.receive_data`, which returns the complete messages it holds as typed
events, with no task, queue or wake-up per message (about 50 messages a second per call).
What it must answer (pongs, its close frames) is collected for
:meth:`ServerConnection.data_to_send`. No extension is negotiated, so a frame with a reserved
bit set is a protocol error (RFC 6455 5.2).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
VERSION = "13"
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
PROTOCOL_ERROR, INVALID_DATA, MESSAGE_TOO_BIG = 1002, 1007, 1009
NO_STATUS = 1005  # a close frame without a code (RFC 6455 7.1.5); never sent
MAX_CONTROL_PAYLOAD = 125
MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2


class HandshakeError(Exception):
    """The upgrade request is not an RFC 6455 opening handshake; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _tokens(value: str) -> set[str]:
    return {token.lower() for token in TOKEN.findall(value)}


def accept_key(headers: Mapping[str, str]) -> str:
    """``Sec-WebSocket-Accept`` for a client's opening handshake (RFC 6455 4.2.1, 4.2.2)."""
    if "websocket" not in _tokens(headers.get("Upgrade", "")):
        raise HandshakeError(400, "the Upgrade header must name websocket")
    if "upgrade" not in _tokens(headers.get("Connection", "")):
        raise HandshakeError(400, "the Connection header must include Upgrade")
    if headers.get("Sec-WebSocket-Version", "").strip() != VERSION:
        raise HandshakeError(426, f"Sec-WebSocket-Version must be {VERSION}")
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        nonce = base64.b64decode(key, validate=True)
    except ValueError:
        nonce = b""
    if len(nonce) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


# Not frozen: a frozen dataclass costs 0.8 µs more to build, and one is built per message.
@dataclass(slots=True)
class TextReceived:
    text: str


@dataclass(slots=True)
class BinaryReceived:
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The client's close frame (``code`` is 1005 when it gave none); the reply is already queued."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The client broke the protocol; the connection must close with ``code`` (RFC 6455 7.1.7)."""

    code: int
    reason: str


WebSocketEvent = TextReceived | BinaryReceived | CloseReceived | ConnectionFailed


def unmask(payload: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR ``payload`` with the 4-byte masking key (RFC 6455 5.3), as one integer operation."""
    size = len(payload)
    if not size:
        return b""
    key = int.from_bytes((bytes(mask) * (size // 4 + 1))[:size], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")


def frame(opcode: int, payload: bytes) -> bytes:
    """One unfragmented, unmasked frame (servers do not mask, RFC 6455 5.1)."""
    size = len(payload)
    if size < 126:
        return bytes((0x80 | opcode, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, size) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, size) + payload


def close_code_valid(code: int) -> bool:
    """Codes a close frame may carry (RFC 6455 7.4.1, 7.4.2; IANA registry)."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or 3000 <= code <= 4999


class ServerConnection:
    """An established connection's frames, from the server's side."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self.close_sent = False
        self.close_received = False
        self.failed = False
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0  # the opcode of the message being continued, 0 for none
        self._fragment_bytes = 0

    # -- changing hands between processes ----------------------------------------------

    @property
    def fragmenting(self) -> bool:
        """A fragmented message is under way (its first frames are held here)."""
        return bool(self._fragment_opcode)

    @property
    def pending_output(self) -> bool:
        return bool(self._outgoing)

    def unparsed(self) -> bytes:
        """The start of a frame read but not yet complete (never a whole frame: those are parsed)."""
        return bytes(self._buffer)

    def ignore_input(self) -> None:
        """Parse nothing more: another process read this connection, its frames cannot be followed here."""
        self.failed = True
        self._buffer.clear()

    def resume(self, unparsed: bytes) -> None:
        """Continue a connection another process served, from the bytes it had not parsed."""
        self._buffer = bytearray(unparsed)

    # -- receiving ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[WebSocketEvent]:
        """The messages and closes completed by ``data`` (nothing after a close or a failure)."""
        if self.close_received or self.failed:
            return []
        if not self._buffer and not self._fragment_opcode:
            whole = self._one_text_frame(data)
            if whole is not None:
                return [whole]
        events: list[WebSocketEvent] = []
        if self._buffer:
            self._buffer += data
            consumed = self._parse(self._buffer, events)
            del self._buffer[:consumed]
        else:  # the usual case: whole frames in one read, parsed in place
            consumed = self._parse(data, events)
            if consumed < len(data):
                self._buffer += data[consumed:]
        if self.failed or self.close_received:
            self._buffer.clear()
        return events

    def _one_text_frame(self, data: bytes) -> TextReceived | None:
        """The usual read, checked in one step: exactly one whole, final, masked text frame of
        valid UTF-8 within the size limit (RFC 6455 5.2). Anything else (None) takes the full path,
        which also says what is wrong with it."""
        size = len(data)
        if size < 6 or data[0] != 0x81 or data[1] < 0x80:  # FIN, no reserved bits, text; masked
            return None
        length, start = data[1] & 0x7F, 6
        if length == 126:
            length, start = (data[2] << 8) | data[3], 8
        elif length == 127:
            return None
        if start + length != size or length > self.max_message_bytes:
            return None
        try:
            return TextReceived(unmask(data[start:], data[start - 4 : start]).decode("utf-8"))
        except UnicodeDecodeError:
            return None

    def _parse(self, data: bytes | bytearray, events: list[WebSocketEvent]) -> int:
        offset = 0
        while not (self.failed or self.close_received):
            end = self._parse_frame(data, offset, events)
            if end < 0:
                break
            offset = end
        return offset

    def _parse_frame(self, data: bytes | bytearray, offset: int, events: list[WebSocketEvent]) -> int:
        """The offset after the frame at ``offset``, or -1 while it is incomplete (RFC 6455 5.2)."""
        available = len(data) - offset
        if available < 2:
            return -1
        first, second = data[offset], data[offset + 1]
        size, header = second & 0x7F, 2
        if size == 126:
            if available < 4:
                return -1
            size, header = int.from_bytes(data[offset + 2 : offset + 4], "big"), 4
        elif size == 127:
            if available < 10:
                return -1
            size, header = int.from_bytes(data[offset + 2 : offset + 10], "big"), 10
        refusal = self._refusal(first, second, size)
        if refusal is not None:
            self._fail(events, *refusal)
            return -1
        end = offset + header + 4 + size
        if len(data) < end:
            return -1
        start = offset + header + 4
        payload = unmask(data[start:end], data[start - 4 : start])
        self._frame(first & 0x80, first & 0x0F, payload, events)
        return end

    def _refusal(self, first: int, second: int, size: int) -> tuple[int, str] | None:
        """Why a frame's header breaks the protocol or the size limit, or None (RFC 6455 5.2-5.5)."""
        opcode = first & 0x0F
        if first & 0x70:
            return PROTOCOL_ERROR, "a reserved bit is set and no extension was negotiated"
        if not second & 0x80:
            return PROTOCOL_ERROR, "a client's frames must be masked"
        if opcode & 0x8:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                return PROTOCOL_ERROR, f"unknown control opcode {opcode:#x}"
            if not first & 0x80 or size > MAX_CONTROL_PAYLOAD:
                return PROTOCOL_ERROR, "a control frame must be whole and at most 125 bytes"
            return None
        if opcode not in (OP_CONTINUATION, OP_TEXT, OP_BINARY):
            return PROTOCOL_ERROR, f"unknown data opcode {opcode:#x}"
        if self._fragment_bytes + size > self.max_message_bytes:
            return MESSAGE_TOO_BIG, f"a message of more than {self.max_message_bytes} bytes"
        return None

    def _frame(self, fin: int, opcode: int, payload: bytes, events: list[WebSocketEvent]) -> None:
        if opcode == OP_CLOSE:
            self._close_frame(payload, events)
        elif opcode == OP_PING:
            self._queue(OP_PONG, payload)  # RFC 6455 5.5.3
        elif opcode == OP_PONG:
            return
        elif opcode == OP_CONTINUATION:
            if not self._fragment_opcode:
                self._fail(events, PROTOCOL_ERROR, "a continuation frame with no message to continue")
                return
            self._fragments.append(payload)
            self._fragment_bytes += len(payload)
            if fin:
                opcode, self._fragment_opcode, self._fragment_bytes = self._fragment_opcode, 0, 0
                whole, self._fragments = b"".join(self._fragments), []
                self._message(opcode, whole, events)
        elif self._fragment_opcode:
            self._fail(events, PROTOCOL_ERROR, "a new message began before the fragmented one ended")
        elif fin:
            self._message(opcode, payload, events)
        else:
            self._fragment_opcode, self._fragments, self._fragment_bytes = opcode, [payload], len(payload)

    def _message(self, opcode: int, payload: bytes, events: list[WebSocketEvent]) -> None:
        if opcode == OP_BINARY:
            events.append(BinaryReceived(payload))
            return
        try:
            events.append(TextReceived(payload.decode("utf-8")))
        except UnicodeDecodeError:
            self._fail(events, INVALID_DATA, "a text message is not valid UTF-8")

    def _close_frame(self, payload: bytes, events: list[WebSocketEvent]) -> None:
        """RFC 6455 5.5.1: an optional 2-byte code, then a UTF-8 reason; the reply echoes the code."""
        if not payload:
            code, reason = NO_STATUS, ""
        else:
            code = int.from_bytes(payload[:2], "big")
            if len(payload) < 2 or not close_code_valid(code):
                self._fail(events, PROTOCOL_ERROR, "the close frame's code is missing or not allowed")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(events, INVALID_DATA, "the close frame's reason is not valid UTF-8")
                return
        self.close_received = True
        if not self.close_sent:
            self.close_sent = True
            self._queue(OP_CLOSE, payload[:2])
        events.append(CloseReceived(code, reason))

    def _fail(self, events: list[WebSocketEvent], code: int, reason: str) -> None:
        self.failed = True
        events.append(ConnectionFailed(code, reason))

    # -- sending --------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Queue our close frame (once); ``reason`` is cut to 123 bytes on a character boundary."""
        if self.close_sent:
            return
        self.close_sent = True
        cut = reason.encode()[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode()
        self._queue(OP_CLOSE, code.to_bytes(2, "big") + cut if close_code_valid(code) else b"")

    def _queue(self, opcode: int, payload: bytes) -> None:
        self._outgoing.append(frame(opcode, payload))

    def data_to_send(self) -> bytes:
        """The bytes to write, in order; empties the queue."""
        if not self._outgoing:
            return b""
        data, self._outgoing = b"".join(self._outgoing), []
        return data
