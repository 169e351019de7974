"""A far end that never answers but plays a 440 Hz tone as early media (183 with SDP).

baresip 1.0 sends a 183 with SDP in answermode=early but never starts its audio,
so this scripted UAS covers that behaviour: 183 + PCMU RTP at real time from a
thread, 200/487 on CANCEL. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import socket
import time

from tests.support.sip_text import SipText
from tests.support.udp_peer import UdpPeer, sdp_body, tone_frame
from tests.support.wire import rtp, sdp_audio_address


class EarlyMediaUas(UdpPeer):
    def __init__(self) -> None:
        self.requests: list[str] = []
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", 0))
        self.rtp_port = int(self._rtp.getsockname()[1])
        self._tone_target: tuple[str, int] | None = None
        self._invite: SipText | None = None
        super().__init__()
        self.start_thread(self._play)

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        message = self.parse_request(data)
        if message is None:
            return
        self.requests.append(message.method)
        if message.method == "INVITE":
            self._invite = message
            self._tone_target = sdp_audio_address(message.body)
            sdp = sdp_body(self.rtp_port, "RTP/AVP 0", "rtpmap:0 PCMU/8000", "sendonly")
            self.respond(message, source, 183, "Session Progress", "early", sdp, user="early")
        elif message.method == "CANCEL" and self._invite is not None:
            self._tone_target = None
            self.respond(message, source, 200, "OK", "early")
            self.respond(self._invite, source, 487, "Request Terminated", "early")

    def _play(self) -> None:
        sequence, start = 0, time.monotonic()
        while self.running:
            target = self._tone_target
            if target is None:
                time.sleep(0.02)
                continue
            self._rtp.sendto(rtp(0, sequence, sequence * 160, 0x5151, tone_frame(sequence)), target)
            sequence += 1
            time.sleep(max(0.0, start + sequence * 0.02 - time.monotonic()))

    def stop(self) -> None:
        super().stop()
        self._rtp.close()
