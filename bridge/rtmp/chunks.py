"""RTMP chunk stream framing (Adobe RTMP specification 1.0, section 5.3).

:class:`ChunkWriter` splits messages into chunks; :class:`ChunkReader` reassembles
messages from a byte stream, with all four header formats and extended timestamps.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0xFFFFFF
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
# A server may open up to 65,599 chunk streams (section 5.3.1.1), each holding a partial message:
# bounded, a hostile server cannot make us hold more than this however it interleaves them.
MAX_CHUNK_STREAMS = 64
MAX_PARTIAL_BYTES = 2 * MAX_MESSAGE_SIZE
EXTENDED_TIMESTAMP = 0xFFFFFF


class ChunkError(ValueError):
    """A chunk stream that violates the specification or our size limits."""


@dataclass(slots=True)
class RtmpMessage:
    """One reassembled message (section 5.4 / 6.1)."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([(fmt << 6) | 1]) + struct.pack("<H", csid - 64)


class ChunkWriter:
    """Serialises messages, each with a type-0 header then type-3 continuation chunks."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE

    def write(self, csid: int, message: RtmpMessage) -> bytes:
        timestamp = message.timestamp & 0xFFFFFFFF
        extended = timestamp >= EXTENDED_TIMESTAMP
        header_ts = EXTENDED_TIMESTAMP if extended else timestamp
        ext = struct.pack("!I", timestamp) if extended else b""
        length = len(message.payload)
        out = bytearray(_basic_header(0, csid))
        out += header_ts.to_bytes(3, "big") + length.to_bytes(3, "big")
        out.append(message.type_id)
        out += struct.pack("<I", message.stream_id) + ext
        payload = message.payload
        out += payload[: self.chunk_size]
        for offset in range(self.chunk_size, length, self.chunk_size):
            out += _basic_header(3, csid) + ext
            out += payload[offset : offset + self.chunk_size]
        return bytes(out)

    def single(self, csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes) -> bytes | None:
        """The common media message in one step: one type-0 chunk (section 5.3.1.2.1: chunk stream
        below 64, timestamp below 0xFFFFFF, payload within the chunk size), else None.

        Byte for byte what :meth:`write` gives for it (tests/unit/rtmp/test_chunks.py)."""
        length = len(payload)
        if csid >= 64 or timestamp >= EXTENDED_TIMESTAMP or length > self.chunk_size:
            return None
        header = (((((csid << 24) | timestamp) << 24) | length) << 8 | type_id).to_bytes(8, "big")
        return b"".join((header, stream_id.to_bytes(4, "little"), payload))


@dataclass(slots=True)
class _ChunkStreamState:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    partial: bytearray = field(default_factory=bytearray)


class ChunkReader:
    """Reassembles messages from received bytes: :meth:`feed`, then :meth:`next_message`."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._buffer = bytearray()
        self._streams: dict[int, _ChunkStreamState] = {}
        self._partial_bytes = 0  # held in unfinished messages, all chunk streams together

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> RtmpMessage | None:
        """The next complete message, or None until more bytes arrive.

        One at a time, so that a Set Chunk Size takes effect for the chunks after it.
        """
        while True:
            message, consumed = self._read_chunk()
            if message is not None:
                return message
            if not consumed:
                return None

    def _read_chunk(self) -> tuple[RtmpMessage | None, bool]:
        """Consume one chunk if fully buffered; return (message if completed, consumed)."""
        parsed = self._parse_headers()
        if parsed is None:
            return None, False
        header_length, csid, state = parsed
        remaining = state.length - len(state.partial)
        take = min(remaining, self.chunk_size)
        if len(self._buffer) < header_length + take:
            return None, False
        self._commit_headers(csid, state)
        state.partial += self._buffer[header_length : header_length + take]
        del self._buffer[: header_length + take]
        if len(state.partial) < state.length:
            self._partial_bytes += take
            if self._partial_bytes > MAX_PARTIAL_BYTES:
                raise ChunkError(f"more than {MAX_PARTIAL_BYTES} bytes of unfinished messages")
            return None, True
        self._partial_bytes -= len(state.partial) - take
        payload = bytes(state.partial)
        state.partial.clear()
        message = RtmpMessage(state.type_id, state.stream_id, state.timestamp, payload)
        return message, True

    def _parse_headers(self) -> tuple[int, int, _ChunkStreamState] | None:
        buf = self._buffer
        if not buf:
            return None
        fmt, csid, pos = buf[0] >> 6, buf[0] & 0x3F, 1
        if csid in (0, 1):
            extra = 1 if csid == 0 else 2
            if len(buf) < 1 + extra:
                return None
            csid = 64 + buf[1] + (buf[2] << 8 if csid == 1 else 0)
            pos += extra
        previous = self._streams.get(csid)
        if previous is None and fmt >= 2:
            # A type-1 header carries length and type, so a chunk stream may start with one
            # (FFmpeg and some servers do; message stream 0 is implied). Types 2 and 3 cannot.
            raise ChunkError(f"chunk stream {csid} starts with a type-{fmt} header")
        state = _ChunkStreamState() if previous is None else _copy(previous)
        header_size = (11, 7, 3, 0)[fmt]
        if len(buf) < pos + header_size:
            return None
        pos = self._apply_message_header(fmt, buf, pos, state)
        if pos < 0:
            return None
        return pos, csid, state

    def _apply_message_header(self, fmt: int, buf: bytearray, pos: int, state: _ChunkStreamState) -> int:
        new_message = not state.partial
        ts_field = None
        if fmt <= 2:
            ts_field = int.from_bytes(buf[pos : pos + 3], "big")
        if fmt <= 1:
            state.length = int.from_bytes(buf[pos + 3 : pos + 6], "big")
            state.type_id = buf[pos + 6]
            if state.length > MAX_MESSAGE_SIZE:
                raise ChunkError(f"message of {state.length} bytes exceeds our limit")
        if fmt == 0:
            state.stream_id = struct.unpack_from("<I", buf, pos + 7)[0]
        pos += (11, 7, 3, 0)[fmt]
        if ts_field is not None:
            state.extended = ts_field == EXTENDED_TIMESTAMP
        if state.extended:
            if len(buf) < pos + 4:
                return -1
            ts_field = struct.unpack_from("!I", buf, pos)[0] if ts_field is not None else ts_field
            pos += 4
        if ts_field is not None:
            if fmt == 0:
                state.timestamp, state.delta = ts_field, 0
            else:
                state.delta = ts_field
        if new_message and fmt != 0:
            state.timestamp = (state.timestamp + state.delta) & 0xFFFFFFFF
        return pos

    def _commit_headers(self, csid: int, state: _ChunkStreamState) -> None:
        if csid not in self._streams and len(self._streams) >= MAX_CHUNK_STREAMS:
            raise ChunkError(f"more than {MAX_CHUNK_STREAMS} chunk streams")
        self._streams[csid] = state


def _copy(state: _ChunkStreamState) -> _ChunkStreamState:
    return _ChunkStreamState(
        state.timestamp,
        state.delta,
        state.length,
        state.type_id,
        state.stream_id,
        state.extended,
        state.partial,
    )
