"""REST call -> SIP (kamailio, digest 407) -> baresip tone -> RTP -> AAC -> nginx-rtmp -> player."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import dominant_frequency, pull_audio, silent_fraction
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.silent_uas import SilentUas, describe_silence
from tests.support.waiting import wait_until
from tests.support.wire import sdp_attributes

pytestmark = pytest.mark.e2e


def test_tone_reaches_the_player_and_far_end_hangup_ends_everything(
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    daemon: BridgeDaemon,
) -> None:
    posted = time.monotonic()
    status, session = daemon.request("POST", "/RESTCall/call", call_body("tone-1", "tone1", nginx, sip_domain, account))
    assert status == 200, session
    assert session["callId"] == "tone-1" and session["state"] in {"PENDING", "TRYING"}
    assert account.password not in str(session)

    def audio_on_server() -> bool:
        block = nginx.stream_stat("tone1")
        return block is not None and "<audio>" in block and "<codec>AAC</codec>" in block

    wait_until(audio_on_server, 15, "stream with AAC audio on nginx-rtmp")
    print(f"\nPOST -> AAC audio on the RTMP server: {(time.monotonic() - posted) * 1000:.0f} ms")
    assert daemon.wait_state("tone-1", {"ESTABLISHED"})["state"] == "ESTABLISHED"
    established_at = time.monotonic()

    pulled = pull_audio(f"{nginx.url}/tone1", seconds=6.0)
    assert pulled.codec == "aac"
    assert pulled.seconds >= 5.5
    frequency = dominant_frequency(pulled.samples, pulled.sample_rate)
    silent = silent_fraction(pulled.samples, pulled.sample_rate)
    print(
        f"player: {pulled.seconds:.2f} s at {pulled.sample_rate} Hz, peak {frequency:.1f} Hz, "
        f"silent 20 ms windows {silent:.2%}, max timestamp gap {pulled.max_timestamp_gap_ms:.1f} ms"
    )
    assert abs(frequency - 440.0) <= 5.0
    assert silent <= 0.02
    counters = daemon.call("tone-1")["counters"]  # type: ignore[index]
    assert counters["packets"] > 250 and counters["bytesPublished"] > 10_000

    far_end.hangup()
    hung_up_at = time.monotonic()
    daemon.wait_gone("tone-1", timeout=10)
    ended = daemon.call("tone-1")
    assert ended is not None and ended["state"] == "FINISH" and "remote hangup" in ended["reason"]
    # The final counters keep what the encoders did (review finding 14: 0 after the encoders closed):
    # at least 80 % of the AAC frames (1,024 samples at 16 kHz) the test's own clock says the call lasted.
    frames_due = (hung_up_at - established_at) * 16_000 / 1024
    assert ended["counters"]["framesEncoded"] >= 0.8 * frames_due and ended["counters"]["encodeSeconds"] > 0
    wait_until(lambda: nginx.stream_stat("tone1") is None, 10, "stream unpublished on nginx-rtmp")
    assert account.password not in daemon.log()  # the daemon logs every SIP message at debug level


def test_terminate_sends_bye_through_the_sip_domain_and_conflicts_are_409(
    nginx: NginxRtmp,
    far_end: Baresip,
    sip_domain: Kamailio,
    account: SipAccount,
    daemon: BridgeDaemon,
) -> None:
    body = dict(call_body("term-1", "term1", nginx, sip_domain, account), hasVideo="true")
    status, _ = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    established = daemon.wait_state("term-1", {"ESTABLISHED"})

    status, conflict = daemon.request("POST", "/RESTCall/call", body)
    assert status == 409 and conflict["error"]["field"] == "callId"
    status, conflict = daemon.request("POST", "/RESTCall/call", dict(body, callId="term-2"))
    assert status == 409 and conflict["error"]["field"] == "rtmpStream"

    status, _ = daemon.request("POST", "/RESTCall/terminate", {"callId": "term-1"})
    assert status == 200
    daemon.wait_gone("term-1", timeout=10)
    assert daemon.call("term-1")["state"] == "FINISH"  # type: ignore[index]
    sip_call_id = re.escape(established["sipCallId"])
    wait_until(
        lambda: re.search(f"IN-DIALOG BYE callid={sip_call_id}", sip_domain.log()) is not None,
        5,
        "in-dialog BYE in kamailio's log",
    )
    wait_until(lambda: nginx.stream_stat("term1") is None, 10, "stream unpublished on nginx-rtmp")

    status, missing = daemon.request("POST", "/RESTCall/terminate", {"callId": "term-1"})
    assert status == 404 and missing["error"]["field"] == "callId"


def test_wrong_password_fails_with_authentication_reason_and_no_retry_loop(
    nginx: NginxRtmp,
    sip_domain: Kamailio,
    account: SipAccount,
    daemon: BridgeDaemon,
) -> None:
    body = call_body("badpw-1", "badpw1", nginx, sip_domain, account, password="not-the-password")
    status, _ = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200
    failed = daemon.wait_state("badpw-1", {"FAILED", "FINISH"})
    assert failed["state"] == "FAILED"
    assert "authentication" in failed["reason"] and "403" in failed["reason"]
    time.sleep(1.0)  # a retry loop would show further INVITEs by now
    invites = re.findall(f"REQ INVITE .* callid={re.escape(failed['sipCallId'])}", sip_domain.log())
    assert len(invites) == 2  # the unauthenticated INVITE and one answer to the 407
    assert nginx.stream_stat("badpw1") is None
    assert "not-the-password" not in daemon.log()


def test_far_end_hold_and_resume_keep_the_stream_and_call_up(
    nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    status, _ = daemon.request("POST", "/RESTCall/call", call_body("hold-1", "hold1", nginx, sip_domain, account))
    assert status == 200
    daemon.wait_state("hold-1", {"ESTABLISHED"})
    far_end.command("hold")  # baresip sends a re-INVITE with a=sendonly through kamailio
    held = daemon.wait_state("hold-1", {"HOLD"}, timeout=5)
    assert "held by the far end (sendonly)" in held["reason"]
    far_end.command("resume")
    resumed = daemon.wait_state("hold-1", {"ESTABLISHED"}, timeout=5)
    assert "resumed by the far end (sendrecv)" in resumed["reason"]
    ladder = [entry["message"].split(" ")[0] for entry in resumed["sipLadder"]]
    assert ladder.count("INVITE") >= 3  # ours, ours with credentials, the far end's re-INVITEs
    pulled = pull_audio(f"{nginx.url}/hold1", seconds=2.0)
    assert abs(dominant_frequency(pulled.samples, pulled.sample_rate) - 440.0) <= 5.0
    daemon.request("POST", "/RESTCall/terminate", {"callId": "hold-1"})
    daemon.wait_gone("hold-1", timeout=10)


@pytest.fixture(scope="module")
def capturing_far_end(workdir: Path, account: SipAccount) -> Iterator[tuple[SilentUas, Kamailio]]:
    """A far end behind kamailio that keeps the SDP offers and the RTP it receives."""
    uas = SilentUas()
    domain = Kamailio(workdir / "capturing-domain", uas.port, account)
    yield uas, domain
    domain.stop()
    uas.stop()


@pytest.mark.parametrize(
    ("has_audio", "has_video", "direction"), [("false", "true", "sendrecv"), ("false", "false", "recvonly")]
)
def test_what_the_far_end_receives_follows_has_audio_and_has_video(
    capturing_far_end: tuple[SilentUas, Kamailio],
    nginx: NginxRtmp,
    account: SipAccount,
    daemon: BridgeDaemon,
    has_audio: str,
    has_video: str,
    direction: str,
) -> None:
    """The contract: either true → a sendrecv offer and 20 ms µ-law silence the far end receives for the
    whole call (so it does not drop us); both false → recvonly and no RTP at all. Measured at the far end."""
    uas, domain = capturing_far_end
    call_id = f"offer-{direction}"
    body = dict(call_body(call_id, call_id, nginx, domain, account), hasAudio=has_audio, hasVideo=has_video)
    offers_before, packets_before = len(uas.offers), len(uas.rtp.packets())
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state(call_id, {"ESTABLISHED"})
    time.sleep(3.0)
    before_hang_up = uas.rtp.packets()[packets_before:]  # the pacing is judged on the call, not its teardown
    daemon.request("POST", "/RESTCall/terminate", {"callId": call_id})
    daemon.wait_gone(call_id)
    offer = uas.offers[offers_before]
    received = describe_silence(uas.rtp.packets()[packets_before:])
    print(f"\n{call_id}: the offer's attributes {sdp_attributes(offer)}; the far end received {received}")
    assert direction in sdp_attributes(offer)
    assert {"sendrecv", "recvonly"} - {direction} & set(sdp_attributes(offer)) == set()
    if direction == "recvonly":
        assert received["count"] == 0
        return
    assert int(received["count"]) >= 140 and received["payloadTypes"] == [0] and received["allSilence"]  # type: ignore[call-overload]
    assert received["timestampSteps"] == [160] and received["payloadBytes"] == [160]
    assert 45 <= float(received["packetsPerSecond"]) <= 55 and float(received["maxGapMs"]) < 100  # type: ignore[arg-type]
    jitter = describe_silence(before_hang_up)["jitterMs"]
    assert float(jitter) <= 2.0  # type: ignore[arg-type]  # one packet every 20 ms, not in bursts
