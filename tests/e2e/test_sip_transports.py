"""Calls over TCP and TLS through kamailio (Record-Route across transports), far-end BYE included."""

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
def tls_daemon(workdir: Path, sip_domain: Kamailio) -> Iterator[BridgeDaemon]:
    """Trusts the SIP domain's test certificate; verification stays on."""
    bridge = BridgeDaemon(workdir / "tls", env={"BRIDGE_SIP__TLS_CA_FILE": str(sip_domain.certificate)})
    yield bridge
    bridge.stop()


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_call_over_stream_transport_and_far_end_bye_on_it(
    transport: str,
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    tls_daemon: BridgeDaemon,
) -> None:
    call_id = f"{transport}-1"
    body = call_body(call_id, f"{transport}1", nginx, sip_domain, account)
    body["connection"]["sipTransport"] = transport
    body["connection"]["sipPort"] = str(sip_domain.tls_port if transport == "tls" else sip_domain.port)
    status, reply = tls_daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    call = tls_daemon.wait_state(call_id, {"ESTABLISHED"}, timeout=10)
    sip_call_id = re.escape(call["sipCallId"])
    assert re.search(f"REQ INVITE .* proto={transport} callid={sip_call_id}", sip_domain.log())
    far_end.hangup()
    tls_daemon.wait_gone(call_id, timeout=10)
    ended = tls_daemon.call(call_id)
    assert ended is not None and ended["state"] == "FINISH" and ended["reason"] == "remote hangup"
    assert re.search(f"IN-DIALOG BYE callid={sip_call_id}", sip_domain.log())


def test_tls_certificate_is_verified_by_default(
    nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = call_body("tls-untrusted", "tlsuntrusted", nginx, sip_domain, account)
    body["connection"]["sipTransport"] = "tls"
    body["connection"]["sipPort"] = str(sip_domain.tls_port)
    status, _ = daemon.request("POST", "/RESTCall/call", body)  # this daemon does not trust the test CA
    assert status == 200
    daemon.wait_gone("tls-untrusted", timeout=10)
    ended = daemon.call("tls-untrusted")
    assert ended is not None and ended["state"] == "FAILED"
    assert "503 Service Unavailable (transport error)" in ended["reason"]
    assert "CERTIFICATE_VERIFY_FAILED" in daemon.log()


def test_mandatory_srtp_over_tls_bridges_audio(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, tls_daemon: BridgeDaemon
) -> None:
    body = call_body("srtp-1", "srtp1", nginx, sip_domain, account)
    body["callee"] = "secure"  # baresip account with mediaenc=srtp-mand
    body["connection"].update(sipTransport="tls", sipPort=str(sip_domain.tls_port), srtp="mandatory")
    status, reply = tls_daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    tls_daemon.wait_state("srtp-1", {"ESTABLISHED"}, timeout=10)
    pulled = pull_audio(f"{nginx.url}/srtp1", seconds=2.0)
    assert abs(dominant_frequency(pulled.samples, pulled.sample_rate) - 440.0) <= 5.0
    counters = tls_daemon.call("srtp-1")["counters"]  # type: ignore[index]
    assert counters["packets"] > 50 and counters["srtpFailures"] == 0
    log = tls_daemon.log()
    assert "m=audio" in log and "RTP/SAVP" in log and "inline:<redacted>" in log
    assert re.search(r"inline:(?!<redacted>)", log) is None  # no SDES key in the logs
    tls_daemon.request("POST", "/RESTCall/terminate", {"callId": "srtp-1"})
    tls_daemon.wait_gone("srtp-1")


def test_mandatory_srtp_without_tls_is_refused_at_the_api(
    nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = call_body("srtp-udp", "srtpudp", nginx, sip_domain, account)
    body["connection"]["srtp"] = "mandatory"
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 400 and reply["error"]["field"] == "connection.srtp"
