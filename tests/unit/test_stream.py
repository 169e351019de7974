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
