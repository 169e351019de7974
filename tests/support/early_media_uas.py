"""A far end that never answers but plays a 440 Hz tone as early media (183 with SDP).

baresip 1.0 sends a 183 with SDP in answermode=early but never starts its audio,
so this scripted UAS covers that behaviour: 183 + PCMU RTP at real time from a
thread, 200/487 on CANCEL. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
from sipmessage import Request

from bridge.sip.message import SipParseError, build_response, parse_message, serialize
from bridge.sip.sdp import parse_sdp
from rtp.g711 import encode_ulaw
from rtp.packet import RtpPacket
from tests.support.ports import free_port


class EarlyMediaUas:
    def __init__(self) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.rtp_port = free_port(socket.SOCK_DGRAM)
        self.requests: list[str] = []
        self._sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sip.bind(("127.0.0.1", self.port))
        self._sip.settimeout(0.2)
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", self.rtp_port))
        self._tone_target: tuple[str, int] | None = None
        self._running = True
        self._threads = [
            threading.Thread(target=self._serve, daemon=True),
            threading.Thread(target=self._play, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        invite: Request | None = None
        while self._running:
            try:
                data, source = self._sip.recvfrom(65535)
                message = parse_message(data)
            except (TimeoutError, SipParseError):
                continue
            if not isinstance(message, Request):
                continue
            self.requests.append(message.method)
            if message.method == "INVITE":
                invite = message
                self._tone_target = parse_sdp(message.body).audio_address()
                self._send(self._session_progress(message), source)
            elif message.method == "CANCEL" and invite is not None:
                self._tone_target = None
                self._send(serialize(build_response(message, 200, "OK", "early")), source)
                self._send(serialize(build_response(invite, 487, "Request Terminated", "early")), source)

    def _session_progress(self, invite: Request) -> bytes:
        response = build_response(invite, 183, "Session Progress", "early")
        response.headers.set("Contact", f"<sip:early@127.0.0.1:{self.port}>")
        response.headers.set("Content-Type", "application/sdp")
        response.body = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
        ).encode()
        return serialize(response)

    def _send(self, data: bytes, destination: tuple[str, int]) -> None:
        self._sip.sendto(data, destination)

    def _play(self) -> None:
        sequence, start = 0, time.monotonic()
        while self._running:
            target = self._tone_target
            if target is not None:
                t = np.arange(sequence * 160, (sequence + 1) * 160) / 8000
                payload = encode_ulaw((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16))
                packet = RtpPacket(0, sequence & 0xFFFF, sequence * 160, 0x5151, payload)
                self._rtp.sendto(packet.serialize(), target)
                sequence += 1
            time.sleep(max(0.0, start + (sequence + 1) * 0.02 - time.monotonic()) if target else 0.02)

    def stop(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.join(2)
        self._sip.close()
        self._rtp.close()
