"""Adopted ingest WebSockets in a worker, over real sockets: the descriptor passed as the daemon
passes it, the client's frames built by hand (RFC 6455), what comes back read off the socket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.channel import protocol as p
from bridge.media import stream_socket
from bridge.media.stream_socket import POLL_SECONDS, AdoptedStreams
from bridge.wsmedia.core import CoreState
from tests.support.platform_messages import twilio_media
from tests.support.websocket_frames import client_frame

OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


class FakeMedia:
    """The call's playout, as far as an adopted stream sees it."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int, bytes]] = []

    def push_feed(self, track: int, timestamp: int, payload: bytes, now: float) -> None:
        self.frames.append((track, timestamp, payload))


class Worker:
    """What the adopted streams send to the daemon, and the descriptor channel the daemon writes."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.daemon_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        worker_end.setblocking(False)
        self.streams = AdoptedStreams(worker_end, self.sent.append)
        self.worker_end = worker_end

    def reports(self) -> list[Any]:
        return [message.event for message in self.sent if isinstance(message, p.MediaEvent)]

    def hand_over(self, call: str, connection: socket.socket, media: FakeMedia | None, token: int = 1) -> None:
        p.send_socket(self.daemon_end, token, connection.fileno())
        message = p.AdoptStream(
            call=call, token=token, protocol="twilio", core=CoreState(("inbound",)), tracks=[], unparsed=b""
        )
        self.streams.adopt(message, media)  # type: ignore[arg-type]  # the playout's one method

    def close(self) -> None:
        self.streams.close_all()
        self.daemon_end.close()
        self.worker_end.close()


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    found = Worker()
    yield found
    found.close()


def client_and_ours() -> tuple[socket.socket, socket.socket]:
    client, ours = socket.socketpair()
    client.settimeout(2.0)
    return client, ours


async def settle(polls: int = 3) -> None:
    await asyncio.sleep(POLL_SECONDS * polls)


async def test_media_is_played_and_pings_answered_by_the_worker(worker: Worker) -> None:
    client, ours = client_and_ours()
    media = FakeMedia()
    worker.hand_over("call-1", ours, media)
    ours.close()  # the daemon's copy may go: the worker holds its own
    client.sendall(client_frame(OP_TEXT, twilio_media(0, 0).encode()) + client_frame(OP_PING, b"are you there"))
    client.sendall(client_frame(OP_TEXT, twilio_media(1, 20, "outbound").encode()))
    await settle()
    assert media.frames == [(0, 0, b"\xff" * 160), (1, 160, b"\xff" * 160)]
    assert client.recv(100) == bytes((0x8A, 13)) + b"are you there"  # RFC 6455 5.5.3: the pong
    assert worker.reports() == [p.StreamTrack(index=0, name="inbound"), p.StreamTrack(index=1, name="outbound")]
    digit = {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}
    client.sendall(client_frame(OP_TEXT, json.dumps(digit).encode()))
    await settle()
    assert worker.reports()[-1] == p.StreamDigit(digit="5", track="inbound_track")
    client.close()


async def test_the_senders_stop_closes_the_connection_from_the_worker(worker: Worker) -> None:
    client, ours = client_and_ours()
    worker.hand_over("call-2", ours, FakeMedia())
    ours.close()
    client.sendall(client_frame(OP_TEXT, b'{"event":"stop"}'))
    await settle()
    reason = b"the stream was stopped (Twilio stop message)"
    assert client.recv(200) == bytes((0x88, 2 + len(reason))) + (1000).to_bytes(2, "big") + reason
    assert worker.reports() == [p.StreamClosed(code=1000, reason=reason.decode(), finished=True)]
    assert len(worker.streams) == 1  # waiting for the sender's close frame
    client.sendall(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
    await settle()
    assert len(worker.streams) == 0 and client.recv(10) == b""  # closed: the worker held the last copy
    client.close()


async def test_a_daemon_close_is_sent_and_the_handshake_bounded(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_socket, "CLOSE_TIMEOUT", 0.1)
    client, ours = client_and_ours()
    worker.hand_over("call-3", ours, FakeMedia())
    ours.close()
    worker.streams.close("call-3", 1000, "terminated by API request")
    reason = b"terminated by API request"
    assert client.recv(200) == bytes((0x88, 2 + len(reason))) + (1000).to_bytes(2, "big") + reason
    assert worker.reports() == [p.StreamClosed(code=1000, reason=reason.decode(), finished=True)]
    await asyncio.sleep(0.3)  # the sender never answers
    assert len(worker.streams) == 0 and client.recv(10) == b""
    client.close()


async def test_a_sender_that_never_reads_is_dropped(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_socket, "WRITE_BACKLOG_BYTES", 16 * 1024)
    client, ours = client_and_ours()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    worker.hand_over("call-4", ours, FakeMedia())
    ours.close()
    pings = client_frame(OP_PING, b"p" * 125) * 40
    for _ in range(20):
        client.sendall(pings)
        await settle(1)
        if worker.reports():
            break
    (closed,) = worker.reports()
    assert closed.code == 1008 and "does not read" in closed.reason and not closed.finished
    assert len(worker.streams) == 0
    client.close()


async def test_a_socket_that_did_not_arrive_or_a_call_not_here_is_reported(worker: Worker) -> None:
    client, ours = client_and_ours()
    message = p.AdoptStream(call="x", token=9, protocol="twilio", core=CoreState(()), tracks=[], unparsed=b"")
    worker.streams.adopt(message, FakeMedia())  # type: ignore[arg-type]
    worker.hand_over("y", ours, None, token=10)
    ours.close()
    assert [(r.code, r.finished) for r in worker.reports()] == [(1011, False), (1011, False)]
    assert len(worker.streams) == 0
    assert client.recv(10) == b""  # the passed socket was closed, not kept
    client.close()
