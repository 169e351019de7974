"""A scripted SIP video far end: PCMU and H.264 with a white flash and a 1 kHz beep at the same instants.

For what baresip cannot be made to do on cue. Every whole second of the far end's media
time (from 1 s on) the picture turns white for two frames and the audio beeps for 100 ms,
so the offset between the two in a pulled stream is what a viewer would see. Options make
the sync hard: the video starts ``video_delay`` seconds after the audio, both streams start
at random RTP timestamps, the video leaves ``video_latency`` seconds after its capture (an
encoder's latency) and the first RTCP sender reports come ``sr_after`` seconds in.

Video is encoded live with FFmpeg's libx264 (through PyAV) so the far end can obey key frame
requests: it counts the RTCP PLI and FIR it receives (parsed here from RFC 4585 6.1 and
RFC 5104 4.3.1, not with the bridge's code) and makes the next frame an IDR. It can also
withhold its IDRs until asked (a far end that joined mid-GOP), lose ``loss`` of its video
packets in a time window, and change resolution mid-call. Packetization follows RFC 6184:
SPS+PPS in one STAP-A, NAL units over 1100 bytes in FU-A, the marker on an access unit's last
packet. Every access unit sent is kept (``sent_units``) for byte comparison.
"""

from __future__ import annotations

import base64
import os
import random
import re
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import pylibsrtp

from tests.support.sip_text import SipText
from tests.support.udp_peer import UdpPeer
from tests.support.wire import ulaw_encode as encode_ulaw

FPS, MTU_PAYLOAD = 25, 1100
NTP_EPOCH_OFFSET = 2_208_988_800
PT_VIDEO = 96


@dataclass
class AvScript:
    video_delay: float = 0.0  # seconds after the audio's first packet
    video_latency: float = 0.0  # capture-to-send delay of the video
    sr_after: float = 1.0  # first sender reports (both streams) at this media time
    withhold_idr: bool = False  # no IDR until a PLI/FIR arrives
    loss: tuple[float, float, float] | None = None  # (from s, to s, fraction of video packets lost)
    resize: tuple[float, int, int] | None = None  # (at s, width, height)
    pause: tuple[float, float] | None = None  # camera off: no video from, to (s)
    new_source_at: float | None = None  # the video switches to a new SSRC, sequence and timestamp base
    srtp: bool = False  # answer the offer's a=crypto (AES_CM_128_HMAC_SHA1_80) on both lines, via libsrtp
    rtcp_fb: bool = True  # False: no a=rtcp-fb in the answer, key frames asked for by SIP INFO (RFC 5168)
    size: tuple[int, int] = (320, 240)


@dataclass
class SentUnit:
    media_time: float
    nals: tuple[bytes, ...]
    keyframe: bool


@dataclass
class AvLog:
    sent_units: list[SentUnit] = field(default_factory=list)
    keyframe_requests: list[tuple[float, str]] = field(default_factory=list)  # (media time, "pli"|"fir")
    lost_packets: int = 0
    requests: list[str] = field(default_factory=list)
    offer: str = ""  # the SDP of the INVITE, as received
    srtp_failures: int = 0  # SRTP packets that libsrtp refused (bad tag, replay)
    video_in: list[tuple[float, int, int, bool, int, bytes]] = field(default_factory=list)
    # ^ RTP received on the video port: (media time, payload type, timestamp, marker, SSRC, payload)


def _port_pair() -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on consecutive ports (RTP even, RTCP = RTP + 1: RFC 3550 section 11)."""
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        rtcp.settimeout(0.1)
        return rtp, rtcp
    raise RuntimeError("no consecutive UDP port pair")


def annexb_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 or 00 00 00 01)."""
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    nals = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nals.append(data[start:end].rstrip(b"\x00") if index + 1 < len(starts) else data[start:end])
    return [nal for nal in nals if nal]


def rtp_payloads(nals: list[bytes]) -> list[bytes]:
    """RFC 6184 payloads of one access unit: STAP-A for SPS+PPS (5.7.1), FU-A above the MTU (5.8)."""
    params = [n for n in nals if n[0] & 0x1F in (7, 8)]
    payloads: list[bytes] = []
    if params:
        stap = bytes([0x18 | (params[0][0] & 0x60)])
        payloads.append(stap + b"".join(struct.pack("!H", len(n)) + n for n in params))
    for nal in (n for n in nals if n[0] & 0x1F not in (7, 8, 9)):
        if len(nal) <= MTU_PAYLOAD:
            payloads.append(nal)
            continue
        indicator, kind, body = (nal[0] & 0xE0) | 28, nal[0] & 0x1F, nal[1:]
        chunks = [body[i : i + MTU_PAYLOAD] for i in range(0, len(body), MTU_PAYLOAD)]
        for index, chunk in enumerate(chunks):
            header = kind | (0x80 if index == 0 else 0) | (0x40 if index == len(chunks) - 1 else 0)
            payloads.append(bytes([indicator, header]) + chunk)
    return payloads


def sender_report(ssrc: int, wall: float, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    """RFC 3550 6.4.1: an SR with no report blocks."""
    ntp = wall + NTP_EPOCH_OFFSET
    seconds, fraction = int(ntp), int((ntp % 1) * (1 << 32))
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, seconds, fraction, rtp_timestamp & 0xFFFFFFFF, packets, octets)


def feedback_kinds(data: bytes) -> list[str]:
    """PLI and FIR messages in a compound RTCP packet (RFC 4585 6.1: PT 206, FMT 1 = PLI, 4 = FIR)."""
    kinds, offset = [], 0
    while offset + 4 <= len(data):
        first, packet_type, length = struct.unpack_from("!BBH", data, offset)
        if packet_type == 206 and first & 0x1F in (1, 4):
            kinds.append("pli" if first & 0x1F == 1 else "fir")
        offset += (length + 1) * 4
    return kinds


class Srtp:
    """One media line's SRTP (RFC 3711) through libsrtp (pylibsrtp): our key out, the bridge's in."""

    SUITE = "AES_CM_128_HMAC_SHA1_80"

    def __init__(self, ours: bytes, theirs: bytes) -> None:
        profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
        self.out = pylibsrtp.Session(pylibsrtp.Policy(ours, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, profile))
        self.into = pylibsrtp.Session(pylibsrtp.Policy(theirs, pylibsrtp.Policy.SSRC_ANY_INBOUND, profile))

    @classmethod
    def answer(cls, section: str) -> tuple[Srtp, str] | None:
        """Our keys for an m= section of the offer, and the a=crypto line answering it (RFC 4568 6.1)."""
        offered = re.search(rf"^a=crypto:(\d+) {cls.SUITE} inline:([A-Za-z0-9+/=]+)", section, re.M)
        if offered is None:
            return None
        ours = os.urandom(30)
        line = f"a=crypto:{offered.group(1)} {cls.SUITE} inline:{base64.b64encode(ours).decode()}"
        return cls(ours, base64.b64decode(offered.group(2))), line


class _Stream:
    """One RTP stream's numbering: random SSRC, sequence and timestamp start (RFC 3550 5.1)."""

    def __init__(self, rtp: socket.socket, rtcp: socket.socket, clock: int, srtp: Srtp | None = None) -> None:
        self.rtp, self.rtcp, self.clock, self.srtp = rtp, rtcp, clock, srtp
        self.ssrc, self.sequence = random.getrandbits(32), random.getrandbits(16)
        self.base = random.getrandbits(32)
        self.packets = self.octets = 0

    def timestamp(self, media_time: float) -> int:
        return (self.base + round(media_time * self.clock)) & 0xFFFFFFFF

    def send(self, payload_type: int, media_time: float, payload: bytes, marker: bool, to: tuple[str, int]) -> None:
        header = struct.pack(
            "!BBHII", 0x80, payload_type | (0x80 if marker else 0), self.sequence, self.timestamp(media_time), self.ssrc
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packets, self.octets = self.packets + 1, self.octets + len(payload)
        packet = header + payload
        self.rtp.sendto(self.srtp.out.protect(packet) if self.srtp else packet, to)

    def send_rtcp(self, packet: bytes, to: tuple[str, int]) -> None:
        self.rtcp.sendto(self.srtp.out.protect_rtcp(packet) if self.srtp else packet, to)


class AvFarEnd(UdpPeer):
    """Answers an INVITE with PCMU + H.264 (FIR and PLI feedback) and plays the flash-and-beep script."""

    def __init__(self, script: AvScript) -> None:
        self.script, self.log = script, AvLog()
        self._audio_sockets, self._video_sockets = _port_pair(), _port_pair()
        self._targets: tuple[tuple[str, int], tuple[str, int]] | None = None
        self._keyframe_asked = threading.Event()
        self._audio_srtp: Srtp | None = None
        self._video_srtp: Srtp | None = None
        self._hung_up = threading.Event()
        self._random = random.Random(5)
        self.media_start = time.monotonic()  # the far end's media time 0 (reset when media starts)
        super().__init__()
        self._video_sockets[0].settimeout(0.1)
        self.start_thread(self._play)
        self.start_thread(self._receive_feedback)
        self.start_thread(self._receive_video)

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        request = self.parse_request(data)
        if request is None:
            return
        self.log.requests.append(request.method)
        if request.method == "INVITE":
            self._answer(request, source)
        elif request.method == "INFO":
            self._on_info(request, source)
        elif request.method == "BYE":
            self._hung_up.set()
            self.respond(request, source, 200, "OK", "av")
        elif request.method != "ACK":
            self.respond(request, source, 200, "OK", "av")

    def _on_info(self, request: SipText, source: tuple[str, int]) -> None:
        """RFC 5168 section 3: application/media_control+xml asking for picture_fast_update."""
        kind = (request.all("content-type") or [""])[0]
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            self.respond(request, source, 400, "Bad Request", "av")
            return
        if kind != "application/media_control+xml" or root.find(".//to_encoder/picture_fast_update") is None:
            self.respond(request, source, 415, "Unsupported Media Type", "av")
            return
        self.log.keyframe_requests.append((time.monotonic() - self.media_start, "info"))
        self._keyframe_asked.set()
        self.respond(request, source, 200, "OK", "av")

    def _answer(self, request: SipText, source: tuple[str, int]) -> None:
        body = request.body.decode()
        self.log.offer = body
        host = re.search(r"^c=IN IP4 (\S+)", body, re.M)
        ports = dict(re.findall(r"^m=(audio|video) (\d+)", body, re.M))
        if host is None or "video" not in ports:
            self.respond(request, source, 488, "Not Acceptable Here", "av")
            return
        audio_port, video_port = self._audio_sockets[0].getsockname()[1], self._video_sockets[0].getsockname()[1]
        lines = [
            "v=0", "o=- 7 7 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
            f"m=audio {audio_port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv",
            f"m=video {video_port} RTP/AVP {PT_VIDEO}", f"a=rtpmap:{PT_VIDEO} H264/90000",
            f"a=fmtp:{PT_VIDEO} packetization-mode=1;profile-level-id=42e01f",
            f"a=rtcp-fb:{PT_VIDEO} nack pli", f"a=rtcp-fb:{PT_VIDEO} ccm fir", "a=sendrecv",
        ]  # fmt: skip
        if not self.script.rtcp_fb:
            lines = [line for line in lines if not line.startswith("a=rtcp-fb")]
        if self.script.srtp and not self._secure(body, lines):
            self.respond(request, source, 488, "Not Acceptable Here", "av")
            return
        self.respond(request, source, 200, "OK", "av", "\r\n".join(lines) + "\r\n", user="av")
        self._targets = ((host.group(1), int(ports["audio"])), (host.group(1), int(ports["video"])))

    def _secure(self, offer: str, lines: list[str]) -> bool:
        """SDES on both lines: each m= section of the offer answered with keys of its own."""
        sections = re.split(r"^(?=m=)", offer, flags=re.M)[1:]
        answers = [Srtp.answer(section) for section in sections[:2]]
        if len(answers) < 2 or answers[0] is None or answers[1] is None:
            return False
        (self._audio_srtp, audio_line), (self._video_srtp, video_line) = answers
        lines.insert(lines.index("a=rtpmap:0 PCMU/8000"), audio_line)
        lines.append(video_line)
        return True

    def _receive_video(self) -> None:
        """The bridge's picture, parsed here from RFC 3550 5.1 (no CSRCs or extensions expected)."""
        while self.running:
            try:
                data = self._video_sockets[0].recv(4096)
                data = self._video_srtp.into.unprotect(data) if self._video_srtp else data
            except (TimeoutError, OSError):
                continue
            except pylibsrtp.Error:
                self.log.srtp_failures += 1
                continue
            if len(data) > 12 and data[0] == 0x80:
                _, second, _, timestamp, ssrc = struct.unpack_from("!BBHII", data)
                at = time.monotonic() - self.media_start
                self.log.video_in.append((at, second & 0x7F, timestamp, bool(second & 0x80), ssrc, data[12:]))

    def send_pli(self) -> None:
        """RFC 4585 6.3.1: a PLI for the bridge's video SSRC, to its video RTCP port."""
        if self._targets is None or not self.log.video_in:
            raise AssertionError("no video received yet: nothing to ask a key frame of")
        host, port = self._targets[1]
        pli = struct.pack("!BBHII", 0x81, 206, 2, 0x12345678, self.log.video_in[-1][4])
        self._video_sockets[1].sendto(pli, (host, port + 1))

    def _receive_feedback(self) -> None:
        while self.running:
            try:
                data = self._video_sockets[1].recv(2048)
                data = self._video_srtp.into.unprotect_rtcp(data) if self._video_srtp else data
            except (TimeoutError, OSError):
                continue
            except pylibsrtp.Error:
                self.log.srtp_failures += 1
                continue
            for kind in feedback_kinds(data):
                self.log.keyframe_requests.append((time.monotonic() - self.media_start, kind))
                self._keyframe_asked.set()

    def _play(self) -> None:
        while self.running and self._targets is None:
            time.sleep(0.01)
        if self._targets is None:
            return
        audio_to, video_to = self._targets
        audio = _Stream(*self._audio_sockets, 8000, self._audio_srtp)
        video = _Stream(*self._video_sockets, 90000, self._video_srtp)
        _Player(self, audio, video, audio_to, video_to).run()

    def stop(self) -> None:
        super().stop()
        for sock in (*self._audio_sockets, *self._video_sockets):
            sock.close()


class _Player:
    """The media clock: audio every 20 ms, a video frame every 40 ms, sender reports once a second."""

    def __init__(
        self, peer: AvFarEnd, audio: _Stream, video: _Stream, audio_to: tuple[str, int], video_to: tuple[str, int]
    ) -> None:
        self.peer, self.script = peer, peer.script
        self.audio, self.video, self.audio_to, self.video_to = audio, video, audio_to, video_to
        self.encoder = self._encoder(*self.script.size)
        self.pending: deque[tuple[float, list[bytes], bool]] = deque()  # frames waiting for their send time
        self.started_idr = not self.script.withhold_idr
        self.switched = False

    def _encoder(self, width: int, height: int) -> av.CodecContext:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base, codec.framerate = Fraction(1, 90000), Fraction(FPS)
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "g": "100000",
            "forced-idr": "1",
            "profile": "baseline",
        }
        return codec  # type: ignore[no-any-return]

    def run(self) -> None:
        start, wall_start = time.monotonic(), time.time()
        self.peer.media_start = start
        audio_index = video_index = 0
        next_report = self.script.sr_after
        while self.peer.running and not self.peer._hung_up.is_set():
            now = time.monotonic() - start
            if audio_index * 0.02 <= now:
                self._send_audio(audio_index)
                audio_index += 1
            capture = self.script.video_delay + video_index / FPS
            if capture <= now:
                self._capture(video_index, capture)
                video_index += 1
            self._send_due(now)
            if now >= next_report:
                self._reports(now, wall_start)
                next_report += 1.0
            time.sleep(0.002)

    def _send_audio(self, index: int) -> None:
        t = np.arange(index * 160, (index + 1) * 160) / 8000
        beeping = (t >= 1.0) & (t % 1.0 < 0.1)
        samples = np.where(beeping, 12000 * np.sin(2 * np.pi * 1000 * t), 0).astype(np.int16)
        self.audio.send(0, index * 0.02, encode_ulaw(samples), False, self.audio_to)

    def _capture(self, index: int, capture: float) -> None:
        pause = self.script.pause
        if pause is not None and pause[0] <= capture < pause[1]:
            return
        if (
            self.script.resize is not None
            and capture >= self.script.resize[0]
            and self.encoder.width != self.script.resize[1]
        ):
            self.encoder = self._encoder(self.script.resize[1], self.script.resize[2])
        luma = 235 if capture >= 1.0 and capture % 1.0 < 2 / FPS - 1e-6 else 16
        planes = np.full((self.encoder.height * 3 // 2, self.encoder.width), 128, np.uint8)
        planes[: self.encoder.height] = luma
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = round(capture * 90000)
        if self.peer._keyframe_asked.is_set():
            self.peer._keyframe_asked.clear()
            frame.pict_type = av.video.frame.PictureType.I
        for packet in self.encoder.encode(frame):
            nals = annexb_nals(bytes(packet))
            keyframe = any(n[0] & 0x1F == 5 for n in nals)
            self.started_idr = self.started_idr or keyframe
            if self.started_idr or not keyframe:
                self.pending.append((capture, nals, keyframe))

    def _send_due(self, now: float) -> None:
        while self.pending and self.pending[0][0] + self.script.video_latency <= now:
            capture, nals, keyframe = self.pending.popleft()
            switch = self.script.new_source_at
            if switch is not None and capture >= switch and not self.switched:
                self.switched = True  # RFC 3550 8.2: another source, its own numbering and clock
                self.video = _Stream(self.video.rtp, self.video.rtcp, 90000, self.video.srtp)
            payloads = rtp_payloads(nals)
            for index, payload in enumerate(payloads):
                if self._lost(capture):  # lost on the way: its sequence number is used all the same
                    self.peer.log.lost_packets += 1
                    self.video.sequence = (self.video.sequence + 1) & 0xFFFF
                    continue
                self.video.send(PT_VIDEO, capture, payload, index == len(payloads) - 1, self.video_to)
            self.peer.log.sent_units.append(SentUnit(capture, tuple(nals), keyframe))

    def _lost(self, capture: float) -> bool:
        loss = self.script.loss
        return loss is not None and loss[0] <= capture < loss[1] and self.peer._random.random() < loss[2]

    def _reports(self, now: float, wall_start: float) -> None:
        for stream, to, delay in (
            (self.audio, self.audio_to, 0.0),
            (self.video, self.video_to, self.script.video_latency),
        ):
            if stream.packets:
                media_time = now - delay  # the instant whose capture the stream is sending now
                report = sender_report(
                    stream.ssrc, wall_start + media_time, stream.timestamp(media_time), stream.packets, stream.octets
                )
                stream.send_rtcp(report, (to[0], to[1] + 1))
