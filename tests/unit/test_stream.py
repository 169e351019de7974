"""The stream publisher's backlog, without a server: bounded in seconds, oldest dropped."""

from __future__ import annotations

from bridge.config import RtmpConfig
from bridge.media.stream import StreamPublisher, StreamState
from bridge.rtmp.url import parse_target


async def test_backlog_is_bounded_by_seconds_and_drops_the_oldest() -> None:
    changes: list[tuple[StreamState, str]] = []
    stream = StreamPublisher(
        parse_target("rtmp://127.0.0.1:1/live", "s"),
        {},
        RtmpConfig(max_backlog_seconds=1.0),
        lambda state, reason: changes.append((state, reason)),
    )
    for n in range(50):  # 3.2 s of 64 ms AAC frames while no server takes them
        stream.send_audio(n * 64, b"frame%d" % n, now=n * 0.064)
    assert stream.backlog_seconds <= 1.0
    assert stream.dropped_messages == 50 - len(stream._backlog)
    assert stream._backlog[0][1] != b"frame0" and stream._backlog[-1][1] == b"frame49"
    assert stream.state is StreamState.PENDING and changes == []
    await stream.close()
    assert changes == [(StreamState.UNPUBLISHED, "call ended")]


class _StuckConnection:
    """A connection whose socket takes nothing (a stalled server)."""

    writable = False
    bytes_sent = 0
    aborted = False

    def abort(self) -> None:
        self.aborted = True


async def test_watchdog_restarts_a_connection_that_takes_nothing() -> None:
    stream = StreamPublisher(
        parse_target("rtmp://127.0.0.1:1/live", "s"), {}, RtmpConfig(stall_seconds=3.0), lambda *_: None
    )
    stuck = _StuckConnection()
    stream._connection = stuck  # type: ignore[assignment]
    stream._last_write = 10.0
    stream.send_audio(0, b"frame", now=10.0)
    stream.check_progress(12.9)
    assert not stuck.aborted
    stream.check_progress(13.1)
    assert stuck.aborted
    assert str(stream._failures.get_nowait()) == "no progress for 3 s"
