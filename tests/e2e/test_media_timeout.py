"""A call whose far end sends no RTP is hung up with BYE after rtp.timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.call_bodies import direct_call_body
from tests.support.daemon import BridgeDaemon
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.silent_uas import SilentUas, describe_silence

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def silent_far_end() -> Iterator[SilentUas]:
    uas = SilentUas()
    yield uas
    uas.stop()


@pytest.fixture(scope="module")
def quick_timeout_daemon(workdir: Path) -> Iterator[BridgeDaemon]:
    bridge = BridgeDaemon(workdir / "timeout", rtp_timeout=2)
    yield bridge
    bridge.stop()


def test_no_rtp_for_timeout_hangs_up_with_bye_and_unpublishes(
    nginx: NginxRtmp, silent_far_end: SilentUas, quick_timeout_daemon: BridgeDaemon
) -> None:
    daemon = quick_timeout_daemon
    body = direct_call_body(  # JSON booleans here; other tests send them as strings
        "quiet-1",
        "quiet1",
        nginx.url,
        silent_far_end.port,
        callee="silent",
        hasAudio=True,
        hasVideo=False,
        connection={"sipRegisterRequired": False, "appKey": "e2e"},
    )
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state("quiet-1", {"ESTABLISHED"}, timeout=5)
    daemon.wait_gone("quiet-1", timeout=8)
    ended = daemon.call("quiet-1")
    assert ended is not None
    assert ended["state"] == "FAILED" and ended["reason"] == "no RTP received for 2 s"
    assert ended["counters"]["packets"] == 0
    # sendrecv: 20 ms of µ-law silence for the ~2 s the call was up, measured where it arrived
    received = describe_silence(silent_far_end.rtp.packets())
    print(f"\nthe far end received: {received}")
    assert int(received["count"]) >= 80 and received["payloadTypes"] == [0] and received["allSilence"]
    assert received["timestampSteps"] == [160] and received["sequenceSteps"] == [1]
    assert received["payloadBytes"] == [160] and 45 <= float(received["packetsPerSecond"]) <= 55  # type: ignore[arg-type]
    assert float(received["maxGapMs"]) < 100  # type: ignore[arg-type]
    assert silent_far_end.requests.count("BYE") == 1
    assert nginx.stream_stat("quiet1") is None
