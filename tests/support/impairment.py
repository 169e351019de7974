"""A far end whose audio crosses a bad network: the tone source, and the impairment relay.

:class:`ImpairedToneUas` answers an INVITE with an SDP that points at the relay, then
plays a 440 Hz PCMU tone with a clock running ``clock_skew`` fast, changes SSRC once
and pauses once. :class:`ImpairmentRelay` forwards each packet to the bridge after a
random delay (jitter, hence reordering), dropping and duplicating some.
"""

from __future__ import annotations

import heapq
import random
import socket
import threading
import time
from dataclasses import dataclass

from tests.support.udp_peer import UdpPeer, sdp_body, tone_frame
from tests.support.wire import rtp, sdp_audio_address


@dataclass
class Impairments:
    loss: float = 0.10
    duplicate: float = 0.05
    jitter: float = 0.080
    clock_skew: float = 0.005
    ssrc_change_at: float = 6.0
    pause: tuple[float, float] = (9.0, 12.0)


class ImpairmentRelay(UdpPeer):
    """Receives on ``port`` and sends to the bridge from ``out_port`` (the address the SDP names)."""

    def __init__(self, impairments: Impairments, seed: int = 7) -> None:
        self.impairments = impairments
        self._rng = random.Random(seed)
        self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._out.bind(("127.0.0.1", 0))
        self.out_port = int(self._out.getsockname()[1])
        self.target: tuple[str, int] | None = None
        self._queue: list[tuple[float, int, bytes]] = []
        self._lock = threading.Lock()
        self._count = 0
        self.dropped = self.duplicated = self.forwarded = 0
        super().__init__()
        self.start_thread(self._forward)

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        if self._rng.random() < self.impairments.loss:
            self.dropped += 1
            return
        copies = 2 if self._rng.random() < self.impairments.duplicate else 1
        self.duplicated += copies - 1
        with self._lock:
            for _ in range(copies):
                self._count += 1
                due = time.monotonic() + self._rng.uniform(0, self.impairments.jitter)
                heapq.heappush(self._queue, (due, self._count, data))

    def _forward(self) -> None:
        while self.running:
            with self._lock:
                due = [
                    heapq.heappop(self._queue) for _ in range(len(self._queue)) if self._queue[0][0] <= time.monotonic()
                ]
            for _, _, data in due:
                if self.target is not None:
                    self._out.sendto(data, self.target)
                    self.forwarded += 1
            time.sleep(0.002)

    def stop(self) -> None:
        super().stop()
        self._out.close()


class ImpairedToneUas(UdpPeer):
    """Answers INVITE (SDP pointing at the relay), then plays the tone through the relay."""

    def __init__(self, relay: ImpairmentRelay) -> None:
        self.relay = relay
        self.started_at: float | None = None  # wall time (time.time) of the first packet
        self.pause_started_at: float | None = None
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", 0))
        super().__init__()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        request = self.parse_request(data)
        if request is None or request.method == "ACK":
            return
        if request.method != "INVITE":
            self.respond(request, source, 200, "OK", "impaired")
            return
        self.relay.target = sdp_audio_address(request.body)
        sdp = sdp_body(self.relay.out_port, "RTP/AVP 0", "rtpmap:0 PCMU/8000", "sendonly")
        self.respond(request, source, 200, "OK", "impaired", sdp, user="tone")
        if self.started_at is None:
            self.start_thread(self._play)

    def _play(self) -> None:
        """Frame n is sent at n * 20 ms / (1 + skew): the far end's clock runs fast."""
        settings = self.relay.impairments
        start, n, sequence = time.monotonic(), 0, 0
        self.started_at = time.time()
        destination = ("127.0.0.1", self.relay.port)
        while self.running:
            elapsed = n * 0.02
            ssrc, ts_base = (0xA1, 0) if elapsed < settings.ssrc_change_at else (0xB2, 0x12345678)
            if not settings.pause[0] <= elapsed < settings.pause[1]:
                # The timestamp follows time (it jumps over the pause); the sequence counts packets sent.
                self._rtp.sendto(rtp(0, sequence, ts_base + n * 160, ssrc, tone_frame(n)), destination)
                sequence += 1
            elif self.pause_started_at is None:
                self.pause_started_at = time.time()
            n += 1
            time.sleep(max(0.0, start + n * 0.02 / (1 + settings.clock_skew) - time.monotonic()))

    def stop(self) -> None:
        super().stop()
        self._rtp.close()
