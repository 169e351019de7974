"""A far end that answers every INVITE and then sends no RTP at all (or answers 503).

For conditions baresip cannot produce: a call that is up but silent (the bridge
must hang up after ``rtp.timeout``), and a server that refuses with 503 (DNS failover).
"""

from __future__ import annotations

import socket

from sipmessage import Request

from bridge.sip.message import SipParseError, build_response, parse_message, serialize
from rtp.dtmf import DtmfDecoder
from rtp.packet import PacketError, parse_rtp
from tests.support.udp_peer import UdpPeer

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n"


class SilentUas(UdpPeer):
    """Answers INVITE with ``status`` (200 by default, with SDP); BYE and others with 200."""

    def __init__(self, status: int = 200, unanswered: frozenset[str] = frozenset()) -> None:
        self.status = status
        self.unanswered = unanswered  # methods left without any response (a far end that went away)
        self.requests: list[str] = []
        super().__init__()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            request = parse_message(data)
        except SipParseError:
            return
        if not isinstance(request, Request):
            return
        self.requests.append(request.method)
        if request.method == "ACK" or request.method in self.unanswered:
            return
        if request.method == "INVITE" and self.status != 200:
            self.sock.sendto(serialize(build_response(request, self.status, "Service Unavailable", "x")), source)
            return
        response = build_response(request, 200, "OK", to_tag="silent")
        if request.method == "INVITE":
            response.headers.set("Contact", f"<sip:silent@127.0.0.1:{self.port}>")
            response.headers.set("Content-Type", "application/sdp")
            response.body = SDP
        self.sock.sendto(serialize(response), source)


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
        try:
            request = parse_message(data)
        except SipParseError:
            return
        if not isinstance(request, Request) or request.method == "ACK":
            return
        response = build_response(request, 200, "OK", to_tag="sink")
        if request.method == "INVITE":
            response.headers.set("Contact", f"<sip:sink@127.0.0.1:{self.port}>")
            response.headers.set("Content-Type", "application/sdp")
            response.body = (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
            ).encode()
        self.sock.sendto(serialize(response), source)

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
