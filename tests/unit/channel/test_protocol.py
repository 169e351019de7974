"""The daemon <-> media worker message protocol: framing, round trips, refusals."""

from __future__ import annotations

import asyncio
import struct

import pytest

from bridge.channel import protocol as p
from bridge.channel.counters import DestinationCounters, MediaCounters, VideoCounters
from bridge.model import OutputSpec, VideoSpec
from bridge.rtmp.url import parse_target
from rtp.peer import Peer, SrtpKeys

KEYS = SrtpKeys("AES_CM_128_HMAC_SHA1_80", bytes(range(30)), bytes(range(30, 60)))


def _start() -> p.StartMedia:
    target = parse_target("rtmp://pub:pw-1@cdn.example:1935/live?token=abc", "s1?key=xyz")
    destination = p.DestinationStart(
        target=target,
        label=target.display(),
        audio=OutputSpec("aac", 48000, 64000, "fast"),
        video=VideoSpec("slate", "", 640, 360, 10, 2.0),
        authmod="adobe",
        secrets=list(target.secrets()),
    )
    return p.StartMedia(
        call="c1",
        peer=Peer(("192.0.2.1", 4000), srtp=KEYS, telephone_event=True),
        send_silence=True,
        destinations=[destination, destination],
        secrets=list(target.secrets()),
    )


async def _frames(data: bytes) -> list[bytes | None]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while (frame := await p.read_frame(reader)) is not None:
        frames.append(frame)
    return frames


COUNTERS = MediaCounters(
    packets=5,
    jitterMs=1.25,
    video=VideoCounters(videoPackets=7, videoArrivalOffsetMs=None),
    destinations=[DestinationCounters(bytesPublished=3)],
)


async def test_messages_round_trip_through_the_framing() -> None:
    start = _start()
    stats = p.WorkerStats(worker=1, calls={"c1": COUNTERS}, loop_lag_ms={"p99": 1.5}, cpu_seconds=2.0, rss_bytes=9)
    frames = await _frames(p.encode(start) + p.encode(stats))
    assert p.decode_to_worker(frames[0]) == start
    assert p.decode_from_worker(frames[1]) == stats
    decoded = p.decode_to_worker(frames[0])
    assert isinstance(decoded, p.StartMedia) and decoded.peer.srtp is not None
    assert decoded.peer.srtp == KEYS  # binary keys survive JSON (base64)
    first = decoded.destinations[0]
    assert first.target.stream == "s1?key=xyz" and (first.target.username, first.target.password) == ("pub", "pw-1")
    assert first.audio == OutputSpec("aac", 48000, 64000, "fast") and first.video.fps == 10
    assert decoded.secrets == ["token=abc", "key=xyz", "pub", "pw-1", "s1"]
    assert len(decoded.destinations) == 2
    assert p.decode_from_worker(
        p.encode(p.MediaEvent(call="c1", event=p.DtmfHeard(digit="5", duration_ms=80)))[4:]
    ) == (p.MediaEvent(call="c1", event=p.DtmfHeard(digit="5", duration_ms=80)))


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


def test_feed_frames_are_binary_with_hand_checked_bytes() -> None:
    frame = p.FeedAudio("c1", 2, 0x01020304, b"\xff\x7f")
    # length 12 | tag 0 | call id length 2 | "c1" | track 2 | timestamp 0x01020304 | payload
    assert frame.encode() == bytes.fromhex("0000000c 00 0002 6331 02 01020304 ff7f")
    assert p.decode_to_worker(frame.encode()[4:]) == frame
    wrapped = p.FeedAudio("c1", 0, 0x1_0000_0005, b"")
    assert p.decode_to_worker(wrapped.encode()[4:]) == p.FeedAudio("c1", 0, 5, b"")  # 32-bit timestamps


async def test_feed_frames_and_messages_share_one_framing_in_order() -> None:
    stop = p.StopMedia(call="c1")
    data = p.FeedAudio("c1", 0, 160, b"\x00" * 160).encode() + p.encode(stop)
    frames = await _frames(data)
    assert isinstance(p.decode_to_worker(frames[0]), p.FeedAudio) and p.decode_to_worker(frames[1]) == stop


def test_truncated_feed_frames_are_refused() -> None:
    body = p.FeedAudio("call-7", 1, 9, b"x").encode()[4:]
    for cut in (1, 2, 5, 9):
        with pytest.raises(p.ProtocolError, match="shorter"):
            p.decode_to_worker(body[:cut])
