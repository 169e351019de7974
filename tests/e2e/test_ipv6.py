"""A call entirely over IPv6: daemon, kamailio and baresip on ::1, SIP and RTP; audio checked on the player."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import dominant_frequency, pull_audio
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def far_end6(workdir: Path) -> Iterator[Baresip]:
    peer = Baresip(workdir, host="::1")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def domain6(workdir: Path, far_end6: Baresip, account: SipAccount) -> Iterator[Kamailio]:
    peer = Kamailio(workdir, far_end6.port, account, host="::1")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def daemon6(workdir: Path) -> Iterator[BridgeDaemon]:
    bridge = BridgeDaemon(workdir / "v6", env={"BRIDGE_SIP__LISTEN": "[::1]:0"})
    yield bridge
    bridge.stop()


def test_ipv6_call_bridges_audio(
    nginx: NginxRtmp, far_end6: Baresip, domain6: Kamailio, account: SipAccount, daemon6: BridgeDaemon
) -> None:
    body = call_body("v6-1", "v61", nginx, domain6, account)
    body["connection"]["sipDomain"] = "::1"
    status, reply = daemon6.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    call = daemon6.wait_state("v6-1", {"ESTABLISHED"}, timeout=10)
    assert "INVITE sent to udp:[::1]:" in call["history"][1]["reason"]
    pulled = pull_audio(f"{nginx.url}/v61", seconds=2.0)
    assert abs(dominant_frequency(pulled.samples, pulled.sample_rate) - 440.0) <= 5.0
    # The offer as the SIP domain received it (kamailio logs its c= line): our media address is IPv6.
    offer = re.search(rf"OFFER-CONNECTION callid={re.escape(call['sipCallId'])} (.*)", domain6.log())
    assert offer is not None and offer[1].strip() == "c=IN IP6 ::1", domain6.log()[-2000:]
    daemon6.request("POST", "/RESTCall/terminate", {"callId": "v6-1"})
    daemon6.wait_gone("v6-1")
