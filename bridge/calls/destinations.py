"""The daemon's view of a call's destinations: masked target, rules, stream state and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.channel.protocol import DestinationStart, StreamState
from bridge.model import DestinationSpec, utc_now
from bridge.ops.masking import mask


@dataclass
class DestinationView:
    index: int
    spec: DestinationSpec
    label: str  # the masked form (stream name in full only for an app that reveals names)
    state: StreamState = StreamState.PENDING
    history: list[dict[str, Any]] = field(default_factory=list)

    def changed(self, state: StreamState, reason: str) -> dict[str, Any]:
        """Record a state change; returns the history entry."""
        self.state = state
        entry = {"state": state.value, "reason": reason, "at": utc_now().isoformat(), "destination": self.index}
        self.history.append(entry)
        return entry

    def start_message(self, reveal: bool) -> DestinationStart:
        spec = self.spec
        return DestinationStart(
            target=spec.target,
            label=self.label,
            audio=spec.audio,
            video=spec.video,
            authmod=spec.authmod,
            secrets=list(spec.target.secrets(reveal)),
        )

    def to_json(self, counters: dict[str, Any]) -> dict[str, Any]:
        audio, video = self.spec.audio, self.spec.video
        return {
            "index": self.index,
            "rtmpTarget": self.label,
            "preset": self.spec.preset,
            "audio": f"{audio.codec} {audio.sample_rate} Hz"
            + (f" {audio.bitrate // 1000} kbit/s" if audio.codec == "aac" else ""),
            "video": _describe_video(video.mode, video.width, video.height, video.fps, video.keyframe_seconds),
            "publishAuth": self.spec.authmod if self.spec.target.username else "",
            "streamState": self.state.value,
            "streamHistory": self.history,
            "counters": counters,
        }


def _describe_audio(codec: str, rate: int, bitrate: int) -> str:
    return "pcmu 8000 Hz" if codec == "pcmu" else f"aac {rate} Hz {bitrate // 1000} kbit/s"


def _describe_video(mode: str, width: int, height: int, fps: int, keyframe: float) -> str:
    return "none" if mode == "none" else f"slate {width}x{height} {fps} fps, key frame every {keyframe:g} s"


def views_for(destinations: tuple[DestinationSpec, ...], reveal: bool) -> list[DestinationView]:
    return [DestinationView(i, spec, spec.target.display(reveal)) for i, spec in enumerate(destinations)]


def combined_state(views: list[DestinationView]) -> StreamState:
    """One state for the call: publishing if any destination is, failed only if all have."""
    states = {view.state for view in views}
    for state in (StreamState.PUBLISHING, StreamState.RECONNECTING, StreamState.PENDING):
        if state in states:
            return state
    return StreamState.FAILED if states == {StreamState.FAILED} else StreamState.UNPUBLISHED


def mask_dtmf(entry: dict[str, Any]) -> dict[str, Any]:
    """A timeline entry with its DTMF digits masked (log.mask_dtmf: logs and the stored history)."""
    if entry.get("event") not in ("dtmf", "dtmf-sent"):
        return entry
    return {key: mask(str(value)) if key in ("digit", "digits") else value for key, value in entry.items()}
