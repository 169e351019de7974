"""Video from a SIP endpoint onto the stream without transcoding (RFC 6184), against baresip.

baresip sends H.264 from its fake camera (avcodec + libx264) through kamailio; the stream
pulled back from nginx-rtmp is demuxed and decoded by FFmpeg (through PyAV) here: codec,
resolution, frame rate, key frames, and the far end's tone in the audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import dominant_frequency
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount, domain_in_front_of
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.video import pull_stream

pytestmark = pytest.mark.e2e
WIDTH, HEIGHT, FPS = 640, 360, 25


@pytest.fixture(scope="module")
def video_domain(workdir: Path, account: SipAccount) -> Iterator[Kamailio]:
    with domain_in_front_of(workdir / "video", account, video=(WIDTH, HEIGHT, FPS)) as domain:
        yield domain


def test_far_end_h264_reaches_the_stream_at_its_size_and_rate(
    nginx: NginxRtmp, video_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = call_body("video-1", "video1", nginx, video_domain, account)
    body["connection"]["codecs"] = ["pcmu", "h264"]
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state("video-1", {"ESTABLISHED"})
    pulled = pull_stream(f"{nginx.url}/video1", seconds=6.0)
    call = daemon.call("video-1")
    daemon.request("POST", "/RESTCall/terminate", {"callId": "video-1"})
    daemon.wait_gone("video-1")
    assert call is not None
    print(
        f"\nvideo: {pulled.video_codec} {pulled.width}x{pulled.height}, {len(pulled.video)} frames, "
        f"interval {pulled.frame_interval * 1000:.1f} ms, key frames at {pulled.keyframe_times[:4]}, "
        f"first video/audio pts {pulled.video[0][0]:.3f}/{pulled.audio[0][0]:.3f} s; counters "
        f"{ {k: v for k, v in call['counters'].items() if 'ideo' in k or 'eyframe' in k} }"
    )
    assert pulled.video_codec == "h264" and (pulled.width, pulled.height) == (WIDTH, HEIGHT)
    assert abs(1 / pulled.frame_interval - FPS) <= FPS * 0.1
    assert pulled.keyframe_times and pulled.first_video_decoded
    audio = np.concatenate(pulled.audio_samples)
    assert abs(dominant_frequency(audio, pulled.audio_rate) - 440.0) <= 5.0
    assert any(e.get("event") == "video" and e.get("state") == "negotiated" for e in call["timeline"])
