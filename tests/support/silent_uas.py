"""A far end that answers every INVITE and then sends no RTP at all.

For the one condition baresip cannot produce: a call that is up but silent
(the bridge must hang up after ``rtp.timeout``). Runs in a thread on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading

from sipmessage import Request

from bridge.sip.message import SipParseError, build_response, parse_message, serialize
from tests.support.ports import free_port

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n"


class SilentUas:
    """Answers INVITE with ``status`` (200 by default, with SDP); BYE and others with 200."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.port = free_port(socket.SOCK_DGRAM)
        self.requests: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, source = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            try:
                message = parse_message(data)
            except SipParseError:
                continue
            if isinstance(message, Request):
                self.requests.append(message.method)
                self._answer(message, source)

    def _answer(self, request: Request, source: tuple[str, int]) -> None:
        if request.method == "ACK":
            return
        if request.method == "INVITE" and self.status != 200:
            self._sock.sendto(serialize(build_response(request, self.status, "Service Unavailable", "x")), source)
            return
        response = build_response(request, 200, "OK", to_tag="silent")
        if request.method == "INVITE":
            response.headers.set("Contact", f"<sip:silent@127.0.0.1:{self.port}>")
            response.headers.set("Content-Type", "application/sdp")
            response.body = SDP
        self._sock.sendto(serialize(response), source)

    def stop(self) -> None:
        self._running = False
        self._thread.join(2)
        self._sock.close()
