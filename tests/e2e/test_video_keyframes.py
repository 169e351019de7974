"""Players that open a passthrough video call late see a picture (security review 2026-12-07, finding 15).

baresip's H.264 (avcodec, libx264) sends an IDR only when asked, and nginx-rtmp's live module holds
video back from a new player until the next key frame. Players open the stream 5 s, 15 s and 25 s
into the call: each one's first picture must come within keyframeSeconds + 0.5 s of its first audio
(both as the player demuxed them, FFmpeg through PyAV). A player that watches from the start
measures the key-frame intervals: none above keyframeSeconds + 0.5 s.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount, domain_in_front_of
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.video import PulledStream, pull_stream

pytestmark = pytest.mark.e2e
KEYFRAME_SECONDS = 2.0
LATE_JOINS = (5.0, 15.0, 25.0)


@pytest.fixture(scope="module")
def keyframe_domain(workdir: Path, account: SipAccount) -> Iterator[Kamailio]:
    with domain_in_front_of(workdir / "keyframes", account, video=(320, 180, 15)) as domain:
        yield domain


def _first_picture_wait(pulled: PulledStream) -> float:
    """Media time from the player's first audio to its first video frame (inf: no picture at all)."""
    if not pulled.video or not pulled.audio:
        return float("inf")
    return pulled.video[0][0] - pulled.audio[0][0]


def test_late_players_see_a_picture_within_the_keyframe_interval(
    nginx: NginxRtmp, keyframe_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = call_body("keyframes-1", "keyframes1", nginx, keyframe_domain, account)
    body["connection"]["codecs"] = ["pcmu", "h264"]
    assert daemon.request("POST", "/RESTCall/call", body)[0] == 200
    daemon.wait_state("keyframes-1", {"ESTABLISHED"})
    started = time.monotonic()
    url = f"{nginx.url}/keyframes1"
    pulls: dict[str, PulledStream] = {}

    def pull(name: str, at: float, seconds: float) -> None:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        pulls[name] = pull_stream(url, seconds=seconds, keep_frames=1)

    threads = [threading.Thread(target=pull, args=("whole", 0.0, 29.0))]
    threads += [threading.Thread(target=pull, args=(f"late {at:g} s", at, KEYFRAME_SECONDS + 3)) for at in LATE_JOINS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counters = daemon.call("keyframes-1")["counters"]  # type: ignore[index]
    daemon.request("POST", "/RESTCall/terminate", {"callId": "keyframes-1"})
    daemon.wait_gone("keyframes-1")

    keys = [pts for pts, _, key in pulls["whole"].video if key]
    intervals = [b - a for a, b in itertools.pairwise(keys)]
    waits = {name: _first_picture_wait(pulled) for name, pulled in pulls.items() if name != "whole"}
    print(
        f"\nkey frames {len(keys)}, intervals max {max(intervals, default=0):.2f} s; first picture after "
        f"{ {name: round(wait, 2) for name, wait in waits.items()} }; requests {counters.get('keyframeRequests')}, "
        f"answered {counters.get('keyframesAnswered')}, unanswered {counters.get('keyframeRequestsUnanswered')}"
    )
    assert len(keys) >= 10 and max(intervals) <= KEYFRAME_SECONDS + 0.5, intervals
    for name, wait in waits.items():
        assert wait <= KEYFRAME_SECONDS + 0.5, f"the player that joined {name} in waited {wait:.2f} s"
