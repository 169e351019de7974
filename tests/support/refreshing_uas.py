"""A far end that answers, refreshes the session (RFC 4028 UPDATE) and then moves its
media to a new port and SSRC with a re-INVITE that also adds a video stream (as a
conferencing endpoint does when a camera is switched on), playing a 440 Hz tone throughout.

Scripted because none of the Debian peers acts as an RFC 4028 refresher. Runs on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time

from sipmessage import URI, Address, CSeq, Parameters, Request, Response, Via

from bridge.sip.message import SipParseError, build_response, new_branch, parse_message, serialize
from bridge.sip.sdp import parse_sdp
from rtp.packet import RtpPacket
from tests.support.udp_peer import UdpPeer, tone_frame


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class RefreshingUas(UdpPeer):
    def __init__(self) -> None:
        self._rtp = [_udp_socket(), _udp_socket()]
        self.rtp_ports = [s.getsockname()[1] for s in self._rtp]
        self.responses: dict[str, Response] = {}
        self._media = 0  # which RTP socket/SSRC plays
        self._target: tuple[str, int] | None = None
        self._dialog: dict[str, object] = {}
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
            message = parse_message(data)
        except SipParseError:
            return
        if isinstance(message, Response):
            self.responses[message.cseq.method] = message
            if message.cseq.method == "INVITE" and message.code == 200:
                self._send_request("ACK", message.cseq.sequence, b"")
        elif message.method == "INVITE":
            self._answer(message, source)
        elif message.method == "ACK" and "UPDATE" not in self.responses:
            threading.Thread(target=self._script, daemon=True).start()
        elif message.method != "ACK":
            self.sock.sendto(serialize(build_response(message, 200, "OK")), source)

    def _answer(self, invite: Request, source: tuple[str, int]) -> None:
        self._target = parse_sdp(invite.body).audio_address()
        response = build_response(invite, 200, "OK", to_tag="refresher")
        response.headers.set("Contact", f"<sip:far@127.0.0.1:{self.port}>")
        response.headers.set("Allow", "INVITE, ACK, BYE, UPDATE")
        response.headers.set("Session-Expires", "90;refresher=uas")
        response.headers.set("Require", "timer")
        response.headers.set("Content-Type", "application/sdp")
        response.body = self._sdp(0)
        self._dialog = {
            "to": invite.from_address,
            "from": response.to_address,
            "call_id": invite.call_id,
            "target": invite.contact[0].uri,
            "peer": source,
        }
        self.sock.sendto(serialize(response), source)

    def _script(self) -> None:
        time.sleep(0.5)
        self._send_request("UPDATE", 1, b"", {"Session-Expires": "90;refresher=uac", "Supported": "timer"})
        time.sleep(1.0)
        self._media = 1  # new port and new SSRC from now on
        self._send_request("INVITE", 2, self._sdp(1))

    def _send_request(self, method: str, sequence: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        target = self._dialog["target"]
        assert isinstance(target, URI)
        request = Request(method, target)
        request.via = [Via("UDP", "127.0.0.1", self.port, Parameters(branch=new_branch()))]
        request.from_address = self._dialog["from"]  # type: ignore[assignment]
        request.to_address = self._dialog["to"]  # type: ignore[assignment]
        request.call_id = str(self._dialog["call_id"])
        request.cseq = CSeq(sequence, method)
        request.max_forwards = 70
        request.contact = [Address(uri=URI(scheme="sip", host="127.0.0.1", port=self.port, user="far"))]
        for name, value in (headers or {}).items():
            request.headers.set(name, value)
        if body:
            request.headers.set("Content-Type", "application/sdp")
            request.body = body
        self.sock.sendto(serialize(request), self._dialog["peer"])  # type: ignore[arg-type]

    def _play(self) -> None:
        sequence, start = 0, time.monotonic()
        while self.running:
            if self._target is not None:
                ssrc = 0x1000 + self._media
                seq = (sequence + 7000 * self._media) & 0xFFFF
                packet = RtpPacket(0, seq, sequence * 160, ssrc, tone_frame(sequence))
                self._rtp[self._media].sendto(packet.serialize(), self._target)
                sequence += 1
                time.sleep(max(0.0, start + sequence * 0.02 - time.monotonic()))
            else:
                time.sleep(0.02)
                start = time.monotonic()

    def stop(self) -> None:
        super().stop()
        for sock in self._rtp:
            sock.close()
