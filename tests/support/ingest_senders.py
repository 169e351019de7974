"""Scripted WebSocket media senders: Twilio Media Streams, ACS audio streaming, RingCentral.

Each replays its platform's documented message sequence over a real WebSocket at real-time
pace (one 20 ms media message per track every 20 ms), carrying a tone per track. Twilio's
signature is computed with the ``twilio`` package's RequestValidator, µ-law with the G.711
formula written here (not the bridge's tables). Impairments: a pause (messages withheld,
then sent at once), dropped messages, adjacent messages swapped.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
from twilio.request_validator import RequestValidator

FRAME_SECONDS = 0.02


def ulaw_encode(samples: npt.NDArray[np.float64]) -> bytes:
    """ITU-T G.711 µ-law of samples in [-1, 1] (segment/mantissa form, bias 0x84, bits inverted)."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    # G.711 takes 14-bit input: an arithmetic shift, so negative values round away from zero
    magnitude = np.minimum(np.where(pcm < 0, (-pcm + 3) // 4 * 4, pcm), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes: bytes = ((~(sign | (exponent << 4) | mantissa)) & 0xFF).astype(np.uint8).tobytes()
    return codes


@dataclass
class Script:
    seconds: float = 6.0
    tones: tuple[float, ...] = (440.0,)  # one track per tone
    amplitude: float = 0.3
    pause_at: float | None = None  # withhold messages from here for pause_seconds, then send them at once
    pause_seconds: float = 1.0
    drop: float = 0.0  # fraction of media messages never sent
    reorder: float = 0.0  # fraction of adjacent message pairs sent in swapped order
    stop: bool = True  # send the platform's stop message(s) before closing
    abort_at: float | None = None  # tear the TCP connection down here (no close frame, no stop)
    rate: int = 8000  # ACS: 16000 or 24000
    parameters: dict[str, str] = field(default_factory=dict)  # Twilio customParameters / RC metadata
    seed: int = 7
    before_media: list[str | bytes] = field(default_factory=list)  # raw frames sent right after start
    during_media: Callable[[int], list[str | bytes]] | None = None  # raw frames before media message n


@dataclass
class SendResult:
    started_at: float = 0.0  # wall clock when the first media message went out
    ended_at: float = 0.0
    media_sent: int = 0
    media_dropped: int = 0
    swapped: int = 0
    close_code: int | None = None
    close_reason: str = ""
    status: int = 0  # the upgrade's HTTP status when it was refused
    error: str = ""


class Sender:
    """One scripted stream to ``url`` (``/ingest/<route>``) for ``protocol``."""

    def __init__(self, protocol: str, url: str, secret: str, script: Script, call_sid: str = "CA" + "0" * 32) -> None:
        self.protocol, self.url, self.secret, self.script = protocol, url, secret, script
        self.call_sid = call_sid
        self.headers: dict[str, str] = {}
        self.result = SendResult()
        self.aborted = False
        self.server_closed = False
        self._payloads: dict[tuple[int, int], str] = {}
        self._thread: threading.Thread | None = None

    # -- running -------------------------------------------------------------------

    def start(self) -> Sender:
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 60.0) -> SendResult:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the sender did not finish"
        return self.result

    def signed_headers(self) -> dict[str, str]:
        if self.protocol == "twilio":
            return {"X-Twilio-Signature": RequestValidator(self.secret).compute_signature(self.url, {})}
        return {}

    async def run(self) -> None:
        headers = {**self.signed_headers(), **self.headers}
        async with aiohttp.ClientSession() as http:
            try:
                socket = await http.ws_connect(self.url, headers=headers, autoclose=False, max_msg_size=0)
            except aiohttp.WSServerHandshakeError as exc:
                self.result.status = exc.status
                return
            watcher = asyncio.create_task(self._watch(socket))
            try:
                await self._converse(socket)
            except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                self.result.error = f"{type(exc).__name__}: {exc}"
            finally:
                self.result.ended_at = time.time()
                await self._finish(socket, watcher)

    async def _watch(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        """Read what the bridge sends (only its close, here) while the script sends media."""
        while True:
            message = await socket.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                if message.type is aiohttp.WSMsgType.CLOSE:
                    self.result.close_reason = str(message.extra or "")
                    self.server_closed = True
                return

    async def _finish(self, socket: aiohttp.ClientWebSocketResponse, watcher: asyncio.Task[None]) -> None:
        if not self.aborted:
            try:
                async with asyncio.timeout(3):
                    await asyncio.shield(watcher)
            except TimeoutError:
                pass
        watcher.cancel()
        if not self.aborted:
            await socket.close()
        self.result.close_code = socket.close_code

    async def _converse(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        for text in self.opening():
            await socket.send_str(text)
        for raw in self.script.before_media:
            await (socket.send_bytes(raw) if isinstance(raw, bytes) else socket.send_str(raw))
        await self._media(socket)
        if self.aborted:
            return
        closing = self.closing() if self.script.stop else []
        for text in closing:
            await socket.send_str(text)
        if not closing:  # no stop message (ACS has none): the sender's close ends the stream
            await socket.close()

    async def _media(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        """Real-time pace: media message n of every track is due at start + n * 20 ms."""
        script, rng = self.script, random.Random(self.script.seed)
        frames = round(script.seconds / FRAME_SECONDS)
        start = time.monotonic()
        self.result.started_at = time.time()
        held: list[str] = []
        deferred: list[str] = []
        for n in range(frames):
            delay = start + n * FRAME_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if socket.closed or self.server_closed:
                return
            if script.abort_at is not None and n * FRAME_SECONDS >= script.abort_at:
                transport: Any = socket._writer.transport  # no public way to break a connection
                transport.abort()
                self.aborted = True
                return
            if script.during_media is not None:
                for raw in script.during_media(n):
                    await (socket.send_bytes(raw) if isinstance(raw, bytes) else socket.send_str(raw))
            batch = [self.media(track, n) for track in range(len(script.tones))]
            kept = [text for text in batch if rng.random() >= script.drop]
            self.result.media_dropped += len(batch) - len(kept)
            if kept and rng.random() < script.reorder:  # this frame goes out after the next one
                deferred, kept = kept, []
                self.result.swapped += 1
            else:
                kept, deferred = kept + deferred, []
            held += kept
            pause = script.pause_at
            if pause is not None and pause <= n * FRAME_SECONDS < pause + script.pause_seconds:
                continue  # withheld: sent at once when the pause ends
            for text in held:
                await socket.send_str(text)
            self.result.media_sent += len(held)
            held = []
        for text in held + deferred:
            await socket.send_str(text)
        self.result.media_sent += len(held) + len(deferred)

    # -- the platforms' messages -----------------------------------------------------

    def tone(self, track: int, n: int) -> npt.NDArray[np.float64]:
        rate = self.script.rate
        count = round(rate * FRAME_SECONDS)
        t = (np.arange(count) + n * count) / rate
        return self.script.amplitude * np.sin(2 * np.pi * self.script.tones[track] * t)

    def payload(self, track: int, n: int) -> str:
        """Frame ``n``'s base64 audio; whole-hertz tones repeat every 50 frames (1 s), so those are cached."""
        key = (track, n % 50)
        if key not in self._payloads:
            self._payloads[key] = self._encoded(track, n % 50)
        return self._payloads[key]

    def _encoded(self, track: int, n: int) -> str:
        samples = self.tone(track, n)
        linear = self.protocol == "acs"
        data = np.round(samples * 32767).astype("<i2").tobytes() if linear else ulaw_encode(samples)
        return base64.b64encode(data).decode()

    def opening(self) -> list[str]:
        return [json.dumps(message) for message in OPENINGS[self.protocol](self)]

    def media(self, track: int, n: int) -> str:
        return json.dumps(MEDIA[self.protocol](self, track, n))

    def closing(self) -> list[str]:
        return [json.dumps(message) for message in CLOSINGS[self.protocol](self)]


TWILIO_TRACKS = ("inbound", "outbound")
RC_PERSPECTIVES = ("Participant", "Conference")
ACS_ORIGIN = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def _twilio_opening(sender: Sender) -> list[dict[str, Any]]:
    tracks = list(TWILIO_TRACKS[: len(sender.script.tones)])
    return [
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC" + "1" * 32,
                "streamSid": "MZ" + "2" * 32,
                "callSid": sender.call_sid,
                "tracks": tracks,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": sender.script.parameters,
            },
            "streamSid": "MZ" + "2" * 32,
        },
    ]


def _twilio_media(sender: Sender, track: int, n: int) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(n * len(sender.script.tones) + track + 2),
        "media": {
            "track": TWILIO_TRACKS[track],
            "chunk": str(n + 1),
            "timestamp": str(n * 20),
            "payload": sender.payload(track, n),
        },
        "streamSid": "MZ" + "2" * 32,
    }


def _twilio_closing(sender: Sender) -> list[dict[str, Any]]:
    stop = {"accountSid": "AC" + "1" * 32, "callSid": sender.call_sid}
    return [{"event": "stop", "sequenceNumber": "999999", "streamSid": "MZ" + "2" * 32, "stop": stop}]


def _acs_opening(sender: Sender) -> list[dict[str, Any]]:
    length = round(sender.script.rate * FRAME_SECONDS) * 2
    metadata = {"subscriptionId": "sub-1", "encoding": "PCM", "sampleRate": sender.script.rate, "channels": 1}
    return [{"kind": "AudioMetadata", "audioMetadata": {**metadata, "length": length}}]


def _acs_media(sender: Sender, track: int, n: int) -> dict[str, Any]:
    at = ACS_ORIGIN + timedelta(milliseconds=20 * n)
    participant = f"8:acs:participant-{track}" if len(sender.script.tones) > 1 else ""
    data = {"timestamp": at.isoformat().replace("+00:00", "Z"), "data": sender.payload(track, n), "silent": False}
    if participant:
        data["participantRawID"] = participant
    return {"kind": "AudioData", "audioData": data}


def _rc_opening(sender: Sender) -> list[dict[str, Any]]:
    metadata = {
        "callId": "rc-call-1",
        "sessionId": "s1",
        "ani": "+14155550100",
        "dnis": "+16505550100",
        "accountId": "acc",
        "subAccountId": "sub",
        "agentId": "agent-7",
        "contentType": "audio/x-mulaw",
        "sampleRateHertz": 8000,
        **sender.script.parameters,
    }
    return [
        {"event": "Connected", "protocol": "AgentSession", "version": "1.0.0"},
        {"event": "Start", "metadata": metadata},
    ]


def _rc_media(sender: Sender, track: int, n: int) -> dict[str, Any]:
    return {"event": "Media", "perspective": RC_PERSPECTIVES[track], "sequenceId": n, "media": sender.payload(track, n)}


def _rc_closing(sender: Sender) -> list[dict[str, Any]]:
    return [{"event": "Stop", "perspective": RC_PERSPECTIVES[t]} for t in range(len(sender.script.tones))]


OPENINGS: dict[str, Callable[[Sender], list[dict[str, Any]]]] = {
    "twilio": _twilio_opening,
    "acs": _acs_opening,
    "ringcentral": _rc_opening,
}
MEDIA: dict[str, Callable[[Sender, int, int], dict[str, Any]]] = {
    "twilio": _twilio_media,
    "acs": _acs_media,
    "ringcentral": _rc_media,
}
CLOSINGS: dict[str, Callable[[Sender], list[dict[str, Any]]]] = {
    "twilio": _twilio_closing,
    "acs": lambda sender: [],
    "ringcentral": _rc_closing,
}
