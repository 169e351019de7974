"""The daemon <-> media worker message protocol: framing, round trips, refusals."""

from __future__ import annotations

import asyncio
import struct

import pytest

from bridge.media import protocol as p
from bridge.model import OutputSpec
from bridge.rtmp.url import parse_target
from bridge.sip.sdes import SrtpKeys

KEYS = SrtpKeys("AES_CM_128_HMAC_SHA1_80", bytes(range(30)), bytes(range(30, 60)))


def _start() -> p.StartMedia:
    target = parse_target("rtmp://cdn.example:1935/live?token=abc", "s1?key=xyz")
    return p.StartMedia(
        call="c1",
        address=("192.0.2.1", 4000),
        direction="sendrecv",
        srtp=KEYS,
        telephone_event=True,
        target=target,
        send_silence=True,
        output=OutputSpec("aac", 48000, 64000, "fast"),
        secrets=list(target.query_secrets()),
    )


async def _frames(data: bytes) -> list[bytes | None]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while (frame := await p.read_frame(reader)) is not None:
        frames.append(frame)
    return frames


async def test_messages_round_trip_through_the_framing() -> None:
    start = _start()
    stats = p.WorkerStats(
        worker=1, calls={"c1": {"packets": 5}}, loop_lag_ms={"p99": 1.5}, cpu_seconds=2.0, rss_bytes=9
    )
    frames = await _frames(p.encode(start) + p.encode(stats))
    assert p.decode_to_worker(frames[0]) == start
    assert p.decode_from_worker(frames[1]) == stats
    decoded = p.decode_to_worker(frames[0])
    assert isinstance(decoded, p.StartMedia) and decoded.srtp is not None
    assert decoded.srtp == KEYS  # binary keys survive JSON (base64)
    assert decoded.target.stream == "s1?key=xyz"
    assert decoded.output == OutputSpec("aac", 48000, 64000, "fast")
    assert decoded.secrets == ["token=abc", "key=xyz"]


async def test_truncated_frame_is_end_of_stream() -> None:
    data = p.encode(_start())
    assert await _frames(data[:-3]) == []


async def test_oversized_frame_is_refused() -> None:
    with pytest.raises(p.ProtocolError, match="exceeds"):
        await _frames(struct.pack(">I", p.MAX_MESSAGE_BYTES + 1) + b"{}")


def test_bad_messages_are_refused_without_echoing_their_content() -> None:
    with pytest.raises(p.ProtocolError) as error:
        p.decode_to_worker(b'{"type": "start", "call": "c1", "srtp": {"suite": "x", "outbound": "SECRETKEY"}}')
    assert "SECRETKEY" not in str(error.value)
    with pytest.raises(p.ProtocolError):
        p.decode_from_worker(b"not json")
    with pytest.raises(p.ProtocolError):
        p.decode_from_worker(p.encode(_start())[4:])  # a daemon-to-worker message is not valid the other way
