"""Calls that arrive as WebSocket media streams (Twilio, ACS, RingCentral), checked in what nginx-rtmp received.

Scripted senders (tests/support/ingest_senders.py) replay each platform's messages over a
real WebSocket at real-time pace; nginx-rtmp records what it received and FFmpeg (PyAV)
decodes the recording: tones by FFT, timestamp gaps, length against wall time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.audio import PulledAudio, read_recording
from tests.support.daemon import BridgeDaemon
from tests.support.ingest_senders import Script, Sender, SendResult
from tests.support.peers import NginxRtmp
from tests.support.secrets import register_secret
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
TWILIO_TOKEN = "9f3b1c2d4e5f60718293a4b5c6d7e8f9"
ROUTE_TOKEN = "route-token-5d41402abc4b2a76b9719d911017c592"
WEBHOOK_SECRET = "ingest-webhook-secret-0123456789"
for _secret in (TWILIO_TOKEN, ROUTE_TOKEN):
    register_secret(_secret)


def routes(nginx: NginxRtmp, webhooks: WebhookReceiver) -> str:
    rec = f"rtmp://127.0.0.1:{nginx.rtmp_port}/rec"
    sections = [f'[apps.ingest]\nurl = "{webhooks.url}"\nsecret = "{WEBHOOK_SECRET}"\n']
    for name, protocol, secret in (
        ("twilio", "twilio", TWILIO_TOKEN),
        ("acs", "acs", ROUTE_TOKEN),
        ("rc", "ringcentral", ROUTE_TOKEN),
    ):
        sections.append(
            f'[ingest.routes.{name}]\nprotocol = "{protocol}"\nsecret = "{secret}"\nrtmp_url = "{rec}"\n'
            f'stream = "{name}-{{callId}}"\napp_key = "ingest"\n'
        )
    return "\n".join(sections)


@pytest.fixture(scope="module")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def bridge(workdir: Path, nginx: NginxRtmp, webhooks: WebhookReceiver) -> Iterator[BridgeDaemon]:
    daemon = BridgeDaemon(workdir / "ingest", extra_config=routes(nginx, webhooks))
    yield daemon
    daemon.stop()


def ws_url(daemon: BridgeDaemon, route: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{daemon.rest_port}/ingest/{route}{query}"


def wall(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def ended_call(daemon: BridgeDaemon, call_id: str, timeout: float = 15) -> dict[str, Any]:
    daemon.wait_gone(call_id, timeout=timeout)
    call = daemon.call(call_id)
    assert call is not None
    return call


def level_db(audio: PulledAudio, frequency: float, start: float, end: float) -> float:
    """The spectrum's peak within 15 Hz of ``frequency`` over [start, end), in dB above the median bin."""
    block = audio.segment(start, end).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(block * np.hanning(len(block))))
    bins = np.fft.rfftfreq(len(block), 1 / audio.sample_rate)
    return float(20 * np.log10(spectrum[np.abs(bins - frequency) <= 15].max() / np.median(spectrum)))


@dataclass
class Bridged:
    """One scripted stream and what came of it."""

    name: str
    call_id: str
    tones: tuple[float, ...]
    result: SendResult
    call: dict[str, Any]
    audio: PulledAudio

    @property
    def wall_seconds(self) -> float:
        """From ESTABLISHED to the stream's unpublish (the published call, as for SIP calls)."""
        established = wall(next(c["at"] for c in self.call["history"] if c["state"] == "ESTABLISHED"))
        return wall(next(c["at"] for c in self.call["streamHistory"] if c["state"] == "UNPUBLISHED")) - established

    def row(self) -> str:
        levels = ", ".join(
            f"{f:.0f} Hz {level_db(self.audio, f, 0.5, self.audio.seconds - 0.5):.0f} dB" for f in (440.0, 660.0, 880.0)
        )
        error = (self.audio.timeline_seconds / self.wall_seconds - 1) * 100
        c = self.call["counters"]
        return (
            f"{self.name:14} {self.audio.codec} {self.audio.sample_rate} Hz, {self.audio.timeline_seconds:.3f} s vs "
            f"{self.wall_seconds:.3f} s wall ({error:+.2f} %), max gap {self.audio.max_timestamp_gap_ms:.1f} ms, "
            f"{levels}; "
            f"sent {self.result.media_sent} dropped {self.result.media_dropped} swapped {self.result.swapped}; "
            f"packets {c['packets']} lost {c['lost']} late {c['latePackets']} tracks {c.get('ingestTracks')}"
        )


SCRIPTS = {
    # name: (protocol, route, query, script, call id)
    "twilio-impaired": (
        "twilio",
        "twilio",
        "",
        Script(seconds=9.0, pause_at=3.0, pause_seconds=1.0, drop=0.05, reorder=0.05),
        "CA" + "1" * 32,
    ),
    "twilio-2-tracks": ("twilio", "twilio", "", Script(seconds=9.0, tones=(440.0, 880.0)), "CA" + "2" * 32),
    "acs-16k": ("acs", "acs", f"?token={ROUTE_TOKEN}", Script(seconds=9.0, rate=16000), "acs-16k"),
    "acs-24k-unmixed": (
        "acs",
        "acs",
        f"?token={ROUTE_TOKEN}&callId=acs-24k",
        Script(seconds=9.0, rate=24000, tones=(440.0, 880.0)),
        "acs-24k",
    ),
    "rc-2-perspectives": (
        "ringcentral",
        "rc",
        f"?token={ROUTE_TOKEN}",
        Script(seconds=9.0, tones=(440.0, 880.0), parameters={"sessionId": "s7"}),
        "rc-call-1-s7",
    ),
}


@pytest.fixture(scope="module")
def bridged(bridge: BridgeDaemon, nginx: NginxRtmp) -> dict[str, Bridged]:
    """Every protocol's scripted stream, all at once; the recordings nginx-rtmp made of them."""
    senders = {}
    for name, (protocol, route, query, script, call_id) in SCRIPTS.items():
        url = ws_url(bridge, route, query)
        senders[name] = Sender(protocol, url, TWILIO_TOKEN if protocol == "twilio" else ROUTE_TOKEN, script, call_id)
        if protocol == "acs":
            senders[name].headers = {"x-ms-call-connection-id": call_id, "x-ms-call-correlation-id": "corr-1"}
    for sender in senders.values():
        sender.start()
    results = {name: sender.join() for name, sender in senders.items()}
    found = {}
    for name, (_protocol, route, _query, script, call_id) in SCRIPTS.items():
        call = ended_call(bridge, call_id)
        audio = read_recording(str(nginx.recording(f"{route}-{call_id}")))
        found[name] = Bridged(name, call_id, script.tones, results[name], call, audio)
    print("\n" + "\n".join(b.row() for b in found.values()))
    return found


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_each_protocol_is_published_continuously_with_its_tones(name: str, bridged: dict[str, Bridged]) -> None:
    got = bridged[name]
    ends = "the sender closed the connection (1000)" if name.startswith("acs") else "stop"
    assert got.call["state"] == "FINISH" and ends in got.call["reason"], got.call["reason"]
    assert got.result.close_code == 1000
    assert got.call["source"]["kind"] == "ingest" and got.call["streamState"] == "UNPUBLISHED"
    assert got.audio.max_timestamp_gap_ms <= 30
    assert abs(got.audio.timeline_seconds / got.wall_seconds - 1) <= 0.01
    end = got.audio.seconds - 0.5
    levels = [level_db(got.audio, tone, 0.5, end) for tone in got.tones]
    assert min(levels) > 40 and max(levels) - min(levels) < 10, got.row()  # every track heard alike in the mix
    assert level_db(got.audio, 660.0, 0.5, end) < min(levels) - 20


def test_a_sender_pause_drops_and_reordering_leave_no_gap(bridged: dict[str, Bridged]) -> None:
    got = bridged["twilio-impaired"]
    counters = got.call["counters"]
    assert got.result.media_dropped > 0 and got.result.swapped > 0
    # counted from the numbering, not assumed (a drop after the last packet received cannot be seen)
    assert got.result.media_dropped - 2 <= counters["lost"] <= got.result.media_dropped
    assert counters["latePackets"] > 0  # the paused second arrived at once, too late to play
    assert got.audio.max_timestamp_gap_ms <= 30
    quiet = level_db(got.audio, 440.0, 3.5, 4.0)  # inside the pause: concealment fades, then silence
    assert quiet < level_db(got.audio, 440.0, 1.0, 2.5) - 20


def test_webhooks_tell_every_ingest_call_once(bridged: dict[str, Bridged], webhooks: WebhookReceiver) -> None:
    deadline = time.monotonic() + 10
    wanted = {b.call_id for b in bridged.values()}
    while time.monotonic() < deadline:
        finished = [e for e in webhooks.events if e.get("type") == "call.state" and e.get("state") == "FINISH"]
        if {e["callId"] for e in finished} >= wanted:
            break
        time.sleep(0.1)
    finished_ids = [e["callId"] for e in finished if e["callId"] in wanted]
    assert sorted(finished_ids) == sorted(wanted)
