"""The daemon under a supervisor: this test plays systemd's side of sd_notify(3)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import signal
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body, direct_call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.ports import free_port
from tests.support.secrets import register_secret
from tests.support.silent_uas import SilentUas
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

WATCHDOG_USEC = 400_000  # systemd pings are expected every WATCHDOG_USEC / 2 = 0.2 s


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield sock, path
    sock.close()


def _pending(sock: socket.socket) -> list[str]:
    """Every datagram already queued on the socket, without waiting."""
    messages = []
    sock.setblocking(False)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def _collect(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    received = []
    deadline = time.monotonic() + seconds
    sock.setblocking(True)
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        received.append((time.monotonic(), data.decode()))
    return received


def test_ready_watchdog_and_stopping_as_systemd_sees_them(
    tmp_path: Path, notify_socket: tuple[socket.socket, Path]
) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    daemon = BridgeDaemon(tmp_path, env=env)  # returns once the first REST request succeeded
    try:
        # READY=1 is sent before the REST listener serves its first reply, so it is already queued.
        first = _pending(sock)
        assert first and first[0].splitlines()[0] == "READY=1", first
        assert "STATUS=0 active calls" in first[0]
        pings = [(at, text) for at, text in _collect(sock, 2.0) if "WATCHDOG=1" in text]
        intervals = [later[0] - earlier[0] for earlier, later in itertools.pairwise(pings)]
        assert len(pings) >= 7, pings
        assert 0.15 < statistics.median(intervals) < 0.3, intervals
        print(f"\nWATCHDOG=1: {len(pings)} pings in 2 s, median interval {statistics.median(intervals) * 1000:.0f} ms")
        assert all("STATUS=0 active calls" in text for _at, text in pings)
        daemon.process.signal(signal.SIGTERM)
        assert daemon.process.proc.wait(10) == 0
        after = [text for _at, text in _collect(sock, 0.2)]
        assert any(text.startswith("STOPPING=1") for text in after), after
    finally:
        daemon.stop()


def test_sigterm_hangs_up_every_call_and_unpublishes_every_stream(
    tmp_path: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    daemon = BridgeDaemon(tmp_path)
    try:
        names = [f"shutdown{n}" for n in range(3)]
        sip_call_ids = []
        for name in names:
            status, reply = daemon.request("POST", "/RESTCall/call", call_body(name, name, nginx, sip_domain, account))
            assert status == 200, reply
        for name in names:
            sip_call_ids.append(daemon.wait_state(name, {"ESTABLISHED"})["sipCallId"])
            wait_until(lambda name=name: nginx.stream_stat(name) is not None, 10, f"{name} published")
        closed_before = far_end.log().count("session closed: Connection reset by peer")  # baresip on BYE
        signalled = time.monotonic()
        daemon.process.signal(signal.SIGTERM)
        assert daemon.process.proc.wait(10) == 0
        print(f"\nSIGTERM with 3 calls -> exit 0 after {time.monotonic() - signalled:.2f} s")
        for sip_call_id in sip_call_ids:
            pattern = f"IN-DIALOG BYE callid={re.escape(sip_call_id)}"
            wait_until(lambda p=pattern: re.search(p, sip_domain.log()) is not None, 5, f"BYE for {sip_call_id}")
        wait_until(
            lambda: far_end.log().count("session closed: Connection reset by peer") == closed_before + 3,
            5,
            "three BYEs received by the far end",
        )
        wait_until(lambda: set(names) <= set(nginx.unpublished()), 5, f"unpublished: {nginx.unpublished()}")
        assert all(nginx.stream_stat(name) is None for name in names)
        assert "stopping: hanging up 3 call(s)" in daemon.log()
    finally:
        daemon.stop()


def _auth_section(token: str) -> str:
    register_secret(token)
    digest = hashlib.sha256(token.encode()).hexdigest()
    return f'\n[auth]\nrequired = "always"\ntokens = [{{ sha256 = "{digest}", name = "ops" }}]\n'


def _packets(daemon: BridgeDaemon, call_id: str) -> int:
    call = daemon.call(call_id)
    return int(call["counters"]["packets"]) if call is not None else -1


def test_sighup_applies_a_new_token_refuses_a_new_address_and_keeps_the_call(
    tmp_path: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    daemon = BridgeDaemon(tmp_path, token="old-token-1234", extra_config=_auth_section("old-token-1234"))
    try:
        status, reply = daemon.request("POST", "/RESTCall/call", call_body("hup", "hup", nginx, sip_domain, account))
        assert status == 200, reply
        before = daemon.wait_state("hup", {"ESTABLISHED"})
        wait_until(lambda: nginx.stream_stat("hup") is not None, 10, "stream published")
        new_port = free_port()
        text = daemon.config_path.read_text()
        assert _auth_section("old-token-1234") in text and f"127.0.0.1:{daemon.rest_port}" in text
        text = text.replace(_auth_section("old-token-1234"), _auth_section("new-token-5678"))
        daemon.config_path.write_text(text.replace(f"127.0.0.1:{daemon.rest_port}", f"127.0.0.1:{new_port}"))
        daemon.process.signal(signal.SIGHUP)
        wait_until(lambda: "config reloaded" in daemon.log(), 5, "reload logged")
        assert "rest.listen" in daemon.log() and "restart the service" in daemon.log()
        assert daemon.request("GET", "/RESTCall/calls")[0] == 401  # the old token is gone
        daemon.token = "new-token-5678"
        after = daemon.call("hup")
        assert after is not None and after["state"] == "ESTABLISHED"
        assert after["sipCallId"] == before["sipCallId"]
        # Counters arrive once a second; the call must go on receiving after the reload.
        wait_until(lambda: _packets(daemon, "hup") > before["counters"]["packets"] + 50, 5, "packets after reload")
        assert nginx.stream_stat("hup") is not None
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", new_port), timeout=1).close()
        daemon.config_path.write_text(text + "\n[limits]\nmax_calls = -1\n")  # invalid: refused as a whole
        daemon.process.signal(signal.SIGHUP)
        wait_until(lambda: "config reload refused" in daemon.log(), 5, "bad config refused")
        assert "limits.max_calls" in daemon.log() and daemon.request("GET", "/RESTCall/calls")[0] == 200
        for secret in ("new-token-5678", "old-token-1234", account.password):
            assert secret not in daemon.log()
    finally:
        daemon.stop()


def test_max_call_seconds_hangs_up_with_the_reason(
    tmp_path: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    env = {"BRIDGE_LIMITS__MAX_CALL_SECONDS": "2", "BRIDGE_LOG__FORMAT": "json"}
    daemon = BridgeDaemon(tmp_path, env=env)
    try:
        posted = time.monotonic()
        status, reply = daemon.request("POST", "/RESTCall/call", call_body("cap", "cap", nginx, sip_domain, account))
        assert status == 200, reply
        sip_call_id = daemon.wait_state("cap", {"ESTABLISHED"})["sipCallId"]
        daemon.wait_gone("cap", timeout=6)
        lasted = time.monotonic() - posted
        ended = daemon.call("cap")
        assert ended is not None and ended["state"] == "FINISH", ended
        assert "maximum call duration reached (2 s, limits.max_call_seconds)" in ended["reason"]
        assert 1.9 < lasted < 3.5, lasted
        pattern = f"IN-DIALOG BYE callid={re.escape(sip_call_id)}"
        wait_until(lambda: re.search(pattern, sip_domain.log()) is not None, 5, "BYE through the SIP domain")
        wait_until(lambda: nginx.stream_stat("cap") is None, 5, "stream unpublished")
        entries = [json.loads(line) for line in daemon.log().splitlines()]  # every line is one JSON object
        states = [e["message"] for e in entries if e.get("callId") == "cap" and e["logger"] == "bridge.session"]
        assert any(": ESTABLISHED" in m for m in states) and any(": FINISH" in m for m in states), states
    finally:
        daemon.stop()


@pytest.fixture
def bye_ignoring_far_end() -> Iterator[SilentUas]:
    far_end = SilentUas(unanswered=frozenset({"BYE"}))
    yield far_end
    far_end.stop()


def _stuck_call(daemon: BridgeDaemon, far_end: SilentUas, nginx: NginxRtmp) -> None:
    """An established call to a far end that will never answer the BYE."""
    body = direct_call_body("stuck", "stuck", nginx.url, far_end.port, callee="silent")
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    daemon.wait_state("stuck", {"ESTABLISHED"})


def test_second_signal_exits_at_once_when_a_bye_goes_unanswered(
    tmp_path: Path, nginx: NginxRtmp, bye_ignoring_far_end: SilentUas
) -> None:
    daemon = BridgeDaemon(tmp_path)
    try:
        _stuck_call(daemon, bye_ignoring_far_end, nginx)
        daemon.process.signal(signal.SIGTERM)
        wait_until(lambda: bye_ignoring_far_end.requests.count("BYE") >= 2, 5, "BYE retransmitted, unanswered")
        assert daemon.process.proc.poll() is None  # still waiting, within limits.shutdown_timeout
        second = time.monotonic()
        daemon.process.signal(signal.SIGTERM)
        assert daemon.process.proc.wait(5) == 1
        print(f"\nsecond SIGTERM -> exit after {time.monotonic() - second:.3f} s")
        assert "second stop signal: exiting immediately" in daemon.log()
    finally:
        daemon.stop()


def test_shutdown_timeout_bounds_the_wait_for_an_unanswered_bye(
    tmp_path: Path, nginx: NginxRtmp, bye_ignoring_far_end: SilentUas
) -> None:
    daemon = BridgeDaemon(tmp_path, env={"BRIDGE_LIMITS__SHUTDOWN_TIMEOUT": "1.5"})
    try:
        _stuck_call(daemon, bye_ignoring_far_end, nginx)
        signalled = time.monotonic()
        daemon.process.signal(signal.SIGTERM)
        assert daemon.process.proc.wait(10) == 0
        took = time.monotonic() - signalled
        print(f"\nSIGTERM, BYE unanswered, shutdown_timeout 1.5 s -> exit 0 after {took:.2f} s")
        assert 1.4 < took < 4.0, took
        wait_until(lambda: nginx.stream_stat("stuck") is None, 5, "stream unpublished")
    finally:
        daemon.stop()
