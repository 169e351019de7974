"""SIP outcomes against real peers: rejections, redirect, no answer, timeout, lost datagrams."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import dominant_frequency, pull_audio
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body, direct_call_body
from tests.support.daemon import BridgeDaemon
from tests.support.early_media_uas import EarlyMediaUas
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.ports import free_port
from tests.support.refreshing_uas import RefreshingUas
from tests.support.udp_relay import BlackHole, LossyRelay

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def quick_daemon(workdir: Path) -> Iterator[BridgeDaemon]:
    """Short answer timeout and T1 (Timer B = 64*T1 = 3.2 s) so failure paths finish quickly."""
    env = {"BRIDGE_SIP__ANSWER_TIMEOUT": "2", "BRIDGE_SIP__T1": "0.05", "BRIDGE_RTMP__MAX_RECONNECT_SECONDS": "2"}
    bridge = BridgeDaemon(workdir / "quick", env=env)
    yield bridge
    bridge.stop()


def place(daemon: BridgeDaemon, body: dict[str, Any]) -> dict[str, Any]:
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_gone(body["callId"], timeout=15)
    ended = daemon.call(body["callId"])
    assert ended is not None
    return ended


@pytest.mark.parametrize(
    ("callee", "reason"),
    [
        ("decline", "declined (603 Decline)"),
        ("nobody", "not found (404 Not Found)"),
        ("away", "unavailable (480 Temporarily Unavailable)"),
        ("ringer", "no answer (487 Request Terminated)"),
    ],
)
def test_final_failures_map_to_clear_states(
    callee: str,
    reason: str,
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    quick_daemon: BridgeDaemon,
) -> None:
    body = dict(call_body(f"fail-{callee}", f"fail{callee}", nginx, sip_domain, account), callee=callee)
    ended = place(quick_daemon, body)
    assert ended["state"] == "FAILED"
    assert ended["reason"] == f"call not answered: {reason}"
    assert nginx.stream_stat(f"fail{callee}") is None
    if callee == "ringer":
        ladder = [entry["message"] for entry in ended["sipLadder"]]
        assert any(m.startswith("180") for m in ladder) and any(m.startswith("CANCEL") for m in ladder)


def test_redirect_is_followed_to_the_far_end(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, quick_daemon: BridgeDaemon
) -> None:
    body = dict(call_body("moved-1", "moved1", nginx, sip_domain, account), callee="moved")
    status, _ = quick_daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    call = quick_daemon.wait_state("moved-1", {"ESTABLISHED"}, timeout=10)
    assert any(entry["message"].startswith("302") for entry in call["sipLadder"])
    quick_daemon.request("POST", "/RESTCall/terminate", {"callId": "moved-1"})
    quick_daemon.wait_gone("moved-1")


def test_silent_sip_server_times_out_with_timer_b(nginx: NginxRtmp, quick_daemon: BridgeDaemon) -> None:
    hole = BlackHole()
    try:
        body = direct_call_body("void-1", "void1", nginx.url, hole.port, callee="anyone")
        ended = place(quick_daemon, body)
    finally:
        hole.stop()
    assert ended["state"] == "FAILED" and ended["reason"] == "call not answered: timeout (408 Request Timeout)"
    invites = [e for e in ended["sipLadder"] if e["message"].startswith("INVITE")]
    assert len(invites) == 1  # retransmissions belong to the transaction, they are not new requests


def test_call_connects_when_the_first_invite_and_first_200_are_lost(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    relay = LossyRelay(("127.0.0.1", sip_domain.port), drop_once=[b"INVITE ", b"SIP/2.0 200 "])
    try:
        body = call_body("lossy-1", "lossy1", nginx, sip_domain, account)
        body["connection"]["sipPort"] = str(relay.port)
        status, _ = daemon.request("POST", "/RESTCall/call", body)
        assert status == 200
        daemon.wait_state("lossy-1", {"ESTABLISHED"}, timeout=15)
        assert relay.pending_drops == [] and len(relay.dropped) == 2
    finally:
        relay.stop()
    daemon.request("POST", "/RESTCall/terminate", {"callId": "lossy-1"})
    daemon.wait_gone("lossy-1")


def test_register_required_registers_calls_and_unregisters(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = call_body("reg-1", "reg1", nginx, sip_domain, account)
    body["connection"]["sipRegisterRequired"] = "true"
    status, _ = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    call = daemon.wait_state("reg-1", {"ESTABLISHED"}, timeout=10)
    assert any(event["event"] == "registered" for event in call["timeline"])
    assert any(change["reason"].startswith("registering bridge@127.0.0.1") for change in call["history"])
    daemon.request("POST", "/RESTCall/terminate", {"callId": "reg-1"})
    daemon.wait_gone("reg-1")
    log = sip_domain.log()
    registers = re.findall(r"REGISTER-OK bridge expires=(\d+)", log)
    assert registers[:1] == ["600"] and registers[-1] == "0"  # bound for the call, removed after it


@pytest.fixture(scope="module")
def early_media_daemon(workdir: Path) -> Iterator[BridgeDaemon]:
    bridge = BridgeDaemon(workdir / "early", env={"BRIDGE_SIP__EARLY_MEDIA": "true"})
    yield bridge
    bridge.stop()


@pytest.fixture(scope="module")
def early_far_end() -> Iterator[EarlyMediaUas]:
    uas = EarlyMediaUas()
    yield uas
    uas.stop()


def test_early_media_is_published_before_answer_when_configured(
    nginx: NginxRtmp, early_far_end: EarlyMediaUas, early_media_daemon: BridgeDaemon
) -> None:
    body = direct_call_body("early-1", "early1", nginx.url, early_far_end.port, callee="early")
    status, _ = early_media_daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    ringing = early_media_daemon.wait_state("early-1", {"SESSION_PROGRESS"}, timeout=10)
    pulled = pull_audio(f"{nginx.url}/early1", seconds=2.0)  # the far end has not answered
    assert abs(dominant_frequency(pulled.samples, pulled.sample_rate) - 440.0) <= 5.0
    call = early_media_daemon.call("early-1")
    assert call is not None and call["state"] == "SESSION_PROGRESS" and "183" in ringing["reason"]
    assert any(event["event"] == "early-media" for event in call["timeline"])
    early_media_daemon.request("POST", "/RESTCall/terminate", {"callId": "early-1"})
    early_media_daemon.wait_gone("early-1")
    ended = early_media_daemon.call("early-1")
    assert ended is not None and ended["state"] == "FINISH" and "CANCEL" in early_far_end.requests
    assert nginx.stream_stat("early1") is None


def test_invite_challenged_with_401_is_answered_with_authorization(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    body = dict(call_body("www-1", "www1", nginx, sip_domain, account), callee="uas401")
    status, _ = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    call = daemon.wait_state("www-1", {"ESTABLISHED"}, timeout=10)
    ladder = [entry["message"] for entry in call["sipLadder"]]
    invite = f"INVITE sip:uas401@127.0.0.1:{sip_domain.port}"
    assert ladder[:3] == [invite, "401 Unauthorized", invite]
    assert re.search(f"AUTH-OK-401 bridge callid={re.escape(call['sipCallId'])}", sip_domain.log())
    daemon.request("POST", "/RESTCall/terminate", {"callId": "www-1"})
    daemon.wait_gone("www-1")


@pytest.fixture(scope="module")
def refresher_far_end() -> Iterator[RefreshingUas]:
    uas = RefreshingUas()
    yield uas
    uas.stop()


def test_far_end_refresh_and_move_to_new_port_and_ssrc(
    nginx: NginxRtmp, refresher_far_end: RefreshingUas, daemon: BridgeDaemon
) -> None:
    uas = refresher_far_end
    body = direct_call_body("refresh-1", "refresh1", nginx.url, uas.port, callee="far")
    status, _ = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    daemon.wait_state("refresh-1", {"ESTABLISHED"}, timeout=5)
    deadline = time.monotonic() + 5
    while "INVITE" not in uas.responses and time.monotonic() < deadline:
        time.sleep(0.05)
    update = uas.responses["UPDATE"]
    assert update.status == 200 and update.header("session-expires") == "90;refresher=uac"
    assert uas.responses["INVITE"].status == 200
    # RFC 3264 section 6: the answer to the re-INVITE that added video has the offer's two
    # m= lines in order, the video one rejected with port 0 (read from the raw body).
    media_lines = re.findall(rb"^m=(\w+) (\d+) ", uas.responses["INVITE"].body, re.MULTILINE)
    assert media_lines == [(b"audio", media_lines[0][1]), (b"video", b"0")] and media_lines[0][1] != b"0"
    call = daemon.call("refresh-1")
    assert call is not None
    assert any(e["event"] == "media" and e["address"] == f"127.0.0.1:{uas.rtp_ports[1]}" for e in call["timeline"])
    before = call["counters"]["packets"]
    pulled = pull_audio(f"{nginx.url}/refresh1", seconds=2.0)  # after the move: new port, new SSRC
    assert abs(dominant_frequency(pulled.samples, pulled.sample_rate) - 440.0) <= 5.0
    after = daemon.call("refresh-1")
    assert after is not None and after["counters"]["packets"] > before + 50
    daemon.request("POST", "/RESTCall/terminate", {"callId": "refresh-1"})
    daemon.wait_gone("refresh-1")


def test_busy_is_the_busy_state(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, quick_daemon: BridgeDaemon
) -> None:
    body = dict(call_body("busy-1", "busy1", nginx, sip_domain, account), callee="busy")
    ended = place(quick_daemon, body)
    assert ended["state"] == "BUSY" and ended["reason"] == "call not answered: busy (486 Busy Here)"


def test_unreachable_rtmp_server_is_retried_then_the_call_ends(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, quick_daemon: BridgeDaemon
) -> None:
    closed_port = free_port()
    body = call_body("nortmp-1", "nortmp1", nginx, sip_domain, account)
    body["rtmpUrl"] = f"rtmp://127.0.0.1:{closed_port}/live"
    ended = place(quick_daemon, body)
    assert ended["state"] == "FAILED" and ended["streamState"] == "FAILED"
    assert ended["reason"].startswith("gave up reconnecting after 2 s: RTMP connection to")
    assert any(change["state"] == "RECONNECTING" for change in ended["streamHistory"])
    sip_call_id = re.escape(ended["sipCallId"])
    assert re.search(f"IN-DIALOG BYE callid={sip_call_id}", sip_domain.log())
