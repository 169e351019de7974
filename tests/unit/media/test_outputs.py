"""A call's destinations: one encoder lane per distinct audio setting, one route per (lane, video)."""

from __future__ import annotations

from bridge.channel.protocol import DestinationStart
from bridge.config import RtmpConfig
from bridge.media.outputs import CallOutputs
from bridge.model import OutputSpec, VideoSpec
from bridge.rtmp.url import parse_target

AAC16, AAC48 = OutputSpec("aac", 16000, 32000, "fast"), OutputSpec("aac", 48000, 64000, "fast")
SLATE, NO_VIDEO = VideoSpec("slate", "", 640, 360, 10, 2.0), VideoSpec()


def destination(stream: str, audio: OutputSpec, video: VideoSpec = NO_VIDEO) -> DestinationStart:
    target = parse_target("rtmp://127.0.0.1:1/live", stream)
    return DestinationStart(
        target=target, label=target.display(), audio=audio, video=video, authmod="adobe", secrets=[]
    )


def outputs(*destinations: DestinationStart) -> CallOutputs:
    return CallOutputs(list(destinations), RtmpConfig(), None, lambda *_: None, lambda *_, **__: None)


async def test_same_settings_share_one_encoder_and_one_muxer() -> None:
    shared = outputs(destination("a", AAC16), destination("b", AAC16))
    assert shared.audio_specs == [AAC16]
    assert [(r.lane, r.destinations) for r in shared.routes] == [(0, [0, 1])]


async def test_each_distinct_audio_setting_is_one_lane_and_video_makes_its_own_route() -> None:
    mixed = outputs(destination("a", AAC16), destination("b", AAC48, SLATE), destination("c", AAC16, SLATE))
    assert mixed.audio_specs == [AAC16, AAC48]
    assert [(r.lane, r.video.mode, r.destinations) for r in mixed.routes] == [
        (0, "none", [0]),
        (1, "slate", [1]),
        (0, "slate", [2]),
    ]
    assert mixed.video_specs == [SLATE]  # one slate GOP to prepare for both routes
    counters = mixed.counters()
    assert len(counters) == 3 and all(c.bytesPublished == 0 for c in counters)
