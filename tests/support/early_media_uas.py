"""A far end that never answers but plays a 440 Hz tone as early media (183 with SDP).

baresip 1.0 sends a 183 with SDP in answermode=early but never starts its audio,
so this scripted UAS covers that behaviour: 183 + PCMU RTP at real time from a
thread, 200/487 on CANCEL. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time

from sipmessage import Request

from bridge.sip.message import SipParseError, build_response, parse_message, serialize
from bridge.sip.sdp import parse_sdp
from rtp.packet import RtpPacket
from tests.support.udp_peer import UdpPeer, tone_frame


class EarlyMediaUas(UdpPeer):
    def __init__(self) -> None:
        self.requests: list[str] = []
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", 0))
        self.rtp_port = int(self._rtp.getsockname()[1])
        self._tone_target: tuple[str, int] | None = None
        self._invite: Request | None = None
        super().__init__()
        self.start_thread(self._play)

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            message = parse_message(data)
        except SipParseError:
            return
        if not isinstance(message, Request):
            return
        self.requests.append(message.method)
        if message.method == "INVITE":
            self._invite = message
            self._tone_target = parse_sdp(message.body).audio_address()
            self.sock.sendto(self._session_progress(message), source)
        elif message.method == "CANCEL" and self._invite is not None:
            self._tone_target = None
            self.sock.sendto(serialize(build_response(message, 200, "OK", "early")), source)
            self.sock.sendto(serialize(build_response(self._invite, 487, "Request Terminated", "early")), source)

    def _session_progress(self, invite: Request) -> bytes:
        response = build_response(invite, 183, "Session Progress", "early")
        response.headers.set("Contact", f"<sip:early@127.0.0.1:{self.port}>")
        response.headers.set("Content-Type", "application/sdp")
        response.body = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
        ).encode()
        return serialize(response)

    def _play(self) -> None:
        sequence, start = 0, time.monotonic()
        while self.running:
            target = self._tone_target
            if target is None:
                time.sleep(0.02)
                continue
            packet = RtpPacket(0, sequence & 0xFFFF, sequence * 160, 0x5151, tone_frame(sequence))
            self._rtp.sendto(packet.serialize(), target)
            sequence += 1
            time.sleep(max(0.0, start + sequence * 0.02 - time.monotonic()))

    def stop(self) -> None:
        super().stop()
        self._rtp.close()
