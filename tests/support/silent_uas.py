"""A far end that answers every INVITE and then sends no RTP at all (or answers 503).

For conditions baresip cannot produce: a call that is up but silent (the bridge
must hang up after ``rtp.timeout``), and a server that refuses with 503 (DNS failover).
"""

from __future__ import annotations

from sipmessage import Request

from bridge.sip.message import SipParseError, build_response, parse_message, serialize
from tests.support.udp_peer import UdpPeer

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n"


class SilentUas(UdpPeer):
    """Answers INVITE with ``status`` (200 by default, with SDP); BYE and others with 200."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
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
        if request.method == "ACK":
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
