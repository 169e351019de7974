"""Several destinations per call: both streams carry the call; one server going away disturbs no other.

Two nginx-rtmp servers. Players pull both streams and measure the tone; the second server is
stopped for 5 s while the first stream is pulled without a break (no gap > 30 ms), and the
second stream republishes when its server returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import PulledAudio, dominant_frequency, pull_audio
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.secrets import register_secret
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
KEY_A, KEY_B = "dest-aaaa-bbbb-cccc-dddd", "dest-eeee-ffff-gggg-hhhh"


@pytest.fixture(scope="module")
def second_nginx(workdir: Path) -> Iterator[NginxRtmp]:
    peer = NginxRtmp(workdir, name="nginx-b")
    yield peer
    peer.stop()


def two_outputs(
    call_id: str, nginx: NginxRtmp, other: NginxRtmp, domain: Kamailio, account: SipAccount
) -> dict[str, Any]:
    register_secret(KEY_A, KEY_B)
    body = call_body(call_id, KEY_A, nginx, domain, account)
    del body["rtmpUrl"], body["rtmpStream"]
    body["outputs"] = [{"rtmpUrl": nginx.url, "rtmpStream": KEY_A}, {"rtmpUrl": other.url, "rtmpStream": KEY_B}]
    return body


def destination_states(daemon: BridgeDaemon, call_id: str) -> list[str]:
    call = daemon.call(call_id)
    return [d["streamState"] for d in call["destinations"]] if call else []


def test_one_call_two_servers_and_an_outage_on_one(
    nginx: NginxRtmp,
    second_nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    daemon: BridgeDaemon,
) -> None:
    status, created = daemon.request(
        "POST", "/api/v1/calls", two_outputs("multi-1", nginx, second_nginx, sip_domain, account)
    )
    assert status == 201, created
    assert [d["rtmpTarget"] for d in created["destinations"]] == [
        f"{nginx.url}/••••dddd",
        f"{second_nginx.url}/••••hhhh",
    ]
    wait_until(lambda: destination_states(daemon, "multi-1") == ["PUBLISHING"] * 2, 15, "both destinations publishing")

    pulled: dict[str, PulledAudio] = {}
    puller = threading.Thread(target=lambda: pulled.setdefault("a", pull_audio(f"{nginx.url}/{KEY_A}", seconds=14.0)))
    puller.start()
    time.sleep(4.0)
    second_nginx.stop()
    wait_until(
        lambda: destination_states(daemon, "multi-1")[1] == "RECONNECTING", 5, "the second destination reconnecting"
    )
    time.sleep(5.0)
    second_nginx.start()
    back = wait_until(lambda: destination_states(daemon, "multi-1") == ["PUBLISHING"] * 2, 10, "republished")
    puller.join(30)
    other = pull_audio(f"{second_nginx.url}/{KEY_B}", seconds=4.0)

    a = pulled["a"]
    call = daemon.call("multi-1")
    assert call is not None
    tone_a, tone_b = dominant_frequency(a.samples, a.sample_rate), dominant_frequency(other.samples, other.sample_rate)
    print(
        f"\nstream A through B's outage: {a.seconds:.1f} s, max timestamp gap {a.max_timestamp_gap_ms:.1f} ms, "
        f"tone {tone_a:.1f} Hz; stream B republished {back:.2f} s after its server returned, tone {tone_b:.1f} Hz; "
        f"B's history {[h['state'] for h in call['destinations'][1]['streamHistory']]}"
    )
    assert a.seconds >= 12.0 and a.max_timestamp_gap_ms <= 30.0 and abs(tone_a - 440) < 5
    assert abs(tone_b - 440) < 5 and other.seconds >= 3.0
    assert [h["state"] for h in call["destinations"][0]["streamHistory"]] == ["PUBLISHING"]
    assert [h["state"] for h in call["destinations"][1]["streamHistory"]] == [
        "PUBLISHING",
        "RECONNECTING",
        "PUBLISHING",
    ]
    assert call["state"] == "ESTABLISHED" and call["streamState"] == "PUBLISHING"
    assert (
        call["destinations"][1]["counters"]["reconnects"] == 1
        and call["destinations"][0]["counters"]["reconnects"] == 0
    )

    duplicate = two_outputs("multi-2", nginx, second_nginx, sip_domain, account)
    duplicate["outputs"][0]["rtmpStream"] = "another-stream-name-0001"
    status, conflict = daemon.request("POST", "/api/v1/calls", duplicate)
    assert status == 409 and conflict["error"]["field"] == "outputs.1.rtmpStream", conflict
    assert KEY_B not in str(conflict) and "multi-1" in conflict["error"]["message"]
    both = dict(duplicate, rtmpUrl=nginx.url, rtmpStream="x")
    status, refused = daemon.request("POST", "/api/v1/calls", both)
    assert status == 400 and refused["error"]["field"] == "outputs"

    daemon.request("DELETE", "/api/v1/calls/multi-1")
    daemon.wait_gone("multi-1")
    wait_until(
        lambda: nginx.stream_stat(KEY_A) is None and second_nginx.stream_stat(KEY_B) is None, 10, "both unpublished"
    )
