"""Destination presets: the published ingest rules of the platforms our users stream to.

A preset is chosen from the ingest host (``a.rtmp.youtube.com`` -> ``youtube``) unless
the request names one. It fills what the request leaves open (a slate video track,
2 s keyframes, 48 kHz AAC) and refuses what the platform would refuse, naming the field,
so a call never starts towards an ingest that will drop it. The table in
docs/destinations.md lists each rule with the platform page it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from bridge.model import DestinationSpec, OutputSpec, VideoSpec
from bridge.rtmp.url import RtmpTarget

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PresetRules:
    name: str
    hosts: tuple[str, ...] = ()  # ingest host suffixes that select this preset
    schemes: tuple[str, ...] = ("rtmp", "rtmps")
    video_required: bool = False
    max_keyframe_seconds: float | None = None
    sample_rates: tuple[int, ...] = ()  # () = any
    codecs: tuple[str, ...] = ("aac", "pcmu")
    default_sample_rate: int | None = None  # None = [media] aac_sample_rate
    default_bitrate: int | None = None


RULES = {
    rules.name: rules
    for rules in (
        PresetRules(
            "youtube",
            hosts=("youtube.com",),
            video_required=True,
            max_keyframe_seconds=4.0,
            sample_rates=(44100, 48000),
            codecs=("aac",),
            default_sample_rate=48000,
            default_bitrate=64000,
        ),
        PresetRules(
            "facebook",
            hosts=("facebook.com",),
            schemes=("rtmps",),
            video_required=True,
            max_keyframe_seconds=4.0,
            sample_rates=(44100, 48000),
            codecs=("aac",),
            default_sample_rate=48000,
            default_bitrate=64000,
        ),
        PresetRules(
            "twitch",
            hosts=("twitch.tv", "live-video.net"),
            video_required=True,
            max_keyframe_seconds=2.0,
            sample_rates=(44100, 48000),
            codecs=("aac",),
            default_sample_rate=48000,
            default_bitrate=64000,
        ),
        PresetRules("wowza", hosts=("wowza.com",)),
        PresetRules("generic"),
    )
}
LLNW_HOSTS = ("llnwd.net", "llnw.net")  # Limelight ingest: authmod=llnw


class PresetError(ValueError):
    """A destination the platform would refuse; ``field`` is relative (``rtmpUrl``, ``video.mode``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class AudioChoice:
    """What a request asked of the audio; None = not asked (the preset, then [media], decides)."""

    codec: str | None = None
    sample_rate: int | None = None
    bitrate: int | None = None
    aac_coder: str | None = None


@dataclass(frozen=True, slots=True)
class VideoChoice:
    mode: str | None = None
    image: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    keyframe_seconds: float | None = None

    def over(self, base: VideoChoice) -> VideoChoice:
        """This choice where it says something, ``base`` elsewhere (a destination over the call)."""
        return VideoChoice(
            _first(self.mode, base.mode),
            _first(self.image, base.image),
            _first(self.width, base.width),
            _first(self.height, base.height),
            _first(self.fps, base.fps),
            _first(self.keyframe_seconds, base.keyframe_seconds),
        )


def _first(mine: _T | None, theirs: _T | None) -> _T | None:
    return mine if mine is not None else theirs


@dataclass(frozen=True, slots=True)
class Defaults:
    """The configured defaults ([media] and [video])."""

    audio: OutputSpec = field(default_factory=OutputSpec)
    video: VideoSpec = field(default_factory=VideoSpec)
    images: frozenset[str] = field(default_factory=frozenset)  # pictures in video.slate_directory


def _host_matches(host: str, suffixes: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == suffix or host.endswith("." + suffix) for suffix in suffixes)


def detect_preset(target: RtmpTarget) -> str:
    """The preset of a well-known ingest host, else ``generic``."""
    return next((name for name, rules in RULES.items() if _host_matches(target.host, rules.hosts)), "generic")


def resolve(
    target: RtmpTarget,
    preset: str | None,
    audio: AudioChoice,
    video: VideoChoice,
    authmod: str | None,
    defaults: Defaults,
) -> DestinationSpec:
    """Apply a preset to one destination; raise :class:`PresetError` for what the platform refuses."""
    name = preset or detect_preset(target)
    rules = RULES[name]
    if target.scheme not in rules.schemes:
        allowed = " or ".join(f"{scheme}://" for scheme in rules.schemes)
        raise PresetError("rtmpUrl", f"{name} accepts only {allowed} ingest URLs (preset {name})")
    chosen_authmod = authmod or ("llnw" if _host_matches(target.host, LLNW_HOSTS) else "adobe")
    return DestinationSpec(target, name, _audio(rules, audio, defaults), _video(rules, video, defaults), chosen_authmod)


def _audio(rules: PresetRules, choice: AudioChoice, defaults: Defaults) -> OutputSpec:
    base = defaults.audio
    codec = choice.codec or (base.codec if base.codec in rules.codecs else rules.codecs[0])
    if codec not in rules.codecs:
        raise PresetError("codec", f'preset {rules.name} needs AAC audio (codec "aac"), not {codec!r}')
    rate = choice.sample_rate or rules.default_sample_rate or base.sample_rate
    if codec == "aac" and rules.sample_rates and rate not in rules.sample_rates:
        allowed = " or ".join(str(r) for r in rules.sample_rates)
        raise PresetError("sampleRate", f"preset {rules.name} needs an AAC sample rate of {allowed} Hz, not {rate}")
    bitrate = choice.bitrate or rules.default_bitrate or base.bitrate
    coder = base.aac_coder if choice.aac_coder is None else choice.aac_coder
    return OutputSpec(codec, rate if codec == "aac" else 8000, bitrate, coder)


def _video(rules: PresetRules, choice: VideoChoice, defaults: Defaults) -> VideoSpec:
    base = defaults.video
    mode = choice.mode or ("slate" if rules.video_required else base.mode)
    if rules.video_required and mode == "none":
        raise PresetError("video.mode", f'preset {rules.name} needs a video track: use mode "slate"')
    spec = VideoSpec(
        mode,
        base.image if choice.image is None else choice.image,
        choice.width or base.width,
        choice.height or base.height,
        choice.fps or base.fps,
        choice.keyframe_seconds or base.keyframe_seconds,
    )
    limit = rules.max_keyframe_seconds
    if spec.enabled and limit is not None and spec.keyframe_seconds > limit:
        raise PresetError("video.keyframeSeconds", f"preset {rules.name} needs a keyframe at least every {limit:g} s")
    if spec.enabled and spec.image and spec.image not in defaults.images:
        raise PresetError(
            "video.image", f"no picture {spec.image!r} in video.slate_directory; omit image for the built-in card"
        )
    return spec if spec.enabled else replace(VideoSpec(), mode="none")
