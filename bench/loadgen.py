"""A cheap load generator: one asyncio process that answers N SIP calls and sends N PCMU streams.

Every stream is a 440 Hz tone at -21 dBFS in 20 ms packets at real time, with a
marker click (10 ms of 1 kHz near full scale) every ``CLICK_INTERVAL`` seconds, at a
per-stream offset; the wall-clock send time of every click is kept so the bench can
find the click in the audio pulled from the RTMP server and measure bridge-added
latency. Streams are started by an INVITE (SIP mode: the bridge calls
``sip:load<i>@127.0.0.1:<port>``) or by the bench directly (media-only mode, for the
ffmpeg-per-call baseline). The generator answers without authentication and sends all
streams from one socket, which is what keeps it cheap.

It runs in a child process controlled over a multiprocessing pipe:
``("media", name, host, port)`` starts a media-only stream, ``("pause",)`` stops sending,
``("impair", loss, duplicate, jitter_seconds)`` makes every stream cross a bad network (the
impairment relay's model: packets lost, duplicated and delayed by a random jitter, hence
reordered), ``("report",)`` answers with the counters, ``("quit",)`` ends it.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from sipmessage import Request

from bridge.sip.message import SipParseError, build_response, new_tag, parse_message, serialize
from bridge.sip.sdp import SdpError, parse_sdp
from rtp.g711 import encode_ulaw
from tests.support.udp_peer import sdp_body

FRAME_SECONDS = 0.020
CLICK_INTERVAL = 2.0
TONE_AMPLITUDE = 2900  # -21 dBFS
NOISE_AMPLITUDE = 520  # -36 dBFS RMS
RTP_HEADER = struct.Struct("!BBHII")


def tone_with_noise(samples: int) -> np.ndarray:
    """A 440 Hz tone at -21 dBFS over white noise at -36 dBFS: speech-like work for the AAC coder.

    A pure tone is an unusually easy (and for ``aac_coder=fast`` an unusually slow) signal;
    the noise floor makes encoder CPU resemble a real call's.
    """
    t = np.arange(samples) / 8000
    noise = np.random.default_rng(7).standard_normal(samples) * NOISE_AMPLITUDE
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * 440 * t) + noise).astype(np.int16)


def _tone_payloads() -> list[bytes]:
    """One second of the signal (a whole number of tone periods), as 50 PCMU payloads."""
    samples = tone_with_noise(8000)
    return [encode_ulaw(samples[i * 160 : (i + 1) * 160]) for i in range(50)]


def _click_payload() -> bytes:
    t = np.arange(160) / 8000
    samples = np.where(t < 0.010, 30000 * np.sin(2 * np.pi * 1000 * t), 0).astype(np.int16)
    return encode_ulaw(samples)


TONE = _tone_payloads()
CLICK = _click_payload()


@dataclass
class Stream:
    name: str
    destination: tuple[str, int]
    ssrc: int
    click_offset: int  # frame index within each click interval
    first_frame: int  # the generator's frame clock when the stream began
    frames_sent: int = 0
    clicks: list[float] = field(default_factory=list)
    active: bool = True

    def packet(self) -> bytes:
        frame = self.frames_sent
        per_interval = round(CLICK_INTERVAL / FRAME_SECONDS)
        is_click = frame % per_interval == self.click_offset
        payload = CLICK if is_click else TONE[frame % 50]
        if is_click:
            self.clicks.append(time.time())
        self.frames_sent += 1
        return RTP_HEADER.pack(0x80, 0, frame & 0xFFFF, (frame * 160) & 0xFFFFFFFF, self.ssrc) + payload


class LoadGenerator:
    """The SIP answerer and the paced sender of every stream."""

    def __init__(self, sip: socket.socket, rtp: socket.socket) -> None:
        self.sip, self.rtp = sip, rtp
        self.rtp_port = rtp.getsockname()[1]
        self.streams: dict[str, Stream] = {}
        self.by_call_id: dict[str, Stream] = {}
        self.sending = True
        self.late_ticks = 0
        self.ticks = 0
        self.invites = 0
        self.start = asyncio.get_running_loop().time()
        self.impairment: tuple[float, float, float] | None = None  # loss, duplicate, jitter seconds
        self._random = random.Random(11)
        self._delayed: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._count = 0
        self.lost = self.duplicated = 0

    def add(self, name: str, destination: tuple[str, int]) -> Stream:
        per_interval = round(CLICK_INTERVAL / FRAME_SECONDS)
        offset = (len(self.streams) * 7 + 25) % per_interval
        first = int((asyncio.get_running_loop().time() - self.start) / FRAME_SECONDS)
        stream = Stream(name, destination, 0x10000 + len(self.streams), offset, first)
        self.streams[name] = stream
        return stream

    async def send_forever(self) -> None:
        """Every 20 ms, one packet per active stream; a late tick sends the missed frames too."""
        loop = asyncio.get_running_loop()
        start = self.start
        while True:
            self.ticks += 1
            due = start + self.ticks * FRAME_SECONDS
            await asyncio.sleep(max(0.0, due - loop.time()))
            if loop.time() - due > FRAME_SECONDS:
                self.late_ticks += 1
            if not self.sending:
                continue
            now = loop.time()
            elapsed_frames = int((now - start) / FRAME_SECONDS)
            for stream in self.streams.values():
                while stream.active and stream.frames_sent < elapsed_frames - stream.first_frame:
                    self._send(stream.packet(), stream.destination, now)
            while self._delayed and self._delayed[0][0] <= now:
                _due, _n, packet, destination = heapq.heappop(self._delayed)
                self.rtp.sendto(packet, destination)

    def _send(self, packet: bytes, destination: tuple[str, int], now: float) -> None:
        """At once, or through the impairment: lost, duplicated, delayed by up to the jitter."""
        if self.impairment is None:
            self.rtp.sendto(packet, destination)
            return
        loss, duplicate, jitter = self.impairment
        if self._random.random() < loss:
            self.lost += 1
            return
        copies = 2 if self._random.random() < duplicate else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            self._count += 1
            heapq.heappush(self._delayed, (now + self._random.uniform(0, jitter), self._count, packet, destination))

    def sip_received(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            message = parse_message(data)
        except SipParseError:
            return
        if isinstance(message, Request):
            self._request(message, source)

    def _request(self, request: Request, source: tuple[str, int]) -> None:
        call_id = str(request.headers.get("Call-ID"))
        if request.method == "INVITE":
            self._invite(request, source, call_id)
        elif request.method == "BYE":
            stream = self.by_call_id.pop(call_id, None)
            if stream is not None:
                stream.active = False
            self.sip.sendto(serialize(build_response(request, 200, "OK")), source)
        elif request.method != "ACK":
            self.sip.sendto(serialize(build_response(request, 200, "OK")), source)

    def _invite(self, request: Request, source: tuple[str, int], call_id: str) -> None:
        try:
            offer = parse_sdp(request.body)
        except SdpError:
            self.sip.sendto(serialize(build_response(request, 488, "Not Acceptable Here")), source)
            return
        stream = self.by_call_id.get(call_id)
        if stream is None:
            self.invites += 1
            stream = self.add(request.uri.user or f"call{self.invites}", offer.audio_address())
            self.by_call_id[call_id] = stream
        response = build_response(request, 200, "OK", new_tag())
        response.headers.set("Contact", f"<sip:{stream.name}@127.0.0.1:{self.sip.getsockname()[1]}>")
        response.headers.set("Content-Type", "application/sdp")
        response.body = sdp_body(self.rtp_port, "RTP/AVP 0", "rtpmap:0 PCMU/8000", "sendonly").encode()
        self.sip.sendto(serialize(response), source)

    def report(self) -> dict[str, Any]:
        return {
            "streams": {s.name: {"sent": s.frames_sent, "clicks": s.clicks} for s in self.streams.values()},
            "ticks": self.ticks,
            "lateTicks": self.late_ticks,
            "invites": self.invites,
            "lost": self.lost,
            "duplicated": self.duplicated,
        }


class _Sip(asyncio.DatagramProtocol):
    def __init__(self, generator: LoadGenerator) -> None:
        self.generator = generator

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.generator.sip_received(data, addr)


async def _serve(conn: Connection, sip_port: int, rtp_port: int) -> None:
    loop = asyncio.get_running_loop()
    sip = _bound(sip_port)
    rtp, rtcp = _bound(rtp_port), _bound(rtp_port + 1)  # RTCP reports from the bridge land here, unread
    generator = LoadGenerator(sip, rtp)
    await loop.create_datagram_endpoint(lambda: _Sip(generator), sock=sip)
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    sender = asyncio.create_task(generator.send_forever())
    conn.send("ready")
    while (command := await commands.get())[0] != "quit":
        if command[0] == "media":
            generator.add(command[1], (command[2], command[3]))
        elif command[0] == "pause":
            generator.sending = False
        elif command[0] == "impair":
            generator.impairment = (float(command[1]), float(command[2]), float(command[3]))
        elif command[0] == "report":
            conn.send(generator.report())
    sender.cancel()
    rtcp.close()


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def run_generator(conn: Connection, sip_port: int, rtp_port: int) -> None:
    """Entry point of the generator's process."""
    asyncio.run(_serve(conn, sip_port, rtp_port))
