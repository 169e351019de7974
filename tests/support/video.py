"""What a player receives of an audio+video stream: demux with PyAV, time packets, decode frames."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt


@dataclass
class PulledStream:
    video_codec: str = ""
    audio_codec: str = ""
    audio_rate: int = 0
    width: int = 0
    height: int = 0
    video: list[tuple[float, float, bool]] = field(default_factory=list)  # (pts s, arrival s, key frame)
    audio: list[tuple[float, float]] = field(default_factory=list)  # (pts s, arrival s)
    first_video_decoded: bool = False
    frames: list[npt.NDArray[np.uint8]] = field(default_factory=list)  # decoded RGB frames, a few
    audio_samples: list[npt.NDArray[np.float32]] = field(default_factory=list)

    @property
    def keyframe_times(self) -> list[float]:
        return [pts for pts, _, key in self.video if key]

    @property
    def frame_interval(self) -> float:
        return float(np.median(np.diff([pts for pts, _, _ in self.video])))

    def rate_against_wall(self, track: str, skip: float = 2.0) -> float:
        """Media seconds per wall second over the pull, after ``skip`` s (the start may come in a burst)."""
        points = [(pts, arrival) for pts, arrival, *_ in (self.video if track == "video" else self.audio)]
        start = points[0][1] + skip
        kept = [p for p in points if p[1] >= start]
        return (kept[-1][0] - kept[0][0]) / (kept[-1][1] - kept[0][1])

    def tone(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self.audio_samples) if self.audio_samples else np.zeros(0, np.float32)


def pull_stream(url: str, seconds: float, keep_frames: int = 3, open_timeout: float = 15.0) -> PulledStream:
    """Read ``seconds`` of an RTMP (or FLV) stream's packets, decoding audio and the first frames."""
    container = av.open(url, options={"rw_timeout": str(int(open_timeout * 1e6))}, timeout=open_timeout)
    pulled = PulledStream()
    try:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is not None:
            pulled.video_codec, pulled.width, pulled.height = video.codec_context.name, video.width, video.height
        if audio is not None:
            pulled.audio_codec, pulled.audio_rate = audio.codec_context.name, audio.codec_context.sample_rate
        started = time.monotonic()
        for packet in container.demux(*(s for s in (video, audio) if s is not None)):
            if packet.pts is None or packet.time_base is None:
                continue
            arrival, pts = time.monotonic() - started, float(packet.pts * packet.time_base)
            if packet.stream.type == "video":
                _video_packet(pulled, packet, pts, arrival, keep_frames)
            else:
                pulled.audio.append((pts, arrival))
                pulled.audio_samples += [f.to_ndarray().astype(np.float32).mean(axis=0) for f in packet.decode()]
            if arrival > seconds:
                break
    finally:
        container.close()
    return pulled


def _video_packet(pulled: PulledStream, packet: av.Packet, pts: float, arrival: float, keep: int) -> None:
    first = not pulled.video
    pulled.video.append((pts, arrival, bool(packet.is_keyframe)))
    if len(pulled.frames) >= keep and not first:
        return
    decoded = packet.decode()
    if first:
        pulled.first_video_decoded = bool(decoded)
    pulled.frames += [frame.to_ndarray(format="rgb24") for frame in decoded][: max(0, keep - len(pulled.frames))]


def picture_difference(frame: npt.NDArray[np.uint8], picture_path: str) -> float:
    """Mean absolute difference (0-255) between a decoded frame and the source picture scaled to it."""
    with av.open(picture_path) as source:
        picture = next(source.decode(video=0))
    height, width = frame.shape[:2]
    expected = picture.reformat(width, height, format="rgb24").to_ndarray().astype(np.int16)
    return float(np.abs(frame.astype(np.int16) - expected).mean())
