"""Recordings of real calls (baresip through kamailio), judged by what FFmpeg and the RTMP server saw.

The far end plays a 440 Hz tone whose loudness steps at random instants, so a recording can be
aligned with nginx-rtmp's own recording of the same stream by its level envelope. The files are
decoded with FFmpeg (PyAV), never with the bridge's code; the m4a's AAC frames are compared byte
for byte with the frames nginx-rtmp recorded (no re-encode).
"""

from __future__ import annotations

import io
import os
import stat
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.support.audio import best_alignment, decode_file, dominant_frequency, envelope_db, stepped_tone
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e
CALL_SECONDS = 15.0


@pytest.fixture(scope="module")
def far_end(workdir: Path) -> Iterator[Baresip]:
    tone = stepped_tone(str(workdir / "stepped.wav"), seconds=120, seed=17)
    peer = Baresip(workdir / "stepped", source=f"aufile,{tone}")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def recordings_dir(workdir: Path) -> Path:
    return workdir / "recordings"


@pytest.fixture(scope="module")
def daemon(workdir: Path, recordings_dir: Path) -> Iterator[BridgeDaemon]:
    extra = f'\n[recording]\ndirectory = "{recordings_dir}"\npath = "{{date}}/{{callId}}_{{track}}.{{ext}}"\n'
    bridge = BridgeDaemon(workdir, extra_config=extra)
    yield bridge
    bridge.stop()


def seconds_between(call: dict[str, Any], first: str, last: str) -> float:
    at = {change["state"]: datetime.fromisoformat(change["at"]) for change in call["history"]}
    return (at[last] - at[first]).total_seconds()


def run_call(daemon: BridgeDaemon, body: dict[str, Any], seconds: float) -> dict[str, Any]:
    status, reply = daemon.request("POST", "/api/v1/calls", body)
    assert status == 201, reply
    daemon.wait_state(body["callId"], {"ESTABLISHED"})
    time.sleep(seconds)
    daemon.request("DELETE", f"/api/v1/calls/{body['callId']}")
    daemon.wait_gone(body["callId"])
    call = daemon.call(body["callId"])
    assert call is not None and call["state"] == "FINISH", call
    return call


def flv_aac_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def mp4_aac_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.fixture(scope="module")
def recorded(
    daemon: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount, recordings_dir: Path
) -> dict[str, Any]:
    body = call_body("rec-1", "rec-1", nginx, sip_domain, account, rtmp_url=f"rtmp://127.0.0.1:{nginx.rtmp_port}/rec")
    body["record"] = {"formats": ["wav", "wav-ulaw", "m4a"]}
    call = run_call(daemon, body, CALL_SECONDS)
    status, listing = daemon.request("GET", "/api/v1/calls/rec-1/recordings")
    assert status == 200, listing
    return {"call": call, "listing": listing["recordings"], "dir": recordings_dir}


def test_every_format_is_listed_complete_with_its_duration(recorded: dict[str, Any]) -> None:
    listing = {entry["format"]: entry for entry in recorded["listing"]}
    print("\nrecordings:", {k: (v["name"], v["state"], v["durationSeconds"], v["bytes"]) for k, v in listing.items()})
    assert set(listing) == {"wav", "wav-ulaw", "m4a"}
    assert all(entry["state"] == "complete" and entry["track"] == "mix" for entry in listing.values())
    assert listing["wav"]["name"] == "rec-1_mix.wav" and listing["m4a"]["name"] == "rec-1_mix.m4a"


def _file(recorded: dict[str, Any], kind: str) -> Path:
    entry = next(e for e in recorded["listing"] if e["format"] == kind)
    found = list(recorded["dir"].rglob(entry["name"]))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("kind", ["wav", "wav-ulaw", "m4a"])
def test_recording_lasts_as_long_as_the_call_with_the_tone_and_no_gap(recorded: dict[str, Any], kind: str) -> None:
    codec, rate, channels, samples, pts_gap = decode_file(str(_file(recorded, kind)))
    call_seconds = seconds_between(recorded["call"], "ESTABLISHED", "FINISH")
    seconds = len(samples) / rate
    level = envelope_db(samples, rate)
    audible = level[int(0.5 * 50) : -5]  # from 0.5 s (the far end's first packets) to the last 0.1 s
    tone = dominant_frequency(samples[rate : rate * 3], rate)
    print(
        f"\n{kind}: {codec} {rate} Hz x{channels}, {seconds:.3f} s for a call of {call_seconds:.3f} s "
        f"({(seconds / call_seconds - 1) * 100:+.2f} %), tone {tone:.1f} Hz, quietest 20 ms {audible.min():.1f} dBFS"
    )
    assert codec == {"wav": "pcm_s16le", "wav-ulaw": "pcm_mulaw", "m4a": "aac"}[kind]
    assert abs(seconds - call_seconds) <= 0.01 * call_seconds
    assert abs(tone - 440) <= 5
    assert audible.min() > -40, "a stretch of silence: the quiet steps are at -30 dBFS"
    assert pts_gap <= 1.0


def test_wav_aligns_with_what_nginx_recorded(recorded: dict[str, Any], nginx: NginxRtmp) -> None:
    _codec, rate, _ch, ours, _gap = decode_file(str(_file(recorded, "wav")))
    _codec, nginx_rate, _ch, theirs, _gap = decode_file(str(nginx.recording("rec-1")))
    lag, coefficient = best_alignment(envelope_db(theirs, nginx_rate), envelope_db(ours, rate), max_lag=50)
    print(f"\nwav vs nginx-rtmp's recording: envelope correlation {coefficient:.3f} at {lag * 20} ms")
    assert coefficient > 0.9 and abs(lag) <= 15  # the same audio, within 300 ms (encoder and playout delay)


def test_m4a_holds_exactly_the_aac_frames_nginx_received(recorded: dict[str, Any], nginx: NginxRtmp) -> None:
    ours = mp4_aac_packets(_file(recorded, "m4a"))
    theirs = flv_aac_packets(nginx.recording("rec-1"))
    start = theirs.index(ours[0])
    overlap = min(len(ours), len(theirs) - start)
    print(f"\nm4a {len(ours)} frames, nginx-rtmp {len(theirs)}, first match at {start}, {overlap} compared")
    assert overlap >= len(ours) - 2 and theirs[start : start + overlap] == ours[:overlap]


def test_files_are_private_and_downloadable_with_ranges(recorded: dict[str, Any], daemon: BridgeDaemon) -> None:
    path = _file(recorded, "wav")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(recorded["dir"]).st_mode) == 0o700
    url = daemon.base_url + next(e["url"] for e in recorded["listing"] if e["format"] == "wav")
    with urllib.request.urlopen(urllib.request.Request(url)) as reply:
        assert reply.headers["Content-Type"] == "audio/wav" and reply.read() == path.read_bytes()
    request = urllib.request.Request(url, headers={"Range": "bytes=40-139"})
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 206 and reply.read() == path.read_bytes()[40:140]
    status, error = daemon.request("GET", "/api/v1/calls/rec-1/recordings/rec-1_other.wav")
    assert status == 404 and error["error"]["field"] == "name"


def test_listen_streams_the_live_call_as_adts_to_a_ticket(
    daemon: BridgeDaemon, nginx: NginxRtmp, sip_domain: Kamailio, account: SipAccount
) -> None:
    """What a player gets from the listen URL, decoded by FFmpeg: the far end's 440 Hz, live."""
    body = call_body("listen-1", "listen-1", nginx, sip_domain, account)
    status, reply = daemon.request("POST", "/api/v1/calls", body)
    assert status == 201, reply
    daemon.wait_state("listen-1", {"ESTABLISHED"})
    try:
        status, ticket = daemon.request("GET", "/api/v1/calls/listen-1/tickets?purpose=listen")
        assert status == 200 and ticket["url"].startswith("/api/v1/calls/listen-1/listen?ticket=")
        started = time.monotonic()
        with urllib.request.urlopen(daemon.base_url + ticket["url"], timeout=10) as reply:
            assert reply.headers["Content-Type"] == "audio/aac"
            first_byte = reply.read(1)
            first_at = time.monotonic() - started
            data = first_byte
            while time.monotonic() - started < 3.0:
                data += reply.read1(4096)
        with av.open(io.BytesIO(data), format="aac") as container:
            stream = container.streams.audio[0]
            samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
        heard = dominant_frequency(samples[-stream.rate :], stream.rate)
        print(
            f"\nlisten: first byte {first_at * 1000:.0f} ms, {len(samples) / stream.rate:.2f} s in 3 s, {heard:.1f} Hz"
        )
        assert abs(heard - 440) <= 5 and first_at < 1.0
        assert len(samples) / stream.rate >= 2.0
    finally:
        daemon.request("DELETE", "/api/v1/calls/listen-1")
        daemon.wait_gone("listen-1")
