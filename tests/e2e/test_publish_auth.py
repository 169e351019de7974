"""Publish authentication (authmod=adobe, authmod=llnw) against a Wowza-like server FFmpeg accepts.

The server (tests/support/rtmp_auth_server.py, pyrtmp transport) is first shown to
authenticate FFmpeg's own RTMP client and to refuse it with a wrong password; only then
is the bridge measured against it: the tone recorded by the server, and a wrong password
ending in FAILED after at most two connections.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import dominant_frequency, read_recording
from tests.support.auth_rtmp import AuthRtmpServer
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.secrets import register_secret
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
USER, PASSWORD = "publisher", "Wowza-pa55-word"


@pytest.fixture(scope="module", params=["adobe", "llnw"])
def auth_server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[AuthRtmpServer]:
    server = AuthRtmpServer(workdir, USER, PASSWORD, request.param)
    yield server
    server.stop()


def ffmpeg_publish(url: str) -> subprocess.CompletedProcess[str]:
    argv = ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    return subprocess.run([*argv, "-c:a", "aac", "-f", "flv", url], capture_output=True, text=True, timeout=30)


def test_ffmpegs_own_client_authenticates_and_a_wrong_password_is_refused(auth_server: AuthRtmpServer) -> None:
    accepted = ffmpeg_publish(f"{auth_server.url()}/ffmpeg-good")
    assert accepted.returncode == 0, accepted.stderr
    assert any(e["stream"] == "ffmpeg-good" for e in auth_server.events("publish"))
    recorded = read_recording(str(auth_server.recording("ffmpeg-good")))
    assert recorded.codec == "aac" and abs(dominant_frequency(recorded.samples, recorded.sample_rate) - 440) < 5

    refused = ffmpeg_publish(f"{auth_server.url(password='not-the-password')}/ffmpeg-bad")
    assert refused.returncode != 0 and "Incorrect username/password" in refused.stderr
    assert not any(e["stream"] == "ffmpeg-bad" for e in auth_server.events("publish"))


def auth_body(call_id: str, key: str, url: str, authmod: str, domain: Kamailio, account: SipAccount) -> dict[str, Any]:
    """The REST contract's body, publishing to ``url`` (with userinfo) under a realistic stream key."""
    register_secret(key)
    body = call_body(call_id, key, None, domain, account, rtmp_url=url)
    body["output"] = {"publishAuth": authmod}
    return body


def recorded_bytes(server: AuthRtmpServer, key: str) -> int:
    path = server.recording(key)
    return path.stat().st_size if path.exists() else 0


def test_the_bridge_authenticates_and_the_server_records_the_tone(
    auth_server: AuthRtmpServer, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    call_id, key = f"auth-{auth_server.authmod}", f"wowza-key-{auth_server.authmod}-7f3a9c21"
    connects_before = len(auth_server.events("connect"))
    status, created = daemon.request(
        "POST", "/api/v1/calls", auth_body(call_id, key, auth_server.url(), auth_server.authmod, sip_domain, account)
    )
    assert status == 201, created
    assert USER not in created["rtmpTarget"] and PASSWORD not in str(created) and key not in str(created)
    wait_until(lambda: daemon.call(call_id)["streamState"] == "PUBLISHING", 15, "publishing")  # type: ignore[index]
    wait_until(
        lambda: auth_server.recording(key).exists() and auth_server.recording(key).stat().st_size > 16_000, 15, "media"
    )
    daemon.request("DELETE", f"/api/v1/calls/{call_id}")
    daemon.wait_gone(call_id)

    ours = auth_server.events("connect")[connects_before:]
    assert [e["verdict"] for e in ours] == ["challenged", "accepted"]  # two connections, no anonymous try
    assert any(e["stream"] == key for e in auth_server.events("publish"))
    recorded = read_recording(str(auth_server.recording(key)))
    print(f"\n{auth_server.authmod}: {recorded.seconds:.1f} s recorded by the authenticating server, {recorded.codec}")
    assert recorded.codec == "aac" and recorded.seconds > 2.0
    assert abs(dominant_frequency(recorded.samples, recorded.sample_rate) - 440) < 5


def test_a_wrong_password_fails_the_stream_after_at_most_two_connections(
    auth_server: AuthRtmpServer, far_end: Baresip, sip_domain: Kamailio, account: SipAccount, daemon: BridgeDaemon
) -> None:
    call_id = f"auth-bad-{auth_server.authmod}"
    wrong = "Not-the-pa55word"
    register_secret(wrong)
    connects_before = len(auth_server.events("connect"))
    body = auth_body(
        call_id,
        f"bad-key-{auth_server.authmod}-0c1d2e3f",
        auth_server.url(wrong),
        auth_server.authmod,
        sip_domain,
        account,
    )
    status, created = daemon.request("POST", "/api/v1/calls", body)
    assert status == 201, created
    ended = daemon.wait_state(call_id, {"FAILED", "FINISH"}, timeout=20)
    daemon.wait_gone(call_id)
    ours = auth_server.events("connect")[connects_before:]
    print(f"\n{auth_server.authmod} wrong password: {[e['verdict'] for e in ours]}; {ended['reason']}")
    assert ended["state"] == "FAILED" and ended["reason"].startswith("RTMP authentication failed")
    assert ended["streamState"] == "FAILED"
    assert 1 <= len(ours) <= 2 and ours[-1]["verdict"] == "auth-failed"
    assert wrong not in str(ended) and USER not in str(ended["destinations"])
