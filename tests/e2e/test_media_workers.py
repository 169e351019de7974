"""Media worker processes: calls spread over workers, and a worker killed mid-call."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

TWO_WORKERS = "\n[media]\nworkers = 2\n"


def _packets(daemon: BridgeDaemon, call_id: str) -> int:
    call = daemon.call(call_id)
    assert call is not None
    return int(call["counters"]["packets"])


def _metric(daemon: BridgeDaemon, name: str) -> float:
    text = daemon.raw("GET", "/metrics")
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


def _maps_pyav(pid: int) -> bool:
    """Whether the process has PyAV's extension modules mapped (read from the kernel, not from us)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return re.search(r"/av/[\w/]*\.so|/av\.libs/", maps) is not None


def test_killed_worker_costs_only_its_calls_and_is_restarted(
    tmp_path: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    daemon = BridgeDaemon(tmp_path, extra_config=TWO_WORKERS)
    try:
        for name in ("victim", "survivor"):
            status, reply = daemon.request("POST", "/RESTCall/call", call_body(name, name, nginx, sip_domain, account))
            assert status == 200, reply
        victim = daemon.wait_state("victim", {"ESTABLISHED"})
        survivor = daemon.wait_state("survivor", {"ESTABLISHED"})
        assert victim["mediaWorker"]["index"] != survivor["mediaWorker"]["index"]  # least-loaded assignment
        for name in ("victim", "survivor"):
            wait_until(lambda name=name: nginx.stream_stat(name) is not None, 10, f"{name} published")
        wait_until(lambda: _packets(daemon, "survivor") > 50, 5, "survivor receiving RTP")

        killed_pid = victim["mediaWorker"]["pid"]
        assert _maps_pyav(killed_pid)  # encoding happens here ...
        assert not _maps_pyav(daemon.process.proc.pid)  # ... and never in the daemon
        assert "/rtp/_fast." in Path(f"/proc/{killed_pid}/maps").read_text()  # the compiled media path runs
        index = victim["mediaWorker"]["index"]
        assert _metric(daemon, f'bridge_media_worker_fast_path{{worker="{index}"}}') == 1.0
        os.kill(killed_pid, signal.SIGKILL)

        ended = daemon.wait_state("victim", {"FAILED"}, timeout=10)
        assert ended["reason"] == "media worker failed (killed by SIGKILL)", ended["reason"]
        pattern = f"IN-DIALOG BYE callid={re.escape(victim['sipCallId'])}"
        wait_until(lambda: re.search(pattern, sip_domain.log()) is not None, 5, "BYE for the victim call")
        wait_until(lambda: nginx.stream_stat("victim") is None, 10, "victim stream gone from nginx")

        before = _packets(daemon, "survivor")
        wait_until(lambda: _packets(daemon, "survivor") > before + 50, 5, "survivor still receiving")
        assert daemon.call("survivor")["state"] == "ESTABLISHED"  # type: ignore[index]
        assert nginx.stream_stat("survivor") is not None

        wait_until(lambda: _metric(daemon, "bridge_media_worker_restarts") == 1, 10, "worker restarted")
        wait_until(lambda: daemon.request("GET", "/readyz")[0] == 200, 10, "ready again")
        status, reply = daemon.request(
            "POST", "/RESTCall/call", call_body("after", "after", nginx, sip_domain, account)
        )
        assert status == 200, reply
        after = daemon.wait_state("after", {"ESTABLISHED"})
        assert after["mediaWorker"]["index"] == victim["mediaWorker"]["index"]  # the restarted, empty worker
        assert after["mediaWorker"]["pid"] != killed_pid
        wait_until(lambda: nginx.stream_stat("after") is not None, 10, "call on the restarted worker published")
        assert "media worker 0 (pid" in daemon.log() or "media worker 1 (pid" in daemon.log()
    finally:
        daemon.stop()
