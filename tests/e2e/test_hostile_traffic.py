"""Hostile traffic against a running daemon with a call up: a scanner's sweeps, garbage and oversized
datagrams on the SIP port, and RTP from a stranger on the call's RTP port.

Judged from outside: what the scanner's socket received (nothing), the daemon's memory as the
kernel reports it, /metrics parsed by prometheus_client, and the call's stream pulled from
nginx-rtmp (the tone, no gap, no trace of the stranger's 1 kHz).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.audio import PulledAudio, dominant_frequency, pull_audio
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.silent_uas import ToneUas
from tests.support.wire import rtp, sdp_audio_address, ulaw_encode

pytestmark = pytest.mark.e2e
SCANNER = "127.0.0.2"  # loopback, but not the SIP domain's address (127.0.0.1)


@pytest.fixture(scope="module")
def tone_far_end(workdir: Path, account: SipAccount) -> Iterator[tuple[ToneUas, Kamailio]]:
    uas = ToneUas()
    domain = Kamailio(workdir / "hostile-domain", uas.port, account)
    yield uas, domain
    domain.stop()
    uas.stop()


@pytest.fixture(scope="module")
def target(workdir: Path) -> Iterator[BridgeDaemon]:
    daemon = BridgeDaemon(workdir / "hostile", level="info")
    yield daemon
    daemon.stop()


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])  # type: ignore[index]


def kernel_drops(port: int) -> int:
    """Datagrams the kernel dropped on the daemon's SIP socket (its receive buffer was full): the drops
    column of /proc/net/udp for the socket bound to 127.0.0.1:port."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}":
            return int(fields[-1])
    raise AssertionError(f"no UDP socket on 127.0.0.1:{port}")


def dropped(daemon: BridgeDaemon) -> dict[str, float]:
    counts = {}
    for family in text_string_to_metric_families(daemon.raw("GET", "/metrics")):
        for sample in family.samples:
            if sample.name == "bridge_sip_dropped_total":
                counts[sample.labels["reason"]] = sample.value
    return counts


def sweep(index: int, method: str, port: int) -> bytes:
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    body = body if method == "INVITE" else b""
    return (
        f"{method} sip:{index}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {SCANNER}:5070;branch=z9hG4bKscan{index}\r\n"
        f"From: <sip:scan@{SCANNER}>;tag=s{index}\r\nTo: <sip:{index}@127.0.0.1>\r\nCall-ID: scan-{index}@{SCANNER}\r\n"
        f"CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContact: <sip:scan@{SCANNER}:5070>\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def flood(port: int) -> dict[str, int]:
    """The scanner's traffic, about 4000 datagrams a second; what it sent of each kind, and what came back."""
    scanner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    scanner.bind((SCANNER, 0))
    rng = np.random.default_rng(5)
    sent = {"sweeps": 0, "garbage": 0, "oversized": 0}
    for index in range(20000):
        kind = index % 20
        if kind < 17:
            scanner.sendto(sweep(index, ("OPTIONS", "INVITE", "REGISTER")[kind % 3], port), ("127.0.0.1", port))
            sent["sweeps"] += 1
        elif kind < 19:
            scanner.sendto(rng.integers(0, 256, int(rng.integers(1, 1400)), np.uint8).tobytes(), ("127.0.0.1", port))
            sent["garbage"] += 1
        else:
            scanner.sendto(b"OPTIONS " + b"x" * 30000, ("127.0.0.1", port))
            sent["oversized"] += 1
        if index % 200 == 199:
            time.sleep(0.05)
    scanner.settimeout(1.0)
    answers = 0
    try:
        while True:
            scanner.recv(65535)
            answers += 1
    except TimeoutError:
        pass
    scanner.close()
    sent["answers"] = answers
    return sent


def test_a_scanner_gets_no_answer_no_state_and_no_say_in_a_live_call(
    target: BridgeDaemon, tone_far_end: tuple[ToneUas, Kamailio], nginx: NginxRtmp, account: SipAccount
) -> None:
    _uas, domain = tone_far_end
    status, reply = target.request("POST", "/RESTCall/call", call_body("scanned", "scanned", nginx, domain, account))
    assert status == 200, reply
    target.wait_state("scanned", {"ESTABLISHED"})
    time.sleep(2.0)
    pid = target.process.proc.pid
    before, kernel_before = rss_kib(pid), kernel_drops(target.sip_port)
    heard: list[PulledAudio] = []
    player = threading.Thread(target=lambda: heard.append(pull_audio(f"{nginx.url}/scanned", seconds=9.0)))
    player.start()
    started = time.monotonic()
    sent = flood(target.sip_port)
    flood_seconds = time.monotonic() - started
    player.join(30)
    time.sleep(1.5)
    after, kernel = rss_kib(pid), kernel_drops(target.sip_port) - kernel_before
    counts = {reason: int(count) for reason, count in dropped(target).items() if count}
    audio = heard[0]
    tone = dominant_frequency(audio.samples, audio.sample_rate)
    print(
        f"\nscanner sent {sent} in {flood_seconds:.1f} s; the daemon dropped {counts}, the kernel {kernel}; "
        f"daemon RSS {before} -> {after} KiB; the call's stream during it: {audio.seconds:.1f} s, {tone:.1f} Hz, "
        f"largest gap {audio.max_timestamp_gap_ms:.1f} ms"
    )
    assert sent["answers"] == 0
    # every datagram accounted for: dropped by the daemon unread (oversized first, then by source), or by the
    # kernel when the socket's buffer was full; none parsed, none answered
    assert sum(counts.values()) + kernel == sent["sweeps"] + sent["garbage"] + sent["oversized"]
    assert set(counts) == {"unknown source", "oversized"}
    assert after - before < 8 * 1024  # no state kept per request: memory back near where it was
    assert abs(dominant_frequency(audio.samples, audio.sample_rate) - 440) <= 5
    assert audio.max_timestamp_gap_ms <= 30 and target.call("scanned")["state"] == "ESTABLISHED"  # type: ignore[index]
    summaries = [line for line in target.log().splitlines() if "SIP traffic dropped" in line]
    assert 1 <= len(summaries) <= 2, summaries  # one line a minute, not one per packet
    # the SIP domain of the active call is still answered
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.settimeout(2.0)
    probe.sendto(
        sweep(1, "OPTIONS", target.sip_port).replace(SCANNER.encode(), b"127.0.0.1"), ("127.0.0.1", target.sip_port)
    )
    assert probe.recv(65535).startswith(b"SIP/2.0 200 OK")
    probe.close()
    target.request("POST", "/RESTCall/terminate", {"callId": "scanned"})
    target.wait_gone("scanned")


def test_rtp_from_a_stranger_is_ignored_and_counted(
    target: BridgeDaemon, tone_far_end: tuple[ToneUas, Kamailio], nginx: NginxRtmp, account: SipAccount
) -> None:
    uas, domain = tone_far_end
    offers = len(uas.offers)
    status, reply = target.request("POST", "/RESTCall/call", call_body("stranger", "stranger", nginx, domain, account))
    assert status == 200, reply
    target.wait_state("stranger", {"ESTABLISHED"})
    bridge_rtp = sdp_audio_address(uas.offers[offers])
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    loud = (np.sin(2 * np.pi * 1000 * np.arange(160) / 8000) * 30000).astype(np.int16)

    stop = threading.Event()

    def inject() -> None:
        sequence = 0
        while not stop.is_set():  # the far end's own SSRC and numbering, a second ahead: a hijack attempt
            stranger.sendto(rtp(0, sequence + 50, (sequence + 50) * 160, 0x7070, ulaw_encode(loud)), bridge_rtp)
            sequence += 1
            time.sleep(0.02)

    thread = threading.Thread(target=inject)
    thread.start()
    try:
        audio = pull_audio(f"{nginx.url}/stranger", seconds=5.0)
    finally:
        stop.set()
        thread.join()
        stranger.close()
    call = target.call("stranger")
    target.request("POST", "/RESTCall/terminate", {"callId": "stranger"})
    target.wait_gone("stranger")
    spectrum = np.abs(np.fft.rfft(audio.samples * np.hanning(len(audio.samples))))
    bins = np.fft.rfftfreq(len(audio.samples), 1 / audio.sample_rate)
    stranger_db = 20 * np.log10(spectrum[np.abs(bins - 1000) < 10].max() / spectrum[np.abs(bins - 440) < 10].max())
    assert call is not None
    foreign = call["counters"]["foreignPackets"]
    print(f"\nstranger's 1 kHz {stranger_db:.1f} dB below the far end's 440 Hz; foreignPackets {foreign}")
    assert stranger_db < -40 and abs(dominant_frequency(audio.samples, audio.sample_rate) - 440) <= 5
    assert foreign > 100
