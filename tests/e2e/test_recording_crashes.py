"""Recordings survive a crash (``kill -9`` of the daemon or of a media worker in the middle of a
call) and a full disk (the recording stops, the call and its stream do not).

What is judged is the file as FFmpeg reads it after the crash (and, while the call runs, as
Python's ``wave`` module reads the growing file), against the time the call had been up when it
was killed; and the history the restarted daemon shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import decode_file, dominant_frequency, read_recording, silent_fraction
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e
UP_SECONDS = 6.0


@pytest.fixture
def recording(tmp_path: Path, far_end: Baresip) -> Iterator[tuple[BridgeDaemon, Path]]:
    """A daemon recording wav and m4a of every call; the far end is hung up afterwards (no BYE reaches
    it when the bridge is killed)."""
    directory = tmp_path / "recordings"
    extra = f'\n[recording]\ndirectory = "{directory}"\nformats = ["wav", "m4a"]\n'
    daemon = BridgeDaemon(tmp_path, extra_config=extra)
    yield daemon, directory
    daemon.stop()
    far_end.hangup()


def start_call(daemon: BridgeDaemon, call_id: str, nginx: NginxRtmp, domain: Kamailio, account: SipAccount) -> float:
    """/RESTCall (its app has no record setting: [recording] formats apply); when it was established."""
    status, reply = daemon.request("POST", "/RESTCall/call", call_body(call_id, call_id, nginx, domain, account))
    assert status == 200, reply
    daemon.wait_state(call_id, {"ESTABLISHED"})
    return time.monotonic()


def files(directory: Path, call_id: str) -> dict[str, Path]:
    found = {path.name.split(".", 1)[1]: path for path in directory.rglob(f"{call_id}_mix.*")}
    assert set(found) == {"wav", "m4a"}, found
    return found


def check_after_crash(directory: Path, call_id: str, elapsed: float) -> dict[str, float]:
    seconds = {}
    for kind, path in files(directory, call_id).items():
        _codec, rate, _channels, samples, _gap = decode_file(str(path))
        seconds[kind] = len(samples) / rate
        assert abs(dominant_frequency(samples[rate : 3 * rate], rate) - 440) <= 5, kind
    print(f"\nkilled {elapsed:.2f} s into the call: {', '.join(f'{k} {v:.2f} s' for k, v in seconds.items())}")
    assert all(value >= elapsed - 2.0 for value in seconds.values()), seconds
    return seconds


def listed(daemon: BridgeDaemon, call_id: str) -> dict[str, dict[str, Any]]:
    status, body = daemon.request("GET", f"/api/v1/calls/{call_id}/recordings")
    assert status == 200, body
    return {entry["format"]: entry for entry in body["recordings"]}


def test_daemon_killed_mid_call(
    recording: tuple[BridgeDaemon, Path], nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    daemon, directory = recording
    up = start_call(daemon, "crash-daemon", nginx, sip_domain, account)
    time.sleep(UP_SECONDS)
    elapsed = time.monotonic() - up
    daemon.kill()
    time.sleep(1.0)  # its media worker sees the channel close and exits
    daemon.start()
    check_after_crash(directory, "crash-daemon", elapsed)
    entries = listed(daemon, "crash-daemon")
    assert {entry["state"] for entry in entries.values()} == {"interrupted"}, entries
    assert all("bridge stopped" in entry["reason"] for entry in entries.values())
    assert all(entry["durationSeconds"] >= elapsed - 2.0 for entry in entries.values()), entries
    status, call = daemon.request("GET", "/api/v1/calls/crash-daemon")
    assert status == 200 and call["reason"] == "bridge restarted"


def test_media_worker_killed_mid_call(
    recording: tuple[BridgeDaemon, Path], nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    daemon, directory = recording
    up = start_call(daemon, "crash-worker", nginx, sip_domain, account)
    time.sleep(UP_SECONDS)
    with wave.open(str(files(directory, "crash-worker")["wav"])) as growing:  # valid while it grows
        growing_seconds = growing.getnframes() / growing.getframerate()
    call = daemon.call("crash-worker")
    assert call is not None
    elapsed = time.monotonic() - up
    os.kill(call["mediaWorker"]["pid"], signal.SIGKILL)
    print(f"\nthe growing WAV's header said {growing_seconds:.2f} s at {elapsed:.2f} s")
    assert growing_seconds >= elapsed - 1.5
    ended = daemon.wait_state("crash-worker", {"FAILED"}, timeout=10)
    assert ended["reason"].startswith("media worker failed")
    daemon.wait_gone("crash-worker")
    check_after_crash(directory, "crash-worker", elapsed)
    entries = listed(daemon, "crash-worker")
    assert {entry["state"] for entry in entries.values()} == {"interrupted"}, entries
    assert all("killed by SIGKILL" in entry["reason"] for entry in entries.values())


def test_a_full_disk_stops_the_recording_not_the_call(
    tmp_path: Path, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio, account: SipAccount
) -> None:
    """The recording directory is a 96 KiB tmpfs: about 5 s of 8 kHz PCM fit, the call runs 10 s."""
    directory = tmp_path / "small-disk"
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k,mode=0700", "tmpfs", str(directory)])
    if mounted.returncode != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs as root; run make test as root)")
    extra = f'\n[recording]\ndirectory = "{directory}"\npath = "{{callId}}_{{track}}.{{ext}}"\n'
    daemon = BridgeDaemon(tmp_path, extra_config=extra)
    try:
        body = call_body(
            "full-disk", "full-disk", nginx, sip_domain, account, rtmp_url=f"rtmp://127.0.0.1:{nginx.rtmp_port}/rec"
        )
        body["record"] = {"formats": ["wav"]}
        status, reply = daemon.request("POST", "/api/v1/calls", body)
        assert status == 201, reply
        daemon.wait_state("full-disk", {"ESTABLISHED"})
        up = time.monotonic()
        time.sleep(10.0)
        during = daemon.call("full-disk")
        daemon.request("DELETE", "/api/v1/calls/full-disk")
        lasted = time.monotonic() - up
        daemon.wait_gone("full-disk")
        assert during is not None and during["state"] == "ESTABLISHED"  # the call went on
        stops = [e for e in during["timeline"] if e["event"] == "recording" and e["state"] == "stopped"]
        assert len(stops) == 1 and "disk full" in stops[0]["reason"], during["timeline"]
        entry = listed(daemon, "full-disk")["wav"]
        assert entry["state"] == "stopped" and "disk full" in entry["reason"], entry
        # what fit is a valid file; the stream nginx-rtmp recorded has no gap and lasts the whole call
        _codec, rate, _ch, samples, _gap = decode_file(str(directory / "full-disk_mix.wav"))
        stream = read_recording(str(nginx.recording("full-disk")))
        print(
            f"\ndisk full after {len(samples) / rate:.2f} s of recording; stream {stream.timeline_seconds:.2f} s "
            f"for a call of {lasted:.2f} s, largest gap {stream.max_timestamp_gap_ms:.1f} ms"
        )
        assert 3.0 <= len(samples) / rate <= 6.5
        assert stream.max_timestamp_gap_ms <= 30 and stream.timeline_seconds >= lasted - 0.5
        assert silent_fraction(stream.segment(0.5, stream.seconds - 0.3), stream.sample_rate) == 0
    finally:
        daemon.stop()
        subprocess.run(["umount", "--lazy", str(directory)], check=False)
