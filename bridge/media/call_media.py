"""The media side of one answered call: RTP in, playout, encode, RTMP out (asyncio driver).

Owns the receiver (with SRTP, RTCP reports, DTMF), the silence sender, the output
clock and pipeline, and the :class:`StreamPublisher`. :meth:`run` returns the reason
when media can no longer go on (no RTP for ``rtp.timeout``, the stream given up).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Callable
from typing import Any

from bridge.config import BridgeConfig
from bridge.media.encoder import AudioEncoder
from bridge.media.far_end import FarEndMedia
from bridge.media.pipeline import MediaPipeline, PlayoutClock
from bridge.media.rtp_endpoint import RtpEndpoint
from bridge.media.srtp import SrtpTransform
from bridge.media.stream import StreamPublisher, StreamState
from bridge.model import OutputSpec
from bridge.rtmp.amf0 import AmfValue
from bridge.rtmp.url import RtmpTarget
from bridge.sip.events import MediaChanged
from bridge.sip.offer_answer import RemoteMedia
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver
from rtp.rtcp import RtcpReporter
from rtp.sender import SilenceSender

log = logging.getLogger("bridge.media")
Note = Callable[..., None]
WATCHDOG_SECONDS = 10.0


def _metadata(output: OutputSpec) -> dict[str, AmfValue]:
    """onMetaData for players (FLV spec E.5): codec id 10 = AAC, 8 = G.711 mu-law."""
    if output.codec == "pcmu":
        return {
            "audiocodecid": 8.0,
            "audiosamplerate": 8000.0,
            "audiosamplesize": 16.0,
            "stereo": False,
            "audiodatarate": 64.0,
            "encoder": "sip-rtmp-bridge",
        }
    return {
        "audiocodecid": 10.0,
        "audiosamplerate": float(output.sample_rate),
        "audiosamplesize": 16.0,
        "stereo": False,
        "audiodatarate": output.bitrate / 1000,
        "encoder": "sip-rtmp-bridge",
    }


COUNTER_NAMES = (
    "packets",
    "lost",
    "latePackets",
    "duplicatePackets",
    "concealedMs",
    "silenceInsertedSeconds",
    "comfortNoiseMs",
    "jitterMs",
    "levelDbfs",
    "framesEncoded",
    "encodeSeconds",
    "bytesPublished",
    "messagesPublished",
    "audioMessagesDropped",
    "reconnects",
    "reconnectAttempts",
    "delayEstimateMs",
    "foreignPackets",
    "ssrcChanges",
    "dtmfPackets",
    "rtcpPackets",
    "rtcpReportsSent",
    "silencePacketsSent",
    "dtmfSent",
    "srtpFailures",
    "encoderRestarts",
)


def zero_counters() -> dict[str, Any]:
    """The counters of a call whose media has not reported yet (same keys as :meth:`CallMedia.counters`)."""
    counters: dict[str, Any] = dict.fromkeys(COUNTER_NAMES, 0)
    counters["levelDbfs"] = -120.0
    return counters


class CallMedia:
    def __init__(
        self,
        config: BridgeConfig,
        rtmp_tls: ssl.SSLContext | None,
        endpoint: RtpEndpoint,
        remote: RemoteMedia,
        target: RtmpTarget,
        send_silence: bool,
        encoder_factory: Callable[[], AudioEncoder],
        note: Note,
        on_stream_state: Callable[[StreamState, str], None],
        output: OutputSpec,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self._note = note
        self._encoder_factory = encoder_factory
        now = asyncio.get_running_loop().time()
        rtp_config = config.rtp
        self.far_end = FarEndMedia(remote.address, now)
        self.srtp = SrtpTransform(remote.srtp) if remote.srtp else None
        self.receiver = RtpReceiver(
            remote.address,
            latch=rtp_config.latch,
            playout=PlayoutBuffer(initial_delay=rtp_config.jitter_delay_ms * 8),
        )
        self.reporter = RtcpReporter(secrets.randbits(32), now)
        self.sender = (
            SilenceSender(self.reporter.our_ssrc, secrets.randbits(16), secrets.randbits(32), now)
            if send_silence
            else None
        )
        self.stream = StreamPublisher(target, _metadata(output), config.rtmp, on_stream_state, rtmp_tls)
        self.pipeline: MediaPipeline | None = None
        self.telephone_event = remote.telephone_event
        self.encoder_restarts = 0
        endpoint.set_handler(self._on_rtp)
        endpoint.set_rtcp_handler(self._on_rtcp)

    async def run(self) -> str:
        """Media until it cannot go on; returns why."""
        keep_call = self.config.rtmp.keep_call_on_failure
        async with asyncio.TaskGroup() as group:
            stream_task = group.create_task(self.stream.run())
            loop_task = group.create_task(self._media_loop())
            running: set[asyncio.Task[str]] = {stream_task, loop_task}
            while True:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                reason = next(iter(done)).result()
                if loop_task in done or not keep_call:
                    break
                self._note("stream-failed", reason=reason)  # the call goes on without a stream
            for task in running:
                task.cancel()
        return reason

    async def close(self) -> None:
        """Publish the last audio (flushed from the encoder), then unpublish."""
        if self.pipeline is not None:
            now = asyncio.get_running_loop().time()
            for timestamp_ms, body in self.pipeline.flush():
                self.stream.send_audio(timestamp_ms, body, now)
            self.pipeline = None
        await self.stream.close()

    def update(self, change: MediaChanged) -> bool:
        """Hold, resume, a new address or new keys (RFC 3264 section 8.4); returns whether held."""
        held = self.far_end.update(change, asyncio.get_running_loop().time())
        if change.srtp is not None and (self.srtp is None or self.srtp.keys != change.srtp):
            self.srtp = SrtpTransform(change.srtp)
        self.receiver.set_remote(change.address)
        return held

    # -- the loop -----------------------------------------------------------------------

    async def _media_loop(self) -> str:
        """Thin driver: tick pipeline, silence, RTCP, DTMF and watchdogs at their deadlines."""
        loop = asyncio.get_running_loop()
        self.pipeline = await self._new_pipeline(loop.time())
        timeout = self.config.rtp.timeout
        started = loop.time()
        while self.pipeline is not None:  # None once close() has flushed it
            now = loop.time()
            for timestamp_ms, body in self.pipeline.tick(now):
                self.stream.send_audio(timestamp_ms, body, now)
            self._send_silence(now)
            self._send_report(now)
            self._report_dtmf()
            self.stream.check_progress(now)
            await self._check_encoder(now)
            if self.pipeline is None:
                break
            if self.far_end.silent_for(self.receiver.last_packet_at or started, now) > timeout:
                return f"no RTP received for {timeout:g} s"
            await asyncio.sleep(max(0.0, self._next_deadline() - loop.time()))
        return "media stopped"

    async def _new_pipeline(self, now: float, clock: PlayoutClock | None = None) -> MediaPipeline:
        encoder = await asyncio.to_thread(self._encoder_factory)
        header = encoder.sequence_header()
        if header is not None:
            self.stream.set_sequence_header(header)
        batches = self.config.media.frames_per_batch
        return MediaPipeline(self.receiver.buffer, encoder, clock or PlayoutClock(now), batches)

    async def _check_encoder(self, now: float) -> None:
        """The encoder watchdog: no output for WATCHDOG_SECONDS means a new encoder (same clock)."""
        assert self.pipeline is not None
        if now - self.pipeline.last_output_at > WATCHDOG_SECONDS:
            self.encoder_restarts += 1
            self._note("encoder-restart", reason=f"no encoded audio for {WATCHDOG_SECONDS:g} s")
            self.pipeline = await self._new_pipeline(now, self.pipeline.clock)

    def _next_deadline(self) -> float:
        assert self.pipeline is not None
        deadline = min(self.pipeline.next_deadline(), self.reporter.get_timer())
        return min(deadline, self.sender.get_timer()) if self.sender is not None else deadline

    def _send_silence(self, now: float) -> None:
        if self.sender is None:
            return
        datagrams = self.sender.poll(now)  # paced even while held, so its timeline stays continuous
        if self.far_end.receiving:
            for datagram in datagrams:
                self.endpoint.send(self.srtp.protect(datagram) if self.srtp else datagram, self.far_end.address)

    def _send_report(self, now: float) -> None:
        report = self.reporter.poll(now, self.receiver.ssrc, self.receiver.stats)
        if report is not None:
            host, port = self.far_end.address
            self.endpoint.send_rtcp(self.srtp.protect_rtcp(report) if self.srtp else report, (host, port + 1))

    def _report_dtmf(self) -> None:
        for event in self.receiver.dtmf_events:
            self._note("dtmf", digit=event.digit, durationMs=event.duration_ms, via="RFC 4733")
        self.receiver.dtmf_events.clear()

    # -- datagrams ----------------------------------------------------------------------

    def _on_rtp(self, data: bytes, source: tuple[str, int]) -> None:
        if self.srtp is not None:
            plain = self.srtp.unprotect(data)
            if plain is None:
                return
            data = plain
        self.receiver.datagram_received(data, source, asyncio.get_running_loop().time())

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        self.endpoint.rtcp_received += 1
        if source[0] != self.far_end.address[0]:
            return
        plain = self.srtp.unprotect_rtcp(data) if self.srtp is not None else data
        if plain is not None:
            self.reporter.receive(plain, asyncio.get_running_loop().time())

    # -- reporting ----------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        receiver, playout, stream = self.receiver, self.receiver.buffer.stats, self.stream
        pipeline = self.pipeline
        return {
            "packets": receiver.counters.packets,
            "lost": receiver.stats.lost_total,
            "latePackets": playout.late,
            "duplicatePackets": playout.duplicate,
            "concealedMs": playout.concealed_samples // 8,
            "silenceInsertedSeconds": round(playout.silence_samples / 8000, 3),
            "comfortNoiseMs": playout.comfort_noise_samples // 8,
            "jitterMs": round(receiver.stats.jitter_ms, 2),
            "levelDbfs": pipeline.level_dbfs if pipeline else -120.0,
            "framesEncoded": pipeline.encoder.encoded_packets if pipeline else 0,
            "encodeSeconds": round(pipeline.encode_seconds, 4) if pipeline else 0.0,
            "bytesPublished": stream.bytes_sent,
            "messagesPublished": stream.messages_sent,
            "audioMessagesDropped": stream.dropped_messages,
            "reconnects": stream.reconnects,
            "reconnectAttempts": stream.reconnect_attempts,
            "delayEstimateMs": self._delay_ms(),
            "foreignPackets": receiver.counters.foreign_source,
            "ssrcChanges": receiver.counters.ssrc_changes,
            "dtmfPackets": receiver.counters.telephone_events,
            "rtcpPackets": self.endpoint.rtcp_received,
            "rtcpReportsSent": self.reporter.sent,
            "silencePacketsSent": self.sender.sent if self.sender else 0,
            "dtmfSent": self.sender.dtmf_sent if self.sender else 0,
            "srtpFailures": self.srtp.failures if self.srtp else 0,
            "encoderRestarts": self.encoder_restarts,
        }

    def _delay_ms(self) -> int:
        """Bridge-added delay: playout buffer + batching + encoder look-ahead + RTMP backlog."""
        pipeline = self.pipeline
        if pipeline is None:
            return 0
        encoder_ms = 2048 * 1000 // 16000 if pipeline.encoder.input_rate else 0
        buffered = self.receiver.buffer.depth // 8
        return int(buffered + pipeline.batch // 8 + encoder_ms + self.stream.backlog_seconds * 1000)
