"""Idle connections from anyone cannot take the descriptors calls need (security review, finding 2).

A daemon with a descriptor limit of 1,100 gets 1,000 idle SIP TCP connections (from 100 loopback
addresses) and 200 idle REST connections. Throughout, a fresh client's /healthz answers within a
second, and a call placed meanwhile is heard on nginx-rtmp (440 Hz decoded from the stream). The
idle SIP connections are closed by sip.tcp_idle_seconds (seen as EOF at the client), and the
daemon's log grows by a bounded number of lines. Without the caps the same flood takes the daemon
to its descriptor limit and /healthz stops answering.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import dominant_frequency, pull_audio
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e
IDLE_SECONDS = 8
SIP_FLOOD, REST_FLOOD = 1000, 200


@pytest.fixture(scope="module")
def capped_daemon(workdir: Path) -> Iterator[BridgeDaemon]:
    env = {
        "BRIDGE_SIP__TCP_IDLE_SECONDS": str(IDLE_SECONDS),
        "BRIDGE_REST__MAX_CONNECTIONS": "300",
        "BRIDGE_LIMITS__MAX_CALLS": "20",
    }
    bridge = BridgeDaemon(workdir / "capped", env=env, level="info", open_files=1100)
    yield bridge
    bridge.stop()


def _raise_own_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def _open_idle(port: int, count: int, sources: int) -> list[socket.socket]:
    """``count`` connected, silent TCP sockets from 127.0.1.1 … 127.0.1.<sources>."""
    opened = []
    for index in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((f"127.0.1.{index % sources + 1}", 0))
        sock.settimeout(5)
        with contextlib.suppress(OSError):  # refused beyond a cap: the server may reset at once
            sock.connect(("127.0.0.1", port))
        opened.append(sock)
    return opened


def _healthz_seconds(daemon: BridgeDaemon) -> float:
    """How long a fresh client waits for /healthz (5 s when it gets no answer)."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{daemon.base_url}/healthz", timeout=5) as reply:
            assert reply.status == 200
    except OSError:
        return 5.0
    return time.monotonic() - started


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        sock.setblocking(False)
        return sock.recv(1) == b""
    except BlockingIOError:
        return False  # still open, nothing to read
    except OSError:
        return True  # reset


def test_idle_floods_leave_room_for_calls(
    capped_daemon: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    _raise_own_limit(SIP_FLOOD + REST_FLOOD + 200)
    log_before = len(capped_daemon.log().splitlines())
    sip = _open_idle(capped_daemon.sip_port, SIP_FLOOD, sources=100)
    rest = _open_idle(capped_daemon.rest_port, REST_FLOOD, sources=1)
    flooded_at = time.monotonic()
    try:
        waits = [_healthz_seconds(capped_daemon)]
        status, _ = capped_daemon.request(
            "POST", "/RESTCall/call", call_body("flood-1", "flood1", nginx, sip_domain, account)
        )
        assert status == 200
        capped_daemon.wait_state("flood-1", {"ESTABLISHED"})
        waits.append(_healthz_seconds(capped_daemon))
        pulled = pull_audio(f"{nginx.url}/flood1", seconds=3.0)
        waits.append(_healthz_seconds(capped_daemon))
        assert abs(dominant_frequency(pulled.samples, pulled.sample_rate) - 440.0) <= 5.0
        while time.monotonic() - flooded_at < IDLE_SECONDS + 3:
            waits.append(_healthz_seconds(capped_daemon))
            time.sleep(0.5)
        print(f"/healthz during the flood: {len(waits)} probes, slowest {max(waits) * 1000:.0f} ms")
        assert max(waits) < 1.0
        # Every idle SIP connection is gone: refused at a cap or closed by sip.tcp_idle_seconds.
        still_open = sum(not _closed_by_server(sock) for sock in sip)
        assert still_open == 0, f"{still_open} idle SIP TCP connections outlived sip.tcp_idle_seconds"
        capped_daemon.request("POST", "/RESTCall/terminate", {"callId": "flood-1"})
        capped_daemon.wait_gone("flood-1")
    finally:
        for sock in sip + rest:
            sock.close()
    grown = len(capped_daemon.log().splitlines()) - log_before
    assert grown < 60, f"the flood wrote {grown} log lines"
