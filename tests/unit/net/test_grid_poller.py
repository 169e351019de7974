"""The grid poller over real sockets: one poll serves every ready connection, ends are told once."""

from __future__ import annotations

import asyncio
import socket

from bridge.net.grid_poller import POLL_SECONDS, READ_BYTES, GridPoller


class Recorder:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.ends = 0

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data.append(data)
        return False, b""

    def feed_eof(self) -> None:
        self.ends += 1


async def test_every_ready_connection_is_read_on_the_grid_and_an_end_told_once() -> None:
    poller = GridPoller()
    pairs = [socket.socketpair() for _ in range(20)]
    recorders = [Recorder() for _ in pairs]
    polled = [poller.add(ours.fileno(), recorder) for (ours, _), recorder in zip(pairs, recorders, strict=True)]
    try:
        for index, (_, theirs) in enumerate(pairs):
            theirs.send(b"message %d" % index)
        await asyncio.sleep(POLL_SECONDS * 3)
        assert [b"".join(r.data) for r in recorders] == [b"message %d" % i for i in range(20)]
        pairs[3][1].close()  # the far end goes away
        await asyncio.sleep(POLL_SECONDS * 5)
        assert [r.ends for r in recorders] == [1 if i == 3 else 0 for i in range(20)]
        await asyncio.to_thread(pairs[5][1].sendall, b"x" * (READ_BYTES * 6))  # more than a poll reads
        await asyncio.sleep(POLL_SECONDS * 5)
        assert sum(len(d) for d in recorders[5].data) == len(b"message 5") + READ_BYTES * 6
    finally:
        for sock in polled:
            assert sock is not None
            poller.remove(sock)
        poller.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


async def test_a_removed_connection_is_no_longer_read_and_its_duplicate_is_closed() -> None:
    poller = GridPoller()
    ours, theirs = socket.socketpair()
    recorder = Recorder()
    polled = poller.add(ours.fileno(), recorder)
    assert polled is not None
    poller.remove(polled)
    assert polled.fileno() == -1
    theirs.send(b"late")
    await asyncio.sleep(POLL_SECONDS * 3)
    assert recorder.data == [] and ours.recv(10) == b"late"  # still there for whoever owns the original
    poller.close()
    ours.close()
    theirs.close()
