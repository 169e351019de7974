"""Picture size from an SPS, checked against the size FFmpeg's libx264 was asked to encode.

The truth here is the encoder's input size (and FFmpeg's own decoder reading the stream back),
not our parser: sizes that are not multiples of 16 exercise frame cropping, the High profile
exercises its chroma and scaling-matrix fields.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from bridge.media.h264 import split_annexb
from rtp.h264_sps import SpsError, picture_size


def _sps(width: int, height: int, profile: str) -> bytes:
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, 25), Fraction(25)
    codec.options = {"preset": "ultrafast", "profile": profile}
    frame = av.VideoFrame.from_ndarray(np.zeros((height * 3 // 2, width), np.uint8), format="yuv420p")
    frame.pts = 0
    packets = [bytes(p) for p in codec.encode(frame)] + [bytes(p) for p in codec.encode(None)]
    return next(nal for nal in split_annexb(b"".join(packets)) if nal[0] & 0x1F == 7)


@pytest.mark.parametrize(
    ("width", "height", "profile"),
    [(640, 360, "baseline"), (320, 240, "baseline"), (1280, 720, "main"), (1920, 1080, "high"), (482, 270, "high")],
)
def test_size_matches_what_the_encoder_was_given(width: int, height: int, profile: str) -> None:
    assert picture_size(_sps(width, height, profile)) == (width, height)


def test_a_truncated_sps_raises_its_own_error() -> None:
    sps = _sps(640, 360, "baseline")
    with pytest.raises(SpsError):
        picture_size(sps[:5])
