"""RFC 3263 against real peers: SRV targets tried in order, past a 503 and a dead server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.dns_server import TestDnsServer
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.silent_uas import SilentUas
from tests.support.udp_relay import BlackHole

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def unavailable() -> Iterator[SilentUas]:
    server = SilentUas(status=503)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dead() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.stop()


@pytest.fixture(scope="module")
def dns_server(sip_domain: Kamailio, unavailable: SilentUas, dead: BlackHole) -> Iterator[TestDnsServer]:
    server = TestDnsServer(
        {
            ("_sip._udp.sip.test", "SRV"): [
                f"10 0 {unavailable.port} busy.sip.test.",
                f"20 0 {dead.port} dead.sip.test.",
                f"30 0 {sip_domain.port} good.sip.test.",
            ],
            ("busy.sip.test", "A"): ["127.0.0.1"],
            ("dead.sip.test", "A"): ["127.0.0.1"],
            ("good.sip.test", "A"): ["127.0.0.1"],
        }
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dns_daemon(workdir: Path, dns_server: TestDnsServer) -> Iterator[BridgeDaemon]:
    bridge = BridgeDaemon(
        workdir / "dns",
        env={
            "BRIDGE_SIP__DNS_SERVERS": f'["127.0.0.1:{dns_server.port}"]',
            "BRIDGE_SIP__T1": "0.05",  # Timer B = 3.2 s for the dead server
        },
    )
    yield bridge
    bridge.stop()


def test_srv_failover_past_503_and_timeout_reaches_the_domain(
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    dns_server: TestDnsServer,
    dns_daemon: BridgeDaemon,
    dead: BlackHole,
) -> None:
    body = call_body("srv-1", "srv1", nginx, sip_domain, account)
    body["connection"]["sipDomain"] = "sip.test"
    body["connection"]["sipPort"] = "5060"  # the default port: SRV is looked up
    status, reply = dns_daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    call = dns_daemon.wait_state("srv-1", {"ESTABLISHED"}, timeout=15)
    reasons = [change["reason"] for change in call["history"] if change["state"] == "TRYING"]
    assert reasons[1].endswith("after 503 Service Unavailable") and f":{dead.port}" in reasons[1]
    assert reasons[2].endswith("after timeout") and f":{sip_domain.port}" in reasons[2]
    assert "SRV _sip._udp.sip.test." in dns_server.queries
    dns_daemon.request("POST", "/RESTCall/terminate", {"callId": "srv-1"})
    dns_daemon.wait_gone("srv-1")
