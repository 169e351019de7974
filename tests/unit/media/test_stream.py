"""The stream publisher's backlog, without a server: bounded in seconds, oldest dropped."""

from __future__ import annotations

import asyncio

import pytest

from bridge.channel.protocol import StreamState
from bridge.config import RtmpConfig
from bridge.media.stream import StreamPublisher
from bridge.rtmp.client import HANDSHAKE_SIZE
from bridge.rtmp.flv import AUDIO, VIDEO, FlvTag
from bridge.rtmp.url import parse_target
from tests.support.scripted_rtmp import ScriptedServer


async def test_backlog_is_bounded_by_seconds_and_drops_the_oldest() -> None:
    changes: list[tuple[StreamState, str]] = []
    stream = StreamPublisher(
        parse_target("rtmp://127.0.0.1:1/live", "s"),
        {},
        RtmpConfig(max_backlog_seconds=1.0),
        lambda state, reason: changes.append((state, reason)),
    )
    for n in range(50):  # 3.2 s of 64 ms AAC frames while no server takes them
        stream.send([FlvTag(AUDIO, n * 64, b"frame%d" % n)], now=n * 0.064)
    assert stream.backlog_seconds <= 1.0
    assert stream.dropped_messages == 50 - len(stream._backlog)
    assert stream._backlog[0].body != b"frame0" and stream._backlog[-1].body == b"frame49"
    assert stream.state is StreamState.PENDING and changes == []
    await stream.close()
    assert changes == [(StreamState.UNPUBLISHED, "call ended")]


class _Core:
    unacknowledged: int | None = None
    sent_after_handshake = 0


class _StuckConnection:
    """A connection whose socket takes nothing (a stalled server)."""

    writable = False
    bytes_sent = 0
    aborted = False

    def __init__(self) -> None:
        self.core = _Core()

    def abort(self) -> None:
        self.aborted = True

    def write_one(self, tag: object) -> bool:
        return False  # the socket takes nothing: the general path queues it


class _UnreadConnection(_StuckConnection):
    """A server whose kernel takes every byte but whose application reads nothing: no acknowledgements."""

    writable = True


async def test_watchdog_restarts_a_connection_whose_server_stops_acknowledging() -> None:
    config = RtmpConfig(stall_seconds=3.0, ack_window_bytes=4096)
    stream = StreamPublisher(parse_target("rtmp://127.0.0.1:1/live", "s"), {}, config, lambda *_: None)
    unread = _UnreadConnection()
    stream._connection = unread  # type: ignore[assignment]
    for now, unacknowledged in [(10.0, 4000), (11.0, 8000), (12.0, 8200), (14.0, 9000), (14.9, 12000)]:
        unread.core.unacknowledged = unacknowledged
        stream.check_progress(now)
        assert not unread.aborted, now  # owed since 12.0 (two windows), not yet for 3 s
    unread.core.unacknowledged = 12500
    stream.check_progress(15.1)
    assert unread.aborted
    assert str(stream._failures.get_nowait()) == "the server acknowledged nothing for 3 s (it stopped reading)"


async def test_a_server_that_never_acknowledges_is_judged_by_its_socket_alone() -> None:
    config = RtmpConfig(stall_seconds=3.0, ack_window_bytes=4096)
    stream = StreamPublisher(parse_target("rtmp://127.0.0.1:1/live", "s"), {}, config, lambda *_: None)
    unread = _UnreadConnection()  # unacknowledged stays None: no acknowledgement ever came
    stream._connection = unread  # type: ignore[assignment]
    stream.check_progress(100.0)
    assert not unread.aborted


async def test_watchdog_restarts_a_connection_that_takes_nothing() -> None:
    stream = StreamPublisher(
        parse_target("rtmp://127.0.0.1:1/live", "s"), {}, RtmpConfig(stall_seconds=3.0), lambda *_: None
    )
    stuck = _StuckConnection()
    stream._connection = stuck  # type: ignore[assignment]
    stream._watchdog.connected(10.0)
    stream.send([FlvTag(AUDIO, 0, b"frame")], now=10.0)
    stream.check_progress(12.9)
    assert not stuck.aborted
    stream.check_progress(13.1)
    assert stuck.aborted
    assert str(stream._failures.get_nowait()) == "no progress for 3 s"


async def _scripted_rtmp_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Enough of an RTMP server to accept a publish (handshake, _result x2, onStatus Publish.Start)."""
    server = ScriptedServer()
    writer.write(server.handshake(await reader.readexactly(1 + HANDSHAKE_SIZE)))
    await reader.readexactly(HANDSHAKE_SIZE)  # C2
    while data := await reader.read(65536):
        for command in server.commands_from(data):
            if command[0] == "connect":
                writer.write(server.command("_result", 1.0, None, {"code": "NetConnection.Connect.Success"}))
            elif command[0] == "createStream":
                writer.write(server.command("_result", 4.0, None, 1.0))
            elif command[0] == "publish":
                started = {"level": "status", "code": "NetStream.Publish.Start"}
                writer.write(server.command("onStatus", 0.0, None, started, stream_id=1))


@pytest.mark.parametrize("cancel_first", [False, True])
async def test_close_ends_run_even_when_cancelled_while_publishing(cancel_first: bool) -> None:
    server = await asyncio.start_server(_scripted_rtmp_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    states: list[StreamState] = []
    stream = StreamPublisher(
        parse_target(f"rtmp://127.0.0.1:{port}/live", "s"), {}, RtmpConfig(), lambda state, reason: states.append(state)
    )
    runner = asyncio.get_running_loop().create_task(stream.run())
    for _ in range(100):
        if StreamState.PUBLISHING in states:
            break
        await asyncio.sleep(0.01)
    assert states == [StreamState.PUBLISHING]
    stream.send([FlvTag(AUDIO, 0, b"\xae\x01data")], now=0.0)
    if cancel_first:
        runner.cancel()
    await stream.close()
    await asyncio.wait({runner}, timeout=2.0)
    assert runner.done() and states == [StreamState.PUBLISHING, StreamState.UNPUBLISHED]
    assert stream.messages_sent == 1 and stream.bytes_sent > 0
    server.close()
    await server.wait_closed()


class _RecordingConnection:
    """A connection that takes everything and remembers what it was given."""

    writable = True
    bytes_sent = 0

    def __init__(self) -> None:
        self.written: list[FlvTag] = []

    def write(self, tags: list[FlvTag]) -> None:
        self.written += tags


async def test_after_a_publish_video_starts_on_a_key_frame_after_the_sequence_headers() -> None:
    requests: list[str] = []
    stream = StreamPublisher(
        parse_target("rtmp://127.0.0.1:1/live", "s"),
        {},
        RtmpConfig(),
        lambda *_: None,
        on_published=lambda: requests.append("key frame"),
    )
    headers = [FlvTag(AUDIO, 0, b"asc"), FlvTag(VIDEO, 0, b"avcC", keyframe=True)]
    stream.set_sequence_headers(headers)
    stream.send([FlvTag(VIDEO, 40, b"P1"), FlvTag(AUDIO, 64, b"a1")], now=0.0)  # queued before the publish
    connection = _RecordingConnection()
    stream._on_published(connection)  # type: ignore[arg-type]
    stream.send([FlvTag(VIDEO, 80, b"P2"), FlvTag(VIDEO, 120, b"KEY", keyframe=True), FlvTag(VIDEO, 160, b"P3")], 0.1)
    assert [t.body for t in connection.written] == [b"asc", b"avcC", b"a1", b"KEY", b"P3"]
    assert connection.written[0].timestamp == 40  # headers at the first queued timestamp
    assert requests == ["key frame"] and stream.video_frames_sent == 2
    later = [FlvTag(AUDIO, 0, b"new-asc")]
    stream.set_sequence_headers(later)  # an encoder restart while publishing: sent at once
    assert connection.written[-1].body == b"new-asc"
