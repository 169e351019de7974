"""Far ends that answer every INVITE and send no RTP, and record what they receive.

For conditions baresip cannot produce: a call that is up but silent (the bridge must hang up
after ``rtp.timeout``), a server that refuses with 503 (DNS failover); and for measuring at the
far end what the bridge sends: the SDP offer as received, every RTP packet with its arrival
time (read with tests/support/wire.py, not the bridge's code), and RFC 4733 digits.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from dataclasses import dataclass

from tests.support.sip_text import SipText
from tests.support.udp_peer import UdpPeer, sdp_body, tone_frame
from tests.support.wire import Rfc4733Digits, Rtp, read_rtp, rtp, sdp_audio_address


@dataclass(frozen=True)
class Arrival:
    at: float  # when the kernel received it (SO_TIMESTAMPNS, seconds): not when this busy process read it
    packet: Rtp


SO_TIMESTAMPNS = 35  # Linux <asm-generic/socket.h>; the control message type is the same number


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return float(seconds + nanoseconds / 1e9)
    return time.time()


class RtpCapture:
    """An RTP socket on 127.0.0.1 that keeps every packet it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.received: list[Arrival] = []
        self.unparsable = 0
        self.lock = threading.Lock()

    def serve(self, running: callable) -> None:  # type: ignore[valid-type]
        while running():
            try:
                data, ancillary, _, _ = self.sock.recvmsg(2048, 256)
            except (TimeoutError, OSError):
                continue
            packet = read_rtp(data)
            with self.lock:
                if packet is None:
                    self.unparsable += 1
                else:
                    self.received.append(Arrival(_kernel_time(ancillary), packet))

    def packets(self, payload_type: int | None = None) -> list[Arrival]:
        with self.lock:
            return [a for a in self.received if payload_type is None or a.packet.payload_type == payload_type]


class SilentUas(UdpPeer):
    """Answers INVITE with ``status`` (200 by default, with an SDP naming its capture port) and BYE and
    others with 200; never sends RTP. ``offers`` are the SDP bodies of the INVITEs it received."""

    def __init__(self, status: int = 200, unanswered: frozenset[str] = frozenset()) -> None:
        self.status = status
        self.unanswered = unanswered  # methods left without any response (a far end that went away)
        self.requests: list[str] = []
        self.offers: list[bytes] = []
        self.rtp = RtpCapture()
        super().__init__()
        self.start_thread(lambda: self.rtp.serve(lambda: self.running))

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        request = self.parse_request(data)
        if request is None:
            return
        self.requests.append(request.method)
        if request.method == "ACK" or request.method in self.unanswered:
            return
        if request.method == "INVITE" and self.status != 200:
            self.respond(request, source, self.status, "Service Unavailable", "x")
        elif request.method == "INVITE":
            self.offers.append(request.body)
            sdp = sdp_body(self.rtp.port, "RTP/AVP 0", "rtpmap:0 PCMU/8000", "sendrecv")
            self.respond(request, source, 200, "OK", "silent", sdp, user="silent")
        else:
            self.respond(request, source, 200, "OK", "silent")

    def stop(self) -> None:
        super().stop()
        self.rtp.sock.close()


class DtmfSinkUas(UdpPeer):
    """Answers with PCMU + telephone-event and decodes the RFC 4733 digits it receives (its own decoder)."""

    def __init__(self) -> None:
        self.rtp = RtpCapture()
        super().__init__()
        self.start_thread(lambda: self.rtp.serve(lambda: self.running))

    @property
    def digits(self) -> list[str]:
        decoder = Rfc4733Digits()
        for arrival in self.rtp.packets(payload_type=101):
            decoder.packet(arrival.packet.ssrc, arrival.packet.timestamp, arrival.packet.payload)
        return decoder.digits

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        request: SipText | None = self.parse_request(data)
        if request is None or request.method == "ACK":
            return
        if request.method != "INVITE":
            self.respond(request, source, 200, "OK", "sink")
            return
        sdp = sdp_body(
            self.rtp.port,
            "RTP/AVP 0 101",
            "rtpmap:0 PCMU/8000",
            "rtpmap:101 telephone-event/8000",
            "fmtp:101 0-15",
            "sendrecv",
        )
        self.respond(request, source, 200, "OK", "sink", sdp, user="sink")

    def stop(self) -> None:
        super().stop()
        self.rtp.sock.close()


def describe_silence(arrivals: list[Arrival]) -> dict[str, object]:
    """What a far end received of the bridge's keep-alive silence: count, payload types, timestamp
    steps, the arrival rate and largest gap (packets due go out at the worker's tick, a few at a time),
    and whether every payload is µ-law silence (0xFF)."""
    packets = [a.packet for a in arrivals]
    steps = {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(packets)}
    gaps = sorted(b.at - a.at for a, b in itertools.pairwise(arrivals))
    return {
        "count": len(packets),
        "payloadTypes": sorted({p.payload_type for p in packets}),
        "timestampSteps": sorted(steps),
        "sequenceSteps": sorted({(b.sequence - a.sequence) & 0xFFFF for a, b in itertools.pairwise(packets)}),
        "maxGapMs": round(gaps[-1] * 1000, 1) if gaps else None,
        "spanSeconds": round(arrivals[-1].at - arrivals[0].at, 2) if arrivals else 0.0,
        "packetsPerSecond": round((len(arrivals) - 1) / (arrivals[-1].at - arrivals[0].at), 1) if gaps else 0.0,
        "allSilence": all(p.payload and set(p.payload) == {0xFF} for p in packets),
        "payloadBytes": sorted({len(p.payload) for p in packets}),
        "jitterMs": round(interarrival_jitter(arrivals) * 1000, 2),
    }


def interarrival_jitter(arrivals: list[Arrival], clock: int = 8000) -> float:
    """RFC 3550 §6.4.1 / A.8 interarrival jitter (seconds) of what arrived, from the kernel's receive
    times and the packets' RTP timestamps: J += (|D(i-1, i)| - J) / 16."""
    jitter = 0.0
    for a, b in itertools.pairwise(arrivals):
        sent = ((b.packet.timestamp - a.packet.timestamp) & 0xFFFFFFFF) / clock
        jitter += (abs((b.at - a.at) - sent) - jitter) / 16
    return jitter


class ToneUas(SilentUas):
    """A SilentUas that plays 440 Hz µ-law from its advertised RTP port to the offer's address."""

    def __init__(self) -> None:
        super().__init__()
        self.target: tuple[str, int] | None = None
        self.start_thread(self._play)

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        request = self.parse_request(data)
        if request is not None and request.method == "INVITE" and request.body:
            self.target = sdp_audio_address(request.body)
        elif request is not None and request.method == "BYE":
            self.target = None
        super().handle(data, source)

    def _play(self) -> None:
        sequence, start = 0, time.monotonic()
        while self.running:
            target = self.target
            if target is None:
                time.sleep(0.02)
                start, sequence = time.monotonic(), 0
                continue
            self.rtp.sock.sendto(rtp(0, sequence, sequence * 160, 0x7070, tone_frame(sequence)), target)
            sequence += 1
            time.sleep(max(0.0, start + sequence * 0.02 - time.monotonic()))
