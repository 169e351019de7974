"""A far end that answers every INVITE and then sends no RTP at all (or answers 503).

For conditions baresip cannot produce: a call that is up but silent (the bridge
must hang up after ``rtp.timeout``), and a server that refuses with 503 (DNS failover).
"""

from __future__ import annotations

import socket

from rtp.dtmf import DtmfDecoder
from rtp.packet import PacketError, parse_rtp
from tests.support.udp_peer import UdpPeer, sdp_body

SILENT_SDP = sdp_body(9, "RTP/AVP 0", "sendrecv")  # port 9 (discard): it never sends RTP


class SilentUas(UdpPeer):
    """Answers INVITE with ``status`` (200 by default, with SDP); BYE and others with 200."""

    def __init__(self, status: int = 200, unanswered: frozenset[str] = frozenset()) -> None:
        self.status = status
        self.unanswered = unanswered  # methods left without any response (a far end that went away)
        self.requests: list[str] = []
        super().__init__()

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
            self.respond(request, source, 200, "OK", "silent", SILENT_SDP, user="silent")
        else:
            self.respond(request, source, 200, "OK", "silent")


class DtmfSinkUas(UdpPeer):
    """Answers with PCMU + telephone-event and decodes the RFC 4733 digits it receives."""

    def __init__(self) -> None:
        self.digits: list[str] = []
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", 0))
        self._rtp.settimeout(0.2)
        self.rtp_port = int(self._rtp.getsockname()[1])
        self._decoder = DtmfDecoder()
        super().__init__()
        self.start_thread(self._receive_rtp)

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        request = self.parse_request(data)
        if request is None or request.method == "ACK":
            return
        if request.method != "INVITE":
            self.respond(request, source, 200, "OK", "sink")
            return
        sdp = sdp_body(
            self.rtp_port,
            "RTP/AVP 0 101",
            "rtpmap:0 PCMU/8000",
            "rtpmap:101 telephone-event/8000",
            "fmtp:101 0-15",
            "sendrecv",
        )
        self.respond(request, source, 200, "OK", "sink", sdp, user="sink")

    def _receive_rtp(self) -> None:
        while self.running:
            try:
                data = self._rtp.recv(2048)
                packet = parse_rtp(data)
            except (TimeoutError, OSError, PacketError):
                continue
            if packet.payload_type == 101:
                self.digits += [e.digit for e in self._decoder.receive(packet.ssrc, packet.timestamp, packet.payload)]

    def stop(self) -> None:
        super().stop()
        self._rtp.close()
