"""Faults, each against a real peer, judged from outside the bridge where the fault lives:

- an RTMP server that accepts TCP and then stops reading (nginx stopped with SIGSTOP);
- a TCP black hole mid-stream (a network namespace whose return route is a blackhole);
- the history database's disk full (a small tmpfs), then space again;
- a history file that is corrupt or locked at start-up;
- a far end that vanishes without BYE (no RTP, no answers).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import dominant_frequency, pull_audio
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.netns import Namespace
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.silent_uas import ToneUas
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
QUICK_RTMP = (
    "\n[rtmp]\nstall_seconds = 2\nconnect_timeout = 2\nmax_backlog_seconds = 4\nack_window_bytes = 4096\n"
    "max_reconnect_seconds = {give_up}\n"
)


def rss_kib(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())[1])  # type: ignore[index]


def connections_to(port: int) -> set[str]:
    """Local ports of this host's TCP connections to ``port`` (ss, the kernel's view)."""
    out = subprocess.run(["ss", "-tanH", f"dport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3].rsplit(":", 1)[1] for line in out.splitlines() if line.strip()}


def start(daemon: BridgeDaemon, call_id: str, rtmp_url: str, domain: Kamailio, account: SipAccount) -> dict:  # type: ignore[type-arg]
    body = call_body(call_id, call_id, None, domain, account, rtmp_url=rtmp_url)
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    return daemon.wait_state(call_id, {"ESTABLISHED"})


def test_a_server_that_stops_reading_is_detected_and_published_again_when_it_resumes(
    tmp_path: Path, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    server = NginxRtmp(tmp_path, "stopping-nginx")
    daemon = BridgeDaemon(tmp_path, extra_config=QUICK_RTMP.format(give_up=60))
    try:
        call = start(daemon, "stopped-server", server.url, sip_domain, account)
        wait_until(lambda: server.stream_stat("stopped-server") is not None, 10, "published")
        time.sleep(3.0)  # a few acknowledgement windows: the bridge has seen this server acknowledge
        first = connections_to(server.rtmp_port)
        worker = call["mediaWorker"]["pid"]
        rss = [rss_kib(worker)]
        server.process.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        reconnected_after = None
        while time.monotonic() - stopped < 8:
            time.sleep(0.25)
            rss.append(rss_kib(worker))
            if reconnected_after is None and connections_to(server.rtmp_port) - first:
                reconnected_after = time.monotonic() - stopped  # a new TCP connection: the stall was detected
        server.process.signal(signal.SIGCONT)
        resumed = time.monotonic()
        wait_until(lambda: server.stream_stat("stopped-server") is not None, 20, "published again")
        republished_after = time.monotonic() - resumed
        audio = pull_audio(f"{server.url}/stopped-server", seconds=2.0)
        print(
            f"\nnginx stopped 8 s: new connection {reconnected_after} s after the stop, worker RSS "
            f"{min(rss)}-{max(rss)} KiB, published again {republished_after:.1f} s after SIGCONT, "
            f"{dominant_frequency(audio.samples, audio.sample_rate):.1f} Hz"
        )
        # two ack windows (4096 bytes each) at 32 kbit/s, then rtmp.stall_seconds = 2
        assert reconnected_after is not None and reconnected_after <= 2 + 2 + 1.5
        assert max(rss) - rss[0] < 4 * 1024  # the backlog is bounded (rtmp.max_backlog_seconds = 4)
        assert abs(dominant_frequency(audio.samples, audio.sample_rate) - 440) <= 5
        assert daemon.call("stopped-server")["state"] == "ESTABLISHED"  # type: ignore[index]
    finally:
        server.process.signal(signal.SIGCONT)
        daemon.stop()
        server.process.stop()


def test_a_tcp_black_hole_mid_stream_is_detected_and_the_call_ends_with_the_reason(
    tmp_path: Path, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    namespace = Namespace()
    server = None
    daemon = BridgeDaemon(tmp_path, extra_config=QUICK_RTMP.format(give_up=6))
    try:
        server = NginxRtmp(tmp_path, "far-nginx", host=namespace.address, netns=namespace.name)
        call = start(daemon, "black-hole", server.url, sip_domain, account)
        wait_until(lambda: server.stream_stat("black-hole") is not None, 10, "published")
        time.sleep(3.0)
        first = connections_to(server.rtmp_port)
        namespace.black_hole()
        cut = time.monotonic()
        # the kernel's view: the bridge opens a new connection (which cannot complete) once it noticed
        wait_until(lambda: connections_to(server.rtmp_port) - first, 15, "a new connection attempt")
        detected = time.monotonic() - cut
        ended = daemon.wait_state("black-hole", {"FAILED"}, timeout=20)
        ended_after = time.monotonic() - cut
        pattern = f"IN-DIALOG BYE callid={re.escape(call['sipCallId'])}"
        print(f"\nblack hole: a new connection {detected:.1f} s after the cut; call ended {ended_after:.1f} s after")
        print(f"with the reason: {ended['reason']}")
        assert detected <= 2 + 2 + 1.5  # two ack windows at 32 kbit/s, then rtmp.stall_seconds
        # detected, then rtmp.max_reconnect_seconds of attempts (checked as each attempt ends: at most one more
        # connect_timeout and backoff)
        assert ended_after <= detected + 6 + 2 + 2 + 1
        assert ended["reason"].startswith("gave up reconnecting after 6 s")
        wait_until(lambda: re.search(pattern, sip_domain.log()) is not None, 5, "the BYE at the SIP domain")
    finally:
        daemon.stop()
        if server is not None:
            server.process.stop()
        namespace.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "history-disk"
    directory.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)]).returncode != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs as root)")
    yield directory
    subprocess.run(["umount", "--lazy", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system to the last block."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_history_disk_does_not_stop_calls_and_the_history_catches_up(
    tmp_path: Path, small_disk: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    daemon = BridgeDaemon(tmp_path, env={"BRIDGE_HISTORY__PATH": str(small_disk / "history.sqlite3")})
    try:
        filler = fill(small_disk)
        for call_id in ("full-1", "full-2"):
            start(daemon, call_id, nginx.url, sip_domain, account)
            time.sleep(1.0)
            daemon.request("POST", "/RESTCall/terminate", {"callId": call_id})
            daemon.wait_gone(call_id)
            assert daemon.call(call_id)["state"] == "FINISH"  # type: ignore[index]
        errors = [line for line in daemon.log().splitlines() if "cannot be written" in line]
        filler.unlink()
        wait_until(lambda: all(_stored(small_disk, c) for c in ("full-1", "full-2")), 10, "the history caught up")
        print(f"\nhistory disk full: {errors}")
        assert len(errors) == 1 and "full" in errors[0] and str(small_disk) in errors[0]
        assert "written again" in daemon.log()
    finally:
        daemon.stop()


def _stored(directory: Path, call_id: str) -> bool:
    """The call's final row, read with sqlite3 from the file itself."""
    with sqlite3.connect(directory / "history.sqlite3", timeout=1) as db:
        row = db.execute("SELECT state FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return row is not None and row[0] == "FINISH"


def test_a_corrupt_history_is_moved_aside_and_a_locked_one_refused_naming_the_file(tmp_path: Path) -> None:
    history = tmp_path / "bridge" / "history.sqlite3"
    history.parent.mkdir(parents=True)
    history.write_bytes(b"\x00garbage, not SQLite" * 200)
    daemon = BridgeDaemon(tmp_path)
    try:
        moved = [p for p in history.parent.iterdir() if p.name.startswith("history.sqlite3.corrupt-")]
        assert len(moved) == 1 and moved[0].read_bytes().startswith(b"\x00garbage")
        assert f"the call history {history} is unreadable" in daemon.log() and str(moved[0]) in daemon.log()
        assert daemon.request("GET", "/api/v1/history")[0] == 200
    finally:
        daemon.stop()
    holder = sqlite3.connect(history, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = subprocess.run(
            [sys.executable, "-m", "bridge", "--config", str(daemon.config_path)],
            capture_output=True, text=True, timeout=30, env=dict(os.environ),
        )  # fmt: skip
    finally:
        holder.close()
    print(f"\nlocked history: exit {started.returncode}: {started.stderr.strip().splitlines()[-1]}")
    assert started.returncode == 1
    assert f"the call history {history} is locked by another process" in started.stderr


def test_a_far_end_that_vanishes_without_bye_ends_the_call_with_the_reason(
    tmp_path: Path, nginx: NginxRtmp, account: SipAccount
) -> None:
    uas = ToneUas()
    domain = Kamailio(tmp_path / "vanish-domain", uas.port, account)
    daemon = BridgeDaemon(tmp_path, rtp_timeout=2)
    try:
        call = start(daemon, "vanished", nginx.url, domain, account)
        wait_until(lambda: nginx.stream_stat("vanished") is not None, 10, "published")
        time.sleep(1.0)
        uas.unanswered = frozenset({"BYE", "INVITE", "UPDATE", "OPTIONS", "INFO"})
        uas.target = None  # no more RTP, no more answers: gone
        gone = time.monotonic()
        ended = daemon.wait_state("vanished", {"FAILED"}, timeout=10)
        ended_after = time.monotonic() - gone
        wait_until(lambda: nginx.stream_stat("vanished") is None, 10, "unpublished")
        pattern = f"IN-DIALOG BYE callid={re.escape(call['sipCallId'])}"
        print(f"\nfar end vanished: the call ended {ended_after:.1f} s later: {ended['reason']}")
        assert ended["reason"] == "no RTP received for 2 s" and ended_after <= 2 + 1.5
        wait_until(lambda: re.search(pattern, domain.log()) is not None, 5, "the BYE sent towards the far end")
    finally:
        daemon.stop()
        domain.stop()
        uas.stop()
