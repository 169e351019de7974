"""An ingest call's frames to a worker: written together, and dropped rather than held when the
worker does not read (a real Unix socket pair whose far side stops reading)."""

from __future__ import annotations

import asyncio
import socket

from bridge.channel import protocol as p
from bridge.workers.pool import FEED_BACKLOG_BYTES, FEED_FLUSH_SECONDS, WorkerProcess


async def _connected(worker: WorkerProcess) -> socket.socket:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    _reader, writer = await asyncio.open_connection(sock=ours)
    worker._writer = writer
    theirs.setblocking(False)
    return theirs


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        chunks.append(chunk)


async def test_frames_of_one_loop_iteration_arrive_in_order_after_earlier_messages() -> None:
    worker = WorkerProcess(0)
    theirs = await _connected(worker)
    frames = [p.FeedAudio("c1", 0, n * 160, bytes([n]) * 160) for n in range(5)]
    for frame in frames[:3]:
        assert worker.send_feed(frame)
    worker.send(p.NameTrack(call="c1", index=1, name="outbound"))  # flushes the frames queued before it
    for frame in frames[3:]:
        assert worker.send_feed(frame)
    await asyncio.sleep(FEED_FLUSH_SECONDS * 3)
    data = _read_all(theirs)
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    got = []
    while (body := await p.read_frame(reader)) is not None:
        got.append(p.decode_to_worker(body))
    assert got == [*frames[:3], p.NameTrack(call="c1", index=1, name="outbound"), *frames[3:]]
    theirs.close()


async def test_a_worker_that_stops_reading_costs_dropped_frames_not_memory() -> None:
    worker = WorkerProcess(0)
    theirs = await _connected(worker)
    frame = p.FeedAudio("c1", 0, 0, bytes(160))
    sent = 0
    for n in range(4 * FEED_BACKLOG_BYTES // 160):
        sent += worker.send_feed(frame)
        if n % 1000 == 0:
            await asyncio.sleep(FEED_FLUSH_SECONDS * 2)  # the queued frames go out
    await asyncio.sleep(FEED_FLUSH_SECONDS * 2)
    assert worker.feed_dropped > 0
    assert worker._writer is not None
    assert worker._writer.transport.get_write_buffer_size() <= FEED_BACKLOG_BYTES + len(frame.encode())
    received = len(_read_all(theirs))
    assert received + worker._writer.transport.get_write_buffer_size() == sent * len(frame.encode())
    theirs.close()
