"""The slate GOP: encoded once, replayed frame by frame; checked with FFmpeg's own H.264 decoder."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from bridge.media import slate
from bridge.media.slate import SlateCache, encode_slate, load_picture
from bridge.model import VideoSpec
from bridge.slate_files import BUILT_IN_CARD

SPEC = VideoSpec("slate", "", 320, 180, 10, 1.0)


@pytest.fixture(scope="module")
def gop() -> slate.SlateGop:
    return encode_slate(BUILT_IN_CARD, SPEC)


def test_one_key_frame_then_inter_frames_of_one_gop(gop: slate.SlateGop) -> None:
    assert len(gop.frames) == 10  # 10 fps x 1 s
    assert gop.frames[0][:5] == bytes([0x17, 0x01, 0, 0, 0])  # key frame, NAL units, composition time 0
    assert all(frame[:5] == bytes([0x27, 0x01, 0, 0, 0]) for frame in gop.frames[1:])
    assert gop.sequence_header[:6] == bytes([0x17, 0x00, 0, 0, 0, 1])  # AVC sequence header, version 1
    assert gop.sequence_header[6] == 77  # Main profile
    assert sum(map(len, gop.frames[1:])) < len(gop.frames[0])  # the repeats cost almost nothing


def test_replayed_gop_decodes_to_the_picture(gop: slate.SlateGop) -> None:
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = gop.sequence_header[5:]  # the AVCDecoderConfigurationRecord, read by FFmpeg
    frames = []
    for frame_body in list(gop.frames) * 3:
        frames += decoder.decode(av.Packet(frame_body[5:]))
    frames += decoder.decode(None)
    assert len(frames) == 30
    source = load_picture(BUILT_IN_CARD, 320, 180).to_ndarray(format="rgb24").astype(np.int16)
    for frame in (frames[0], frames[15], frames[-1]):
        assert (frame.width, frame.height) == (320, 180)
        difference = np.abs(frame.to_ndarray(format="rgb24").astype(np.int16) - source).mean()
        assert difference < 3.0, difference


def test_a_gop_is_never_a_single_frame() -> None:
    assert slate.gop_length(VideoSpec("slate", fps=1, keyframe_seconds=0.5)) == 2


async def test_concurrent_first_uses_share_one_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counted(path: object, spec: VideoSpec) -> str:
        calls.append(spec)
        return "gop"

    monkeypatch.setattr(slate, "encode_slate", counted)
    cache = SlateCache()
    results = await asyncio.gather(*(cache.get("", SPEC) for _ in range(5)))
    assert results == ["gop"] * 5 and len(calls) == 1
    await cache.get("", VideoSpec("slate", "", 640, 360))
    assert len(calls) == 2
