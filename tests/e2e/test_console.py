"""The web console in a real browser (Debian chromium + playwright-core) against the real daemon,
kamailio, baresip and nginx-rtmp: sign in, field errors, start a call from the form, watch it,
details, hang up from the row, history, phone width, read-only token; a cluster of two nodes seen
from one of them (node column, per-node view, a hang-up of the other node's call). The browser side is
tests/console/console_flow.mjs; this test starts the peers, runs it and checks what it saw
against the daemon's own API and the RTMP server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rest.auth import hash_token
from rest.cluster_forward import FORWARDED
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.cluster import cluster_node
from tests.support.daemon import BridgeDaemon
from tests.support.ingest_senders import Script, Sender
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.redis_server import RedisServer
from tests.support.secrets import register_secret
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CONSOLE_TESTS = ROOT / "tests" / "console"
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
FULL, READ = "console-full-token-0123456789", "console-read-token-0123456789"
TWILIO_TOKEN = "console-twilio-auth-token-5e6f7a8b9c"
register_secret(FULL, READ, TWILIO_TOKEN)
PLAYBACK = "http://cdn.example.test/hls/{app}/{stream}.m3u8"


def _require_browser() -> None:
    missing = [p for p in ("node", "/usr/bin/chromium") if shutil.which(p) is None]
    if missing or not (CONSOLE_TESTS / "node_modules" / "playwright-core").is_dir():
        pytest.fail(f"console tests need node, /usr/bin/chromium and npm ci in {CONSOLE_TESTS} (make test does it)")


def _pulsing_tone(path: Path, seconds: int = 90, rate: int = 48_000) -> Path:
    """A 440 Hz tone whose loudness steps between -6 and -30 dBFS every 0.7 s (48 kHz stereo WAV).

    A steady tone has a steady level; this one makes a live meter move, so the test can tell a
    meter that follows the call from one that shows a single stale reading.
    """
    t = np.arange(seconds * rate) / rate
    loud = np.floor(t / 0.7) % 2 == 0
    amplitude = np.where(loud, 10 ** (-6 / 20), 10 ** (-30 / 20)) * np.sqrt(2)
    samples = (np.sin(2 * np.pi * 440 * t) * amplitude * 32767 * 0.999).clip(-32767, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, 2).tobytes())
    return path


@pytest.fixture(scope="module")
def far_end(workdir: Path) -> Iterator[Baresip]:
    """The far end plays the pulsing tone (replaces the steady tone of tests/e2e/conftest.py)."""
    peer = Baresip(workdir / "pulsing", source=f"aufile,{_pulsing_tone(workdir / 'pulsing.wav')}")
    yield peer
    peer.stop()


def _console_env() -> dict[str, str]:
    tokens = [
        {"sha256": hash_token(FULL), "scope": "full", "name": "operator"},
        {"sha256": hash_token(READ), "scope": "read", "name": "wallboard"},
    ]
    return {
        "BRIDGE_AUTH__REQUIRED": "always",
        "BRIDGE_AUTH__TOKENS": json.dumps(tokens),
        "BRIDGE_LIMITS__ALLOWED_RTMP_HOSTS": '["127.0.0.1"]',
        "BRIDGE_CONSOLE__PLAYBACK_URL": PLAYBACK,
        # A private server: its stream names are not keys, so the console shows them and links a player.
        "BRIDGE_WEBHOOKS__DEFAULT_APP": "private",
        "BRIDGE_APPS__PRIVATE": json.dumps({"reveal_stream_names": True}),
    }


@pytest.fixture(scope="module")
def console_daemon(workdir: Path, nginx: NginxRtmp) -> Iterator[BridgeDaemon]:
    env = _console_env()
    desk = (
        f'[ingest.routes.desk]\nprotocol = "twilio"\nsecret = "{TWILIO_TOKEN}"\nrtmp_url = "{nginx.url}"\n'
        'stream = "desk-{callId}"\n'
    )
    recording = f'\n[recording]\ndirectory = "{workdir / "console-recordings"}"\nformats = ["wav"]\n'
    bridge = BridgeDaemon(workdir / "console", env=env, token=FULL, extra_config=desk + recording)
    yield bridge
    bridge.stop()


def _form_values(nginx: NginxRtmp, domain: Kamailio, account: SipAccount, call_id: str) -> list[list[str]]:
    return [
        ["Call ID *", call_id],
        ["Callee *", "uas"],
        ["RTMP URL *", nginx.url],
        ["RTMP stream *", "console1"],
        ["SIP login *", account.user],
        ["SIP password", account.password],
        ["Authentication name", account.user],
        ["SIP domain *", "127.0.0.1"],
        ["SIP port", str(domain.port)],
    ]


def _run_browser(
    console_daemon: BridgeDaemon,
    values: list[list[str]],
    call_id: str,
    script: str = "console_flow.mjs",
    **extra: str,
) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    scenario = {
        "baseUrl": f"http://127.0.0.1:{console_daemon.rest_port}/",
        "token": FULL,
        "readToken": READ,
        "callId": call_id,
        "call": {"text": values},
        "artifacts": str(ARTIFACTS),
        **extra,
    }
    done = subprocess.run(
        ["node", str(CONSOLE_TESTS / script), json.dumps(scenario)],
        cwd=CONSOLE_TESTS,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"the browser script printed nothing: {done.stderr[-2000:]}"
    seen: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0 and seen["ok"], f"console flow failed at {seen.get('error')}: {seen}"
    return seen


def test_operator_runs_a_call_from_the_console(
    console_daemon: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    _require_browser()
    call_id = "console-call-1"
    seen = _run_browser(console_daemon, _form_values(nginx, sip_domain, account, call_id), call_id)

    assert "not accepted" in seen["signInError"]
    assert seen["clientError"] == "this field is required"
    assert "not-allowed.example" in seen["serverError"] and "allowed_rtmp_hosts" in seen["serverError"]
    # The call as the console showed it, checked against what the peers saw.
    assert max(seen["levels"]) > -45, f"level meter shows no audio: {seen['levels']}"
    assert len(set(seen["levels"])) > 1, f"level meter did not move: {seen['levels']}"
    assert seen["packets"] == sorted(seen["packets"]) and seen["packets"][-1] - seen["packets"][0] >= 200
    assert seen["playbackLink"] == "http://cdn.example.test/hls/live/console1.m3u8"
    assert seen["mediaSummary"] == "audio pcmu"  # what kamailio's far end answered (PCMU only)
    assert seen["ladderRows"] >= 3  # INVITE, 407/401, INVITE, 200, ACK
    assert len(seen["destinationRows"]) == 1 and f"{nginx.url}/console1" in seen["destinationRows"][0]
    assert "generic" in seen["destinationRows"][0] and "aac 16000 Hz" in seen["destinationRows"][0]
    assert seen["endedState"] == "FINISH"
    assert call_id in seen["historyRow"] and "FINISH" in seen["historyRow"]
    assert seen["phoneOverflow"] <= 0, "the calls view scrolls sideways at 390 px"
    assert "Read-only" in seen["readOnlyNotice"] and seen["readOnlyNewCallVisible"] is False
    assert seen["consoleErrors"] == []
    stored = console_daemon.call(call_id)
    assert stored is not None and stored["state"] == "FINISH" and stored["counters"]["packets"] > 200
    assert nginx.stream_stat("console1") is None  # unpublished after the hang-up
    pattern = f"IN-DIALOG BYE callid={re.escape(stored['sipCallId'])}"
    wait_until(lambda: re.search(pattern, sip_domain.log()) is not None, 5, "the hang-up's BYE at the SIP domain")


def test_an_ingest_call_in_the_console(console_daemon: BridgeDaemon, nginx: NginxRtmp) -> None:
    """A Twilio stream shows as a call: platform and route instead of callee and SIP, no DTMF, no SIP
    ladder; hanging it up from the row closes the sender's WebSocket with 1000."""
    _require_browser()
    call_sid = "CA" + "c0501e" * 5 + "01"
    url = f"ws://127.0.0.1:{console_daemon.rest_port}/ingest/desk"
    sender = Sender("twilio", url, TWILIO_TOKEN, Script(seconds=60), call_sid).start()
    seen = _run_browser(console_daemon, [], call_sid, "ingest_flow.mjs")
    result = sender.join(15)

    assert seen["party"] == f"Twilio Media Streams: {call_sid}"
    assert seen["source"] == "Twilio Media Streams WebSocket on route desk, tracks inbound"
    assert seen["dtmfDisabled"] is True and seen["packetsShown"] > 0
    assert "SIP ladder" not in seen["headings"] and "Destinations" in seen["headings"]
    assert "twilio stream started on route desk" in seen["timeline"]
    assert seen["endedState"] == "FINISH" and seen["consoleErrors"] == []
    # What the sender and the RTMP server saw, not what the console says.
    assert result.close_code == 1000 and result.ended_at - result.started_at < 50
    assert nginx.stream_stat(f"desk-{call_sid}") is None


def test_listening_to_a_live_call_and_playing_its_recording(
    console_daemon: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    """The page measures what its <audio> plays with a Web Audio AnalyserNode: the far end's 440 Hz."""
    _require_browser()
    call_id = "console-listen-1"
    body = call_body(call_id, "console-listen-1", nginx, sip_domain, account)
    status, reply = console_daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    status, other = console_daemon.request("GET", "/api/v1/calls/desk-other/tickets?purpose=recordings")
    assert status == 200, other
    seen = _run_browser(
        console_daemon, [], call_id, "listen_flow.mjs", recording=f"{call_id}_mix.wav", ticket=other["ticket"]
    )
    print(
        f"\nlistening: 440 Hz heard {seen['listenSeconds']} s after pressing Listen ({seen['listenLast']}); "
        f"recording: {seen['recordingSeconds']} s after Play ({seen['recordingLast']})"
    )
    assert seen["listenSeconds"] is not None and seen["listenSeconds"] <= 3.0
    assert seen["playerLabel"] == f"Listening to {call_id} (live)"
    assert seen["silentBeforePlay"] and seen["recordingSeconds"] is not None
    assert any(f"{call_id}_mix.wav" in row and "complete" in row for row in seen["recordingRows"])
    assert "?ticket=" in seen["recordingSrc"] and FULL not in seen["recordingSrc"]
    assert seen["consoleErrors"] == []
    assert seen["foreign"] == {"status": 403, "message": "the ticket is for another call"}


def test_a_cluster_in_the_console(
    tmp_path: Path, redis: RedisServer, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    """Signed in on node-a: both nodes' calls with a Node column, the nodes bar with their load, the
    per-node view of node-b, and node-b's call hung up from node-a's console (kamailio sees the BYE)."""
    _require_browser()
    env = {**_console_env(), "BRIDGE_LIMITS__MAX_CALLS": "4"}
    a, b = (cluster_node(tmp_path, node, redis, "console", env=env, token=FULL) for node in ("node-a", "node-b"))
    try:
        for daemon, call_id in ((a, "ca-1"), (b, "cb-1")):  # each call made on its node
            body = call_body(call_id, call_id.replace("-", ""), nginx, sip_domain, account)
            assert daemon.request("POST", "/RESTCall/call", body, headers={FORWARDED: "test"})[0] == 200
            daemon.wait_state(call_id, {"ESTABLISHED"})
        sip_call_id = b.call("cb-1")["sipCallId"]  # type: ignore[index]
        seen = _run_browser(a, [], "cb-1", "cluster_flow.mjs", otherCallId="ca-1")
        assert seen["nodeHeader"] is True and seen["rows"] == {"ca-1": "node-a", "cb-1": "node-b"}
        assert seen["bar"] == ["All nodes", "node-a1/4 calls", "node-b1/4 calls"]
        assert seen["nodeView"] == {"title": "Live calls on node-b", "rows": ["cb-1"]}
        assert seen["detailsNode"] == "node-b" and seen["endedState"] == "FINISH" and seen["consoleErrors"] == []
        # What node-b and kamailio saw, not what the console says.
        assert re.search(f"IN-DIALOG BYE callid={re.escape(sip_call_id)}", sip_domain.log())
        assert b.call("cb-1")["state"] == "FINISH" and a.call("ca-1")["state"] == "ESTABLISHED"  # type: ignore[index]
    finally:
        for daemon in (a, b):
            daemon.stop()
