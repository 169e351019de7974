"""The slate: a still picture as an H.264 video track, encoded once per picture and settings.

A slate GOP is one IDR frame followed by P frames that repeat it (``tune=stillimage``, no
B frames, so decoding order is presentation order and the composition offset is 0).
It is encoded with libx264 once per worker for each (picture, size, fps, keyframe
interval) and replayed for every call that uses it with advancing timestamps
(:class:`bridge.media.video_track.SlateTrack`): no call ever encodes video. Replaying is
valid H.264: every GOP starts with an IDR, which resets frame_num and POC (H.264 section
8.2.1), and two IDRs are never consecutive (section 7.4.3, idr_pic_id).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from bridge.media.h264 import (
    NAL_AUD,
    NAL_PPS,
    NAL_SEI,
    NAL_SPS,
    decoder_configuration,
    nal_type,
    parameter_sets,
    split_annexb,
    to_avcc,
)
from bridge.model import VideoSpec
from bridge.rtmp.flv import avc_frame, avc_sequence_header
from bridge.slate_files import picture_path

log = logging.getLogger("bridge.media")
X264_OPTIONS = {"preset": "medium", "tune": "stillimage", "profile": "main", "crf": "20"}
RTP_SLICE_BYTES = 1100  # slices of the RTP slate: each NAL unit fits one RTP packet (RFC 6184 5.6)


@dataclass(frozen=True, slots=True)
class SlateGop:
    """FLV video bodies of one GOP (frame 0 the key frame) and the AVC sequence header."""

    sequence_header: bytes
    frames: tuple[bytes, ...]
    fps: int
    units: tuple[tuple[bytes, ...], ...] = ()  # the same frames as NAL units (SPS/PPS in front of the IDR)


def gop_length(spec: VideoSpec) -> int:
    """Frames per GOP; never 1, so that two IDR frames are never consecutive."""
    return max(2, round(spec.fps * spec.keyframe_seconds))


def load_picture(path: Path, width: int, height: int) -> av.VideoFrame:
    """The picture scaled to fit ``width`` x ``height`` (aspect kept, black bars), as yuv420p."""
    with av.open(str(path)) as container:
        source = next(container.decode(video=0))
    scale = min(width / source.width, height / source.height)
    fitted_w, fitted_h = max(2, int(source.width * scale) // 2 * 2), max(2, int(source.height * scale) // 2 * 2)
    pixels = source.reformat(fitted_w, fitted_h, format="rgb24").to_ndarray()
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - fitted_h) // 2, (width - fitted_w) // 2
    canvas[top : top + fitted_h, left : left + fitted_w] = pixels
    return av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")


def encode_slate(path: Path, spec: VideoSpec) -> SlateGop:
    """Encode the picture into one GOP (blocking: run it in a thread)."""
    picture = load_picture(path, spec.width, spec.height)
    frames = gop_length(spec)
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = spec.width, spec.height, "yuv420p"
    codec.time_base = Fraction(1, spec.fps)
    codec.framerate = Fraction(spec.fps, 1)
    params = f"keyint={frames}:min-keyint={frames}:scenecut=0:bframes=0:ref=1:repeat-headers=1"
    options = {**X264_OPTIONS, "x264-params": params}
    if spec.rtp:  # any SIP video endpoint decodes it (42e0xx), in packetization-mode 0 too
        options.update(profile="baseline", **{"x264-params": f"{params}:slice-max-size={RTP_SLICE_BYTES}"})
    codec.options = options
    codec.open()
    packets = []
    for index in range(frames):
        picture.pts = index
        packets += [bytes(p) for p in codec.encode(picture)]
    packets += [bytes(p) for p in codec.encode(None)]
    if len(packets) != frames:
        raise RuntimeError(f"libx264 returned {len(packets)} packets for {frames} frames")
    return _gop_from_annexb(packets, spec.fps)


def _gop_from_annexb(packets: list[bytes], fps: int) -> SlateGop:
    """AVCC bodies; SPS/PPS kept in band in the key frame, SEI and AUD dropped."""
    first = split_annexb(packets[0])
    sps, pps = parameter_sets(first)
    bodies, units = [], []
    for index, packet in enumerate(packets):
        keep = [nal for nal in split_annexb(packet) if nal_type(nal) not in (NAL_SEI, NAL_AUD)]
        if index:
            keep = [nal for nal in keep if nal_type(nal) not in (NAL_SPS, NAL_PPS)]
        bodies.append(avc_frame(to_avcc(keep), keyframe=index == 0))
        units.append(tuple(keep))
    return SlateGop(avc_sequence_header(decoder_configuration(sps, pps)), tuple(bodies), fps, tuple(units))


class SlateCache:
    """One worker's slate GOPs by picture and settings; concurrent first uses share one encode."""

    def __init__(self) -> None:
        self._gops: dict[tuple[str, VideoSpec], asyncio.Future[SlateGop]] = {}

    async def get(self, directory: str, spec: VideoSpec) -> SlateGop:
        path = picture_path(directory, spec.image)
        key = (str(path), spec)
        future = self._gops.get(key)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(encode_slate, path, spec))
            self._gops[key] = future
            future.add_done_callback(lambda done: self._forget_failed(key, done))
        return await asyncio.shield(future)

    def _forget_failed(self, key: tuple[str, VideoSpec], future: asyncio.Future[SlateGop]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._gops.pop(key, None)  # a picture fixed later is encoded again
