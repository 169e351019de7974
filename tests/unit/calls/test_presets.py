"""Destination presets: chosen from the ingest host, filling and enforcing each platform's rules."""

from __future__ import annotations

import pytest

from bridge.calls.presets import AudioChoice, Defaults, PresetError, VideoChoice, detect_preset, resolve
from bridge.model import DestinationSpec, OutputSpec, VideoSpec
from bridge.rtmp.url import parse_target

DEFAULTS = Defaults(OutputSpec("aac", 16000, 32000, ""), VideoSpec(), frozenset({"logo.png"}))


def destination(
    url: str, preset: str | None = None, audio: AudioChoice | None = None, video: VideoChoice | None = None
) -> DestinationSpec:
    target = parse_target(url, "abcd-efgh-ijkl-mnop-qrst")
    return resolve(target, preset, audio or AudioChoice(), video or VideoChoice(), None, DEFAULTS)


@pytest.mark.parametrize(
    ("host", "preset"),
    [
        ("a.rtmp.youtube.com", "youtube"),
        ("b.rtmps.youtube.com", "youtube"),
        ("live-api-s.facebook.com", "facebook"),
        ("live.twitch.tv", "twitch"),
        ("sea02.contribute.live-video.net", "twitch"),
        ("abcd.entrypoint.cloud.wowza.com", "wowza"),
        ("notyoutube.com", "generic"),
        ("127.0.0.1", "generic"),
    ],
)
def test_preset_is_chosen_from_well_known_ingest_hosts(host: str, preset: str) -> None:
    assert detect_preset(parse_target(f"rtmps://{host}/app", "k")) == preset


def test_youtube_turns_on_the_slate_and_48_khz_aac() -> None:
    spec = destination("rtmp://a.rtmp.youtube.com/live2")
    assert spec.preset == "youtube"
    assert spec.video.mode == "slate" and spec.video.keyframe_seconds == 2.0
    assert (spec.audio.codec, spec.audio.sample_rate, spec.audio.bitrate) == ("aac", 48000, 64000)


def test_facebook_refuses_plain_rtmp_naming_the_url() -> None:
    with pytest.raises(PresetError) as error:
        destination("rtmp://live-api-s.facebook.com:80/rtmp")
    assert error.value.field == "rtmpUrl" and "rtmps://" in str(error.value)
    assert destination("rtmps://live-api-s.facebook.com:443/rtmp").audio.sample_rate == 48000


@pytest.mark.parametrize(
    ("url", "audio", "video", "field"),
    [
        ("rtmps://live-api-s.facebook.com/rtmp", AudioChoice(sample_rate=16000), VideoChoice(), "sampleRate"),
        ("rtmp://a.rtmp.youtube.com/live2", AudioChoice(sample_rate=16000), VideoChoice(), "sampleRate"),
        ("rtmp://a.rtmp.youtube.com/live2", AudioChoice(codec="pcmu"), VideoChoice(), "codec"),
        ("rtmp://a.rtmp.youtube.com/live2", AudioChoice(), VideoChoice(mode="none"), "video.mode"),
        ("rtmp://live.twitch.tv/app", AudioChoice(), VideoChoice(keyframe_seconds=3.0), "video.keyframeSeconds"),
        ("rtmp://a.rtmp.youtube.com/live2", AudioChoice(), VideoChoice(keyframe_seconds=5.0), "video.keyframeSeconds"),
        ("rtmp://cdn.example.com/live", AudioChoice(), VideoChoice(mode="slate", image="nope.png"), "video.image"),
    ],
)
def test_what_the_platform_would_refuse_is_refused_with_the_field(
    url: str, audio: AudioChoice, video: VideoChoice, field: str
) -> None:
    with pytest.raises(PresetError) as error:
        destination(url, audio=audio, video=video)
    assert error.value.field == field


def test_generic_keeps_the_configured_defaults_and_an_explicit_preset_wins() -> None:
    generic = destination("rtmp://cdn.example.com/live")
    assert generic.video.mode == "none" and generic.audio == DEFAULTS.audio
    overridden = destination("rtmp://a.rtmp.youtube.com/live2", preset="generic")
    assert overridden.preset == "generic" and overridden.video.mode == "none"
    slate = destination("rtmp://cdn.example.com/live", video=VideoChoice(mode="slate", image="logo.png", fps=10))
    assert (slate.video.image, slate.video.fps) == ("logo.png", 10)


def test_llnw_hosts_use_llnw_authentication() -> None:
    target = parse_target("rtmp://u:p@x.llnwd.net/app", "s")
    assert resolve(target, None, AudioChoice(), VideoChoice(), None, DEFAULTS).authmod == "llnw"
    assert resolve(target, None, AudioChoice(), VideoChoice(), "adobe", DEFAULTS).authmod == "adobe"


def test_a_destination_video_choice_overrides_the_calls() -> None:
    merged = VideoChoice(fps=5).over(VideoChoice(mode="slate", fps=25, width=640))
    assert (merged.mode, merged.fps, merged.width, merged.height) == ("slate", 5, 640, None)
