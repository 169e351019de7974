"""RTMP chunks and AMF0 through pyrtmp, an implementation we did not write, to judge ours.

pyrtmp reads and writes chunk headers of all four formats and AMF0 values. It does not carry
the extended timestamp in type-3 continuation chunks (the RTMP 1.0 specification §5.3.1.3 and
FFmpeg do), so messages with timestamps of 0xFFFFFF or more are checked against hand-written
byte vectors instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from bitstring import BitStream
from pyrtmp.amf.serializers import AMF0Deserializer, AMF0Serializer
from pyrtmp.messages import RawChunk
from pyrtmp.session_manager import SessionManager


def read_messages(data: bytes, chunk_size: int = 128) -> list[tuple[int, int, int, int, bytes]]:
    """(chunk stream id, type id, message stream id, timestamp, payload) of each message pyrtmp reads
    from ``data``; a Set Chunk Size message (type 1) changes its chunk size as a server would."""

    async def read() -> list[tuple[int, int, int, int, bytes]]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        session = SessionManager(reader, None, reader_chunk_size=chunk_size)  # type: ignore[arg-type]
        found: list[tuple[int, int, int, int, bytes]] = []
        messages = session.read_chunks_from_stream()
        while reader.at_eof() is False or session.fifo_reader.buffer.length - session.fifo_reader.buffer.pos > 0:
            try:
                chunk = await messages.__anext__()
            except Exception:  # pyrtmp raises its StreamClosedException at the end of the bytes
                break
            found.append((chunk.chunk_id, chunk.msg_type_id, chunk.msg_stream_id, chunk.timestamp, chunk.payload))
            if chunk.msg_type_id == 1:
                session.reader_chunk_size = int.from_bytes(chunk.payload[:4], "big")
        return found

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(read())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from a test's own event loop
        return pool.submit(asyncio.run, read()).result()


def write_message(
    csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes, chunk_size: int = 128
) -> bytes:
    """One message as pyrtmp frames it: a type-0 chunk, then type-3 chunks of ``chunk_size``."""
    out = b""
    for index, start in enumerate(range(0, max(len(payload), 1), chunk_size)):
        out += RawChunk(0 if index == 0 else 3, csid, timestamp, len(payload), type_id, stream_id,
                        payload[start : start + chunk_size]).to_bytes()  # fmt: skip
    return out


def amf0_encode(*values: Any) -> bytes:
    stream = BitStream()
    for value in values:
        AMF0Serializer.create_object(stream, value)
    return bytes(stream.bytes)


def amf0_decode(data: bytes) -> list[Any]:
    """Every value in ``data``. pyrtmp leaves an object's end marker (00 00 09) unread, which is
    harmless when the object is a command's last value; it is stepped over here."""
    stream = BitStream(data)
    values = []
    while stream.pos < stream.length:
        values.append(AMF0Deserializer.from_stream(stream))
        if stream.length - stream.pos >= 24 and stream.peek("bytes:3") == b"\x00\x00\x09":
            stream.pos += 24
    return values
