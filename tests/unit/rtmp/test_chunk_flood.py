"""A hostile RTMP server cannot exhaust a worker's memory with unfinished messages on many chunk
streams (review finding 9). A scripted server does the handshake, then opens chunk stream after
chunk stream, each with the first 128-byte chunk of a 4 MiB message, and never finishes one; the
publisher must hang up (the server sees EOF) instead of holding ever more partial messages."""

from __future__ import annotations

import asyncio
import struct

from bridge.rtmp.chunks import MAX_CHUNK_STREAMS, ChunkError, ChunkReader
from bridge.rtmp.publisher import RtmpPublisher, RtmpPublishError
from bridge.rtmp.url import parse_target

HANDSHAKE = 1536
MESSAGE = 4 * 1024 * 1024


def _first_chunk(csid: int) -> bytes:
    """A type-0 header on chunk stream ``csid`` (3-byte basic header, RFC 5.3.1.1) and 128 bytes."""
    basic = bytes([1]) + struct.pack("<H", csid - 64)
    header = (0).to_bytes(3, "big") + MESSAGE.to_bytes(3, "big") + bytes([9]) + struct.pack("<I", 1)
    return basic + header + b"\0" * 128


async def _hostile_server(sent: list[int], ended: asyncio.Event) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1 + HANDSHAKE)  # C0 C1
        writer.write(b"\x03" + b"\1" * HANDSHAKE + b"\2" * HANDSHAKE)  # S0 S1 S2
        try:
            for csid in range(64, 64 + 20_000):
                writer.write(_first_chunk(csid))
                sent.append(csid)
                if csid % 64 == 0:
                    await writer.drain()
            while await reader.read(65536):  # C2, connect, ...: until the client hangs up
                pass
        except (ConnectionError, OSError):
            pass
        ended.set()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def test_the_publisher_hangs_up_on_a_chunk_stream_flood() -> None:
    sent: list[int] = []
    ended = asyncio.Event()
    server = await _hostile_server(sent, ended)
    port = server.sockets[0].getsockname()[1]
    failures: list[RtmpPublishError] = []

    def failed(error: RtmpPublishError) -> None:  # what the stream owner does: drop the connection
        failures.append(error)
        publisher.abort()

    publisher = RtmpPublisher(parse_target(f"rtmp://127.0.0.1:{port}/live", "s"), failed)
    async with server:
        run = asyncio.create_task(publisher.run())
        try:
            async with asyncio.timeout(10):
                await ended.wait()  # the server saw the connection end: the publisher hung up
        finally:
            run.cancel()
    assert failures and "chunk streams" in str(failures[0]), failures


def test_reader_refuses_the_65th_chunk_stream_and_unbounded_partial_bytes() -> None:
    reader = ChunkReader()
    for csid in range(64, 64 + MAX_CHUNK_STREAMS):
        reader.feed(_first_chunk(csid))
        assert reader.next_message() is None
    reader.feed(_first_chunk(64 + MAX_CHUNK_STREAMS))
    try:
        reader.next_message()
    except ChunkError as exc:
        assert "chunk streams" in str(exc)
    else:
        raise AssertionError("a 65th chunk stream with a partial message was accepted")
