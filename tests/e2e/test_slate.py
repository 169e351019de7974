"""A video track for audio-only calls: the slate, as a player pulls it back from nginx-rtmp.

Measured on what a player (PyAV) receives: an H.264 and an AAC stream, key frames at most
2 s apart, the configured frame rate, a decoded frame that matches the source picture,
both timelines advancing with wall time, and after an nginx restart a first video frame
that is a key frame and decodes. Then the Facebook preset: rtmp:// refused, rtmps:// works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bridge.slate_files import BUILT_IN_CARD
from tests.support.audio import dominant_frequency
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.secrets import register_secret
from tests.support.video import picture_difference, pull_stream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
SLATE = {"mode": "slate", "width": 640, "height": 360, "fps": 10, "keyframeSeconds": 2}


@pytest.fixture(scope="module")
def tls_daemon(workdir: Path, nginx: NginxRtmp) -> Iterator[BridgeDaemon]:
    bridge = BridgeDaemon(workdir / "slate", env={"BRIDGE_RTMP__TLS_CA_FILE": str(nginx.certificate)})
    yield bridge
    bridge.stop()


def slate_body(
    call_id: str, key: str, nginx: NginxRtmp, domain: Kamailio, account: SipAccount, **output: Any
) -> dict[str, Any]:
    register_secret(key)
    body = call_body(call_id, key, nginx, domain, account)
    body["output"] = output
    return body


def publishing(daemon: BridgeDaemon, call_id: str) -> bool:
    call = daemon.call(call_id)
    return call is not None and call["streamState"] == "PUBLISHING"


def test_slate_is_h264_with_short_gops_the_picture_and_wall_clock_timelines(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, tls_daemon: BridgeDaemon
) -> None:
    key = "slat-ekey-abcd-efgh-ijkl"
    status, created = tls_daemon.request(
        "POST", "/api/v1/calls", slate_body("slate-1", key, nginx, sip_domain, account, video=SLATE)
    )
    assert status == 201, created
    assert created["destinations"][0]["video"].startswith("slate 640x360 10 fps")
    wait_until(lambda: publishing(tls_daemon, "slate-1"), 15, "slate stream publishing")

    pulled = pull_stream(f"{nginx.url}/{key}", seconds=10.0)
    keyframes = pulled.keyframe_times
    gaps = np.diff(keyframes)
    rates = pulled.rate_against_wall("video"), pulled.rate_against_wall("audio")
    difference = picture_difference(pulled.frames[0], str(BUILT_IN_CARD))
    tone = dominant_frequency(pulled.tone(), pulled.audio_rate)
    print(
        f"\nslate: {pulled.video_codec} {pulled.width}x{pulled.height} + {pulled.audio_codec} {pulled.audio_rate} Hz; "
        f"key frames every {gaps.max():.2f} s at most ({len(keyframes)} key frames), "
        f"frame interval {pulled.frame_interval * 1000:.1f} ms, picture difference {difference:.2f}/255, "
        f"media/wall video {rates[0]:.4f} audio {rates[1]:.4f}, tone {tone:.1f} Hz"
    )
    assert (pulled.video_codec, pulled.audio_codec) == ("h264", "aac")
    assert (pulled.width, pulled.height) == (640, 360)
    assert len(keyframes) >= 4 and gaps.max() <= 2.0 + 0.001
    assert abs(pulled.frame_interval - 0.1) < 0.002  # 10 fps as configured
    assert difference < 4.0  # mean absolute difference, 0-255 scale
    assert all(abs(rate - 1.0) <= 0.01 for rate in rates)
    assert abs(tone - 440) < 5

    nginx.stop()
    nginx.start()
    wait_until(lambda: publishing(tls_daemon, "slate-1") and nginx.stream_stat(key) is not None, 15, "republished")
    after = pull_stream(f"{nginx.url}/{key}", seconds=3.0)
    history = [change["state"] for change in tls_daemon.call("slate-1")["streamHistory"]]  # type: ignore[index]
    first_key, decoded = after.video[0][2], after.first_video_decoded
    print(f"after the nginx restart: first video packet key frame {first_key}, decoded {decoded}")
    assert history[:3] == ["PUBLISHING", "RECONNECTING", "PUBLISHING"]
    assert after.video[0][2] and after.first_video_decoded
    assert picture_difference(after.frames[0], str(BUILT_IN_CARD)) < 4.0
    tls_daemon.request("DELETE", "/api/v1/calls/slate-1")
    tls_daemon.wait_gone("slate-1")


def test_facebook_preset_refuses_rtmp_and_publishes_slate_over_rtmps(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, tls_daemon: BridgeDaemon
) -> None:
    key = "FB-1234567890123456-0-AbCdEfGhIjKlMnOp"
    plain = slate_body("fb-1", key, nginx, sip_domain, account, preset="facebook")
    status, refused = tls_daemon.request("POST", "/api/v1/calls", plain)
    assert status == 400 and refused["error"]["field"] == "rtmpUrl", refused
    assert "rtmps://" in refused["error"]["message"] and key not in str(refused)

    secure = dict(plain, rtmpUrl=f"rtmps://127.0.0.1:{nginx.rtmps_port}/live")
    status, created = tls_daemon.request("POST", "/api/v1/calls", secure)
    assert status == 201, created
    destination = created["destinations"][0]
    assert destination["preset"] == "facebook" and destination["video"].startswith("slate")
    assert destination["rtmpTarget"] == f"rtmps://127.0.0.1:{nginx.rtmps_port}/live/••••MnOp"
    wait_until(lambda: publishing(tls_daemon, "fb-1"), 15, "facebook-preset stream publishing over rtmps")
    pulled = pull_stream(f"{nginx.url}/{key}", seconds=4.0)
    print(
        f"\nfacebook preset over rtmps: {pulled.video_codec} {pulled.width}x{pulled.height}, "
        f"{pulled.audio_codec} {pulled.audio_rate} Hz"
    )
    assert (pulled.video_codec, pulled.audio_codec, pulled.audio_rate) == ("h264", "aac", 48000)
    assert max(np.diff(pulled.keyframe_times), default=0) <= 2.001 and pulled.keyframe_times
    tls_daemon.request("DELETE", "/api/v1/calls/fb-1")
    tls_daemon.wait_gone("fb-1")
