"""The skeleton of the scripted peers: a UDP socket on 127.0.0.1 served by one thread.

They read and write SIP with tests/support/sip_text.py and RTP/SDP/G.711 with tests/support/wire.py,
never with the bridge's own code.
"""

from __future__ import annotations

import socket
import threading

import numpy as np

from tests.support import sip_text
from tests.support.sip_text import SipText
from tests.support.wire import ulaw_encode


class UdpPeer:
    """Binds a free port, calls :meth:`handle` for every datagram, stops cleanly."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.running = True
        self._threads: list[threading.Thread] = []
        self.start_thread(self._serve)

    def start_thread(self, target: object) -> None:
        thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        raise NotImplementedError

    @staticmethod
    def parse_request(data: bytes) -> SipText | None:
        """The SIP request in ``data``; None for responses and for what does not parse."""
        try:
            message = sip_text.parse(data)
            return message if message.is_request and message.all("cseq") else None
        except (ValueError, IndexError):
            return None

    def respond(
        self,
        request: SipText,
        source: tuple[str, int],
        code: int,
        phrase: str,
        to_tag: str,
        sdp: str = "",
        user: str = "",
    ) -> None:
        """Send a response; with ``sdp`` it carries our Contact (``user``@this port) and the SDP body."""
        headers = []
        if sdp:
            headers = [("Contact", f"<sip:{user}@127.0.0.1:{self.port}>"), ("Content-Type", "application/sdp")]
        self.sock.sendto(sip_text.response(request, code, phrase, to_tag, headers, sdp.encode()), source)

    def _serve(self) -> None:
        while self.running:
            try:
                data, source = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            self.handle(data, source)

    def stop(self) -> None:
        self.running = False
        for thread in self._threads:
            thread.join(2)
        self.sock.close()


def sdp_body(rtp_port: int, media: str, *attributes: str) -> str:
    """An IPv4 loopback session with one audio stream: ``m=audio <port> <media>`` plus ``a=`` lines."""
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0", f"m=audio {rtp_port} {media}"]
    return "\r\n".join(lines + [f"a={attribute}" for attribute in attributes]) + "\r\n"


def tone_frame(sequence: int, frequency: float = 440.0) -> bytes:
    """20 ms of a PCMU tone: frame ``sequence`` of a continuous sine at 8 kHz."""
    t = np.arange(sequence * 160, (sequence + 1) * 160) / 8000
    return ulaw_encode((8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16))
