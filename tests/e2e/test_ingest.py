"""Calls that arrive as WebSocket media streams (Twilio, ACS, RingCentral), checked in what nginx-rtmp received.

Scripted senders (tests/support/ingest_senders.py) replay each platform's messages over a
real WebSocket at real-time pace; nginx-rtmp records what it received and FFmpeg (PyAV)
decodes the recording: tones by FFT, timestamp gaps, length against wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Start, VoiceResponse
from websockets.asyncio.client import connect

from tests.support.audio import PulledAudio, decode_file, read_recording
from tests.support.daemon import BridgeDaemon
from tests.support.ingest_senders import Script, Sender, SendResult
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.secrets import register_secret
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.websocket_frames import client_frame, opening_handshake

pytestmark = pytest.mark.e2e
TWILIO_TOKEN = "9f3b1c2d4e5f60718293a4b5c6d7e8f9"
ROUTE_TOKEN = "route-token-5d41402abc4b2a76b9719d911017c592"
WEBHOOK_SECRET = "ingest-webhook-secret-0123456789"
for _secret in (TWILIO_TOKEN, ROUTE_TOKEN):
    register_secret(_secret)


RECORDED_ROUTES = ("twilio", "acs", "rc")


def routes(nginx: NginxRtmp, webhooks: WebhookReceiver, recordings: Path) -> str:
    rec = f"rtmp://127.0.0.1:{nginx.rtmp_port}/rec"
    sections = [f'[apps.ingest]\nurl = "{webhooks.url}"\nsecret = "{WEBHOOK_SECRET}"\n']
    for name, protocol, secret in (
        ("twilio", "twilio", TWILIO_TOKEN),
        ("stereo", "twilio", TWILIO_TOKEN),
        ("acs", "acs", ROUTE_TOKEN),
        ("rc", "ringcentral", ROUTE_TOKEN),
    ):
        sections.append(
            f'[ingest.routes.{name}]\nprotocol = "{protocol}"\nsecret = "{secret}"\nrtmp_url = "{rec}"\n'
            f'stream = "{name}-{{callId}}"\napp_key = "ingest"\n'
            + ('layout = "stereo"\n' if name == "stereo" else "")
            + ('record = ["wav"]\n' if name in RECORDED_ROUTES else "")
        )
    return "\n".join(sections) + f'\n[recording]\ndirectory = "{recordings}"\npath = "{{callId}}_{{track}}.{{ext}}"\n'


@pytest.fixture(scope="module")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def bridge(workdir: Path, nginx: NginxRtmp, webhooks: WebhookReceiver) -> Iterator[BridgeDaemon]:
    daemon = BridgeDaemon(workdir / "ingest", extra_config=routes(nginx, webhooks, workdir / "ingest-recordings"))
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


def tone_dbfs(audio: PulledAudio, frequency: float, start: float, end: float) -> float:
    """The amplitude of the strongest component within 15 Hz of ``frequency`` over [start, end), in dB
    full scale (a sine of amplitude 1.0 is 0 dB; digital silence is -240 dB, not NaN)."""
    block = audio.segment(start, end).astype(np.float64)
    window = np.hanning(len(block))
    spectrum = np.abs(np.fft.rfft(block * window)) * 2 / window.sum()
    bins = np.fft.rfftfreq(len(block), 1 / audio.sample_rate)
    return float(20 * np.log10(max(spectrum[np.abs(bins - frequency) <= 15].max(), 1e-12)))


def ingest_counts(daemon: BridgeDaemon, name: str) -> Counter[tuple[str, ...]]:
    """One of the ingest counters in /metrics, parsed by prometheus_client's own text parser."""
    counts: Counter[tuple[str, ...]] = Counter()
    for family in text_string_to_metric_families(daemon.raw("GET", "/metrics")):
        for sample in family.samples:
            if sample.name == f"{name}_total":
                labels = sample.labels
                outcome = labels.get("status") or labels["code"]
                counts[(labels["route"], labels["protocol"], outcome)] = int(sample.value)
    return counts


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
        # 0.8 s: a withheld message must come back later than its play time but within the playout's
        # 1 s resync bound (rtp/playout.py), or the burst is re-anchored instead of dropped as late
        Script(seconds=9.0, pause_at=3.0, pause_seconds=0.8, drop=0.05, reorder=0.05),
        "CA" + "1" * 32,
    ),
    "twilio-2-tracks": ("twilio", "twilio", "", Script(seconds=9.0, tones=(440.0, 880.0)), "CA" + "2" * 32),
    "twilio-stereo": ("twilio", "stereo", "", Script(seconds=9.0, tones=(440.0, 880.0)), "CA" + "b" * 32),
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


def channels_of(path: Path) -> tuple[int, np.ndarray]:  # type: ignore[type-arg]
    """Every channel of a recording, decoded by FFmpeg: (sample rate, channels x samples)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().reshape(-1, frame.samples) for frame in container.decode(stream)]
        return stream.codec_context.sample_rate, np.concatenate(frames, axis=1)


def test_stereo_layout_puts_the_first_track_left_and_the_second_right(
    bridged: dict[str, Bridged], nginx: NginxRtmp
) -> None:
    rate, channels = channels_of(nginx.recording(f"stereo-{bridged['twilio-stereo'].call_id}"))
    assert channels.shape[0] == 2
    levels = []
    for channel in channels:
        audio = PulledAudio("aac", rate, channel.astype(np.float32), 0.0, True)
        levels.append({f: level_db(audio, f, 0.5, audio.seconds - 0.5) for f in (440.0, 880.0)})
    print(f"\nstereo: left {levels[0]}, right {levels[1]}")
    assert levels[0][440.0] > levels[0][880.0] + 30  # inbound on the left
    assert levels[1][880.0] > levels[1][440.0] + 30  # outbound on the right


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
    assert counters["latePackets"] > 0  # the paused messages arrived at once, too late to play
    assert got.audio.max_timestamp_gap_ms <= 30
    quiet = tone_dbfs(got.audio, 440.0, 3.45, 3.75)  # inside the pause: concealment fades, then silence
    assert quiet < tone_dbfs(got.audio, 440.0, 1.0, 2.5) - 20


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


def test_the_frames_channel_to_the_workers_is_exported_and_dropped_none(
    bridged: dict[str, Bridged], bridge: BridgeDaemon
) -> None:
    """Every worker has its drop counter in /metrics (prometheus_client's parser), and with the
    workers keeping up it stayed at zero while every stream above played without a gap."""
    dropped = {
        sample.labels["worker"]: sample.value
        for family in text_string_to_metric_families(bridge.raw("GET", "/metrics"))
        for sample in family.samples
        if sample.name == "bridge_ingest_frames_dropped_total"
    }
    assert dropped and set(dropped.values()) == {0.0}, dropped


# -- authentication, ends, bad input ---------------------------------------------------------


def test_wrong_or_missing_credentials_are_refused_before_any_call(bridge: BridgeDaemon) -> None:
    before = bridge.active_ids()
    twilio_url = ws_url(bridge, "twilio")
    forged = Sender("twilio", twilio_url, "not-the-auth-token-0123456789abcd", Script(seconds=0.2))
    unsigned = Sender("twilio", twilio_url, TWILIO_TOKEN, Script(seconds=0.2))
    unsigned.signed_headers = lambda: {}  # type: ignore[method-assign]
    attempts = {
        "forged signature": forged,
        "no signature": unsigned,
        "wrong token": Sender("acs", ws_url(bridge, "acs", "?token=guess"), ROUTE_TOKEN, Script(seconds=0.2)),
        "no token": Sender("ringcentral", ws_url(bridge, "rc"), ROUTE_TOKEN, Script(seconds=0.2)),
        "unknown route": Sender("acs", ws_url(bridge, "nope", f"?token={ROUTE_TOKEN}"), ROUTE_TOKEN, Script()),
    }
    refused_before = ingest_counts(bridge, "bridge_ingest_refused")
    statuses = {name: sender.start().join().status for name, sender in attempts.items()}
    print(f"\nrefused upgrades: {statuses}")
    assert statuses == {name: 404 if name == "unknown route" else 403 for name in attempts}
    refused = ingest_counts(bridge, "bridge_ingest_refused")
    refused.subtract(refused_before)
    assert +refused == {
        ("twilio", "twilio", "403"): 2,
        ("acs", "acs", "403"): 1,
        ("rc", "ringcentral", "403"): 1,
        ("(unknown)", "", "404"): 1,  # the sender's route name never becomes a label
    }
    assert bridge.active_ids() == before
    status, body = bridge.request("GET", "/api/v1/calls?limit=200")
    assert status == 200 and not [c for c in body["calls"] if c["callId"] == "CA" + "0" * 32]


def test_torn_and_closed_connections_end_the_call_with_the_reason(
    nginx: NginxRtmp, bridge: BridgeDaemon, webhooks: WebhookReceiver
) -> None:
    torn = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=5, abort_at=2.0), "CA" + "3" * 32)
    closed = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=2, stop=False), "CA" + "4" * 32)
    for sender in (torn.start(), closed.start()):
        sender.join()
    torn_call, closed_call = ended_call(bridge, torn.call_sid), ended_call(bridge, closed.call_sid)
    print(f"\ntorn: {torn_call['reason']}; closed: {closed_call['reason']}")
    assert torn_call["state"] == "FAILED" and "torn down (1006) without a stop message" in torn_call["reason"]
    assert closed_call["state"] == "FINISH" and "closed the connection (1000)" in closed_call["reason"]
    for call in (torn_call, closed_call):
        assert call["streamState"] == "UNPUBLISHED"
    recorded = read_recording(str(nginx.recording(f"twilio-{torn.call_sid}")))
    assert 1.8 <= recorded.timeline_seconds <= 2.6  # what came before the tear, published and closed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        e["callId"] == torn.call_sid and e.get("state") == "FAILED" for e in webhooks.events
    ):
        time.sleep(0.1)
    failed = [e for e in webhooks.events if e["callId"] == torn.call_sid and e.get("state") == "FAILED"]
    assert len(failed) == 1 and "torn down" in failed[0]["reason"]
    deadline = time.monotonic() + 5.0  # the workers read these connections; none is left open there
    while worker_read_streams(bridge) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_read_streams(bridge) == 0


def _media_before_start(sender: Sender) -> list[str]:
    return [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}), sender.media(0, 0)]


BAD_INPUTS: dict[str, tuple[str, str, Script, int]] = {
    # name: (protocol, route, script, the close code expected)
    "invalid JSON": ("twilio", "twilio", Script(seconds=1, before_media=["{not json"]), 1007),
    "unknown event": ("twilio", "twilio", Script(seconds=1, before_media=['{"event": "hangup"}']), 1008),
    "bad base64": (
        "twilio",
        "twilio",
        Script(seconds=1, before_media=['{"event":"media","media":{"chunk":"1","timestamp":"0","payload":"@@"}}']),
        1007,
    ),
    "odd PCM size": (
        "acs",
        "acs",
        Script(
            seconds=1,
            rate=16000,
            before_media=[
                json.dumps(
                    {
                        "kind": "AudioData",
                        "audioData": {"timestamp": "2026-12-03T12:00:00Z", "data": "AAAA" * 10 + "AA=="},
                    }
                )
            ],
        ),
        1007,
    ),
    "oversized message": ("twilio", "twilio", Script(seconds=1, before_media=["x" * 100_000]), 1009),
    "binary frame": ("ringcentral", "rc", Script(seconds=1, before_media=[b"\x00\x01\x02"]), 1003),
    "flood": (
        "twilio",
        "twilio",
        Script(seconds=2, during_media=lambda n: ['{"event":"mark","mark":{"name":"m"}}'] * 700 if n == 5 else []),
        1008,
    ),
    "media before start": ("twilio", "twilio", Script(seconds=1), 1008),
}


def test_bad_input_closes_with_its_code_while_a_neighbour_streams_on(nginx: NginxRtmp, bridge: BridgeDaemon) -> None:
    neighbour = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=12.0), "CA" + "5" * 32).start()
    bridge.wait_state(neighbour.call_sid, {"ESTABLISHED"}, timeout=5)
    outcomes = {}
    closed_before = ingest_counts(bridge, "bridge_ingest_closed")
    for index, (name, (protocol, route, script, _code)) in enumerate(BAD_INPUTS.items()):
        query = "" if protocol == "twilio" else f"?token={ROUTE_TOKEN}&callId=bad-{index}"
        sender = Sender(
            protocol,
            ws_url(bridge, route, query),
            TWILIO_TOKEN if protocol == "twilio" else ROUTE_TOKEN,
            script,
            f"CA{index:032d}",
        )
        if name == "media before start":
            sender.opening = lambda sender=sender: _media_before_start(sender)  # type: ignore[method-assign]
        result = sender.start().join()
        call_id = sender.call_sid if protocol == "twilio" else f"bad-{index}" if protocol == "acs" else "rc-call-1-s1"
        call = ended_call(bridge, call_id, timeout=5) if bridge.call(call_id) is not None else None
        outcomes[name] = (result.close_code, call["state"] if call else None, call["reason"] if call else "")
    neighbour.join()
    closed = ingest_counts(bridge, "bridge_ingest_closed")
    closed.subtract(closed_before)
    seen_by_senders = Counter((BAD_INPUTS[name][1], BAD_INPUTS[name][0], str(o[0])) for name, o in outcomes.items())
    seen_by_senders[("twilio", "twilio", "1000")] += 1  # the neighbour's stop
    assert +closed == seen_by_senders
    print("\nbad input → close code, call:\n" + "\n".join(f"  {k}: {v}" for k, v in outcomes.items()))
    assert {name: int(outcome[0] or 0) for name, outcome in outcomes.items()} == {
        n: c[3] for n, c in BAD_INPUTS.items()
    }
    for name, (_code, state, reason) in outcomes.items():
        if name != "media before start":  # that one never became a call
            assert state == "FAILED" and f"protocol error ({BAD_INPUTS[name][3]})" in reason, (name, reason)
    assert outcomes["media before start"][1] is None
    healthy = ended_call(bridge, neighbour.call_sid)
    audio = read_recording(str(nginx.recording(f"twilio-{neighbour.call_sid}")))
    assert healthy["state"] == "FINISH" and audio.max_timestamp_gap_ms <= 30
    assert abs(audio.timeline_seconds / (neighbour.result.ended_at - neighbour.result.started_at) - 1) <= 0.02
    assert level_db(audio, 440.0, 0.5, audio.seconds - 0.5) > 60
    windows = [level_db(audio, 440.0, t, t + 0.5) for t in np.arange(0.5, audio.seconds - 1.0, 0.5)]
    assert min(windows) > 40  # the tone in every half second: never disturbed


def test_a_standard_client_that_fragments_pings_and_offers_compression(nginx: NginxRtmp, bridge: BridgeDaemon) -> None:
    """Another WebSocket implementation (the websockets package): its permessage-deflate offer is
    declined, its pings answered, and messages it splits into frames arrive whole (RFC 6455 5.4)."""
    sender = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=3.0), "CA" + "4" * 32)
    outcome: dict[str, Any] = {}

    async def converse() -> None:
        async with connect(sender.url, additional_headers=sender.signed_headers(), compression="deflate") as socket:
            outcome["extensions"] = socket.response.headers.get("Sec-WebSocket-Extensions")
            for text in sender.opening():
                await socket.send(text)
            start, pongs = time.monotonic(), []
            for n in range(150):
                await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
                text = sender.media(0, n)
                if n % 3 == 0:  # one message as three frames: a continuation, then the final one
                    third = len(text) // 3
                    await socket.send(iter([text[:third], text[third : 2 * third], text[2 * third :]]))
                else:
                    await socket.send(text)
                if n % 25 == 0:
                    pongs.append(await asyncio.wait_for(await socket.ping(f"p{n}".encode()), 2.0))
            for text in sender.closing():
                await socket.send(text)
            await socket.wait_closed()
            outcome.update(
                pongs=pongs, close=(socket.close_code, socket.close_reason), seconds=time.monotonic() - start
            )

    asyncio.run(converse())
    call = ended_call(bridge, sender.call_sid)
    audio = read_recording(str(nginx.recording(f"twilio-{sender.call_sid}")))
    assert outcome["extensions"] is None and len(outcome["pongs"]) == 6  # each ping's own pong came back
    assert outcome["close"][0] == 1000 and call["state"] == "FINISH"
    assert audio.max_timestamp_gap_ms <= 30 and audio.seconds >= 2.8  # every fragmented message played
    windows = [level_db(audio, 440.0, t, t + 0.5) for t in np.arange(0.5, audio.seconds - 1.0, 0.5)]
    assert min(windows) > 40


def test_a_sender_that_never_reads_our_pongs_is_cut_off(bridge: BridgeDaemon) -> None:
    """Pings are answered, but what a sender leaves unread is bounded: past 256 KiB of our pongs
    waiting, the connection is dropped and the call ends FAILED, the daemon serving on."""
    sender = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=1.0), "CA" + "3" * 32)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that stopped: small window, never read
    raw.settimeout(10)
    raw.connect(("127.0.0.1", bridge.rest_port))
    cut, pings = False, client_frame(0x9, b"p" * 125) * 1000
    try:
        raw.sendall(opening_handshake(f"127.0.0.1:{bridge.rest_port}", "/ingest/twilio", sender.signed_headers()))
        assert raw.recv(12) == b"HTTP/1.1 101"
        for text in sender.opening():
            raw.sendall(client_frame(0x1, text.encode()))
        bridge.wait_state(sender.call_sid, {"ESTABLISHED", "PENDING", "TRYING"}, timeout=5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            raw.sendall(pings)  # 131 KB of pings a time, none of the pongs read
    except (ConnectionResetError, BrokenPipeError):
        cut = True
    finally:
        raw.close()
    call = ended_call(bridge, sender.call_sid)
    assert cut and call["state"] == "FAILED" and "does not read" in call["reason"], call["reason"]
    status, _ = bridge.request("GET", "/api/v1/calls")
    assert status == 200


def worker_read_streams(bridge: BridgeDaemon) -> float:
    """Ingest WebSockets the media workers read, from /metrics (prometheus_client's parser)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(bridge.raw("GET", "/metrics"))
        for sample in family.samples
        if sample.name == "bridge_media_worker_ingest_streams"
    )


def test_hanging_up_through_the_api_closes_the_websocket(bridge: BridgeDaemon) -> None:
    """The connection is read by the call's media worker once the call runs; a hang-up closes it from there."""
    sender = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=8.0), "CA" + "6" * 32).start()
    bridge.wait_state(sender.call_sid, {"ESTABLISHED"}, timeout=5)
    deadline = time.monotonic() + 3.0
    while worker_read_streams(bridge) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_read_streams(bridge) == 1, worker_read_streams(bridge)
    status, _ = bridge.request("DELETE", f"/api/v1/calls/{sender.call_sid}")
    result = sender.join()
    call = ended_call(bridge, sender.call_sid)
    assert status == 202
    assert result.close_code == 1000 and result.close_reason == "terminated by API request"
    assert result.ended_at - result.started_at < 4.0  # closed at once, not at the stream's end
    assert call["state"] == "FINISH" and call["reason"] == "terminated by API request"


def test_duplicate_call_ids_are_refused(bridge: BridgeDaemon) -> None:
    first = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=4.0), "CA" + "7" * 32).start()
    bridge.wait_state(first.call_sid, {"ESTABLISHED"}, timeout=5)
    second = (
        Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=1.0), first.call_sid).start().join()
    )
    by_query = Sender(
        "acs", ws_url(bridge, "acs", f"?token={ROUTE_TOKEN}&callId={first.call_sid}"), ROUTE_TOKEN, Script(seconds=1.0)
    )
    refused = by_query.start().join()
    first.join()
    call = ended_call(bridge, first.call_sid)
    assert second.close_code == 1008 and "already active" in second.close_reason
    assert refused.status == 409
    assert call["state"] == "FINISH" and "stop" in call["reason"]  # the first call was not disturbed


def test_dtmf_from_the_stream_reaches_the_timeline(bridge: BridgeDaemon, webhooks: WebhookReceiver) -> None:
    digit = '{"event":"dtmf","streamSid":"MZ","sequenceNumber":"9","dtmf":{"track":"inbound_track","digit":"7"}}'
    script = Script(seconds=2.0, during_media=lambda n: [digit] if n == 20 else [])
    sender = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, script, "CA" + "8" * 32).start()
    sender.join()
    call = ended_call(bridge, sender.call_sid)
    entries = [e for e in call["timeline"] if e["event"] == "dtmf"]
    assert len(entries) == 1 and entries[0]["via"] == "twilio" and entries[0]["digit"] == "7"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        e["callId"] == sender.call_sid and e.get("event") == "dtmf" for e in webhooks.events
    ):
        time.sleep(0.1)
    assert any(e["callId"] == sender.call_sid and e.get("event") == "dtmf" for e in webhooks.events)


# -- TwiML -----------------------------------------------------------------------------------


def _tree(element: ET.Element) -> tuple[Any, ...]:
    return (element.tag, sorted(element.attrib.items()), [_tree(child) for child in element])


def _post_form(url: str, form: dict[str, str], signature: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), method="POST", headers={"X-Twilio-Signature": signature}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_twiml_helper_answers_what_the_twilio_library_builds(bridge: BridgeDaemon) -> None:
    url = f"{bridge.base_url}/twiml/twilio?callId=room-9"
    form = {"CallSid": "CA" + "9" * 32, "From": "+14155550100", "To": "+16505550100", "AccountSid": "AC1"}
    status, body = _post_form(url, form, RequestValidator(TWILIO_TOKEN).compute_signature(url, form))
    assert status == 200, body
    expected = VoiceResponse()
    start = Start()
    stream = start.stream(url=f"ws://127.0.0.1:{bridge.rest_port}/ingest/twilio")
    for name, value in (("callId", "room-9"), ("from", "+14155550100"), ("to", "+16505550100")):
        stream.parameter(name=name, value=value)
    expected.append(start)
    expected.pause(length=14400)
    assert _tree(ET.fromstring(body)) == _tree(ET.fromstring(str(expected).encode()))
    forged, _ = _post_form(url, form, RequestValidator("x" * 32).compute_signature(url, form))
    tampered, _ = _post_form(
        url, {**form, "To": "+10000000000"}, RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    )
    assert (forged, tampered) == (403, 403)


@pytest.mark.parametrize(
    ("name", "tracks"),
    [
        ("twilio-2-tracks", ("inbound", "outbound")),
        ("rc-2-perspectives", ("participant", "conference")),
        ("acs-24k-unmixed", ("participant1", "participant2")),
    ],
)
def test_recordings_keep_each_track_apart_beside_the_mix(
    bridged: dict[str, Bridged], workdir: Path, name: str, tracks: tuple[str, str]
) -> None:
    """One WAV per track (first 440 Hz, second 880 Hz, as the sender sent them) and the mix, aligned:
    decoded by FFmpeg, the tones measured by FFT."""
    got = bridged[name]
    directory = workdir / "ingest-recordings"
    safe = got.call_id.replace("/", "_")
    levels, lengths = {}, {}
    for track in ("mix", *tracks):
        _codec, rate, _channels, samples, _gap = decode_file(str(directory / f"{safe}_{track}.wav"))
        audio = PulledAudio("pcm", rate, samples, 0.0, True)
        end = audio.seconds - 0.5
        levels[track] = {f: round(tone_dbfs(audio, f, 0.5, end)) for f in (440.0, 880.0)}
        lengths[track] = len(samples) / rate
    print(f"\n{name}: {levels}, lengths {lengths}")
    first, second = tracks
    assert levels[first][440.0] > levels[first][880.0] + 30
    assert levels[second][880.0] > levels[second][440.0] + 30
    assert abs(levels["mix"][440.0] - levels["mix"][880.0]) < 6
    assert max(lengths.values()) - min(lengths.values()) < 0.05  # aligned: a late track starts with silence


def test_a_stream_whose_worker_dies_is_closed_at_once_by_the_daemon(bridge: BridgeDaemon) -> None:
    """The worker reading the stream is killed: the daemon kept its own copy of the socket, so the
    sender hears 1011 at once and the call ends FAILED with the reason; the worker is restarted.
    (The module's last test: the other tests' calls are done.)"""
    sender = Sender("twilio", ws_url(bridge, "twilio"), TWILIO_TOKEN, Script(seconds=8.0), "CA" + "9" * 32).start()
    call = bridge.wait_state(sender.call_sid, {"ESTABLISHED"}, timeout=5)
    deadline = time.monotonic() + 3.0
    while worker_read_streams(bridge) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_read_streams(bridge) == 1
    killed_at = time.time()
    os.kill(call["mediaWorker"]["pid"], signal.SIGKILL)
    result = sender.join()
    ended = ended_call(bridge, sender.call_sid)
    assert result.close_code == 1011, (result.close_code, result.close_reason, result.error)
    assert result.ended_at - killed_at < 1.5  # not at the stream's end, nor after a close timeout
    assert ended["state"] == "FAILED" and ended["reason"] == "media worker failed (killed by SIGKILL)"
