"""A far end that answers, refreshes the session (RFC 4028 UPDATE) and then moves its
media to a new port and SSRC with a re-INVITE that also adds a video stream (as a
conferencing endpoint does when a camera is switched on), playing a 440 Hz tone throughout.

Scripted because none of the Debian peers acts as an RFC 4028 refresher. Runs on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time

from tests.support import sip_text
from tests.support.sip_text import SipText
from tests.support.udp_peer import UdpPeer, tone_frame
from tests.support.wire import rtp, sdp_audio_address


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class RefreshingUas(UdpPeer):
    def __init__(self) -> None:
        self._rtp = [_udp_socket(), _udp_socket()]
        self.rtp_ports = [s.getsockname()[1] for s in self._rtp]
        self.responses: dict[str, SipText] = {}
        self._media = 0  # which RTP socket/SSRC plays
        self._target: tuple[str, int] | None = None
        self._dialog: dict[str, str] = {}
        self._peer: tuple[str, int] = ("127.0.0.1", 0)
        self._branches = 0
        super().__init__()
        self.start_thread(self._play)

    def _sdp(self, index: int) -> bytes:
        video = (
            f"m=video {self.rtp_ports[index] + 2} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\na=sendrecv\r\n"
            if index == 1
            else ""
        )
        return (
            f"v=0\r\no=- 7 {index + 1} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.rtp_ports[index]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n{video}"
        ).encode()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            message = sip_text.parse(data)
        except (ValueError, IndexError):
            return
        if not message.is_request:
            self.responses[message.method] = message
            if message.method == "INVITE" and message.status == 200:
                self._send_request("ACK", int(message.header("cseq").split()[0]), b"")
        elif message.method == "INVITE":
            self._answer(message, source)
        elif message.method == "ACK" and "UPDATE" not in self.responses:
            threading.Thread(target=self._script, daemon=True).start()
        elif message.method != "ACK":
            self.sock.sendto(sip_text.response(message, 200, "OK", "refresher"), source)

    def _answer(self, invite: SipText, source: tuple[str, int]) -> None:
        self._target = sdp_audio_address(invite.body)
        headers = [
            ("Contact", f"<sip:far@127.0.0.1:{self.port}>"),
            ("Allow", "INVITE, ACK, BYE, UPDATE"),
            ("Session-Expires", "90;refresher=uas"),
            ("Require", "timer"),
            ("Content-Type", "application/sdp"),
        ]
        # the dialog as RFC 3261 §12.1.1 sets it up at the UAS: remote target = the INVITE's Contact
        self._dialog = {
            "to": invite.header("from"),
            "from": f"{invite.header('to')};tag=refresher",
            "call_id": invite.header("call-id"),
            "target": invite.header("contact").strip("<>").split(">")[0],
        }
        self._peer = source
        self.sock.sendto(sip_text.response(invite, 200, "OK", "refresher", headers, self._sdp(0)), source)

    def _script(self) -> None:
        time.sleep(0.5)
        self._send_request("UPDATE", 1, b"", {"Session-Expires": "90;refresher=uac", "Supported": "timer"})
        time.sleep(1.0)
        self._media = 1  # new port and new SSRC from now on
        self._send_request("INVITE", 2, self._sdp(1))

    def _send_request(self, method: str, sequence: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self._branches += 1
        lines = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKrefresher{self._branches}"),
            ("From", self._dialog["from"]),
            ("To", self._dialog["to"]),
            ("Call-ID", self._dialog["call_id"]),
            ("CSeq", f"{sequence} {method}"),
            ("Max-Forwards", "70"),
            ("Contact", f"<sip:far@127.0.0.1:{self.port}>"),
            *(headers or {}).items(),
        ]
        if body:
            lines.append(("Content-Type", "application/sdp"))
        self.sock.sendto(sip_text.render(f"{method} {self._dialog['target']} SIP/2.0", lines, body), self._peer)

    def _play(self) -> None:
        sequence, start = 0, time.monotonic()
        while self.running:
            if self._target is not None:
                ssrc = 0x1000 + self._media
                seq = (sequence + 7000 * self._media) & 0xFFFF
                self._rtp[self._media].sendto(rtp(0, seq, sequence * 160, ssrc, tone_frame(sequence)), self._target)
                sequence += 1
                time.sleep(max(0.0, start + sequence * 0.02 - time.monotonic()))
            else:
                time.sleep(0.02)
                start = time.monotonic()

    def stop(self) -> None:
        super().stop()
        for sock in self._rtp:
            sock.close()
