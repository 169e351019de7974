"""The media side of one answered call: RTP in, playout, encode, RTMP out (asyncio driver).

Owns the receiver (with SRTP, RTCP reports, DTMF), the silence sender, the output
clock and pipeline, and the call's destinations (:class:`CallOutputs`). :meth:`run`
returns the reason when media can no longer go on (no RTP for ``rtp.timeout``, every
destination given up). It holds no protocol logic itself: it wires the parts and runs
them at their deadlines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Any

from bridge.config import BridgeConfig
from bridge.media.call_video import CallVideo, VideoRemote
from bridge.media.decoders import codec_media
from bridge.media.encoder import AudioEncoder
from bridge.media.far_end import FarEndMedia
from bridge.media.feed_tracks import FeedTracks
from bridge.media.file_writer import FileWriter
from bridge.media.outputs import CallOutputs, StreamStateHandler
from bridge.media.pacer import GridPacer, on_grid
from bridge.media.pipeline import MediaPipeline, PlayoutClock, pull_unit
from bridge.media.protocol import PICTURE_FAST_UPDATE, DestinationStart, RecordStart
from bridge.media.recorder import CallRecorder
from bridge.media.rtp_endpoint import RtpEndpoint
from bridge.media.slate import SlateCache, SlateGop
from bridge.media.srtp import SrtpTransform
from bridge.media.ticker import Ticker
from bridge.media.video_sender import VideoSender
from bridge.model import OutputSpec, VideoSpec
from rtp.avsync import AvSync
from rtp.codecs import EVENT_PAYLOAD_TYPES, VIDEO_PAYLOAD_TYPES
from rtp.peer import Peer
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver
from rtp.rtcp import RtcpReporter, parse_sender_report
from rtp.sender import SilenceSender

log = logging.getLogger("bridge.media")
Note = Callable[..., None]
WATCHDOG_SECONDS = 10.0
RESTART_ENCODER = "restart the encoder"


class CallMedia:
    def __init__(
        self,
        config: BridgeConfig,
        rtmp_tls: ssl.SSLContext | None,
        endpoint: RtpEndpoint,
        remote: Peer,
        destinations: list[DestinationStart],
        send_silence: bool,
        encoder_factory: Callable[[OutputSpec, int], AudioEncoder],
        note: Note,
        on_stream_state: StreamStateHandler,
        slates: SlateCache,
        ticker: Ticker,
        video_endpoint: RtpEndpoint | None = None,
        feed: bool = False,
        stereo: bool = False,
        record: RecordStart | None = None,
        writer: FileWriter | None = None,
    ) -> None:
        self.config = config
        self._record, self._writer = record, writer
        self.recorder: CallRecorder | None = None
        self.listen: Callable[[list[bytes]], None] | None = None  # someone listens: the published AAC frames
        self._ticker = ticker
        loop = asyncio.get_running_loop()
        self._verdict: asyncio.Future[str] = loop.create_future()
        self._attached = asyncio.Event()  # the pipeline and its tracks exist
        self.endpoint = endpoint
        self._note = note
        self._encoder_factory = encoder_factory
        self._slates = slates
        now = loop.time()
        self._started = now
        self.far_end = FarEndMedia(remote, now)
        self.srtp = SrtpTransform(remote.srtp) if remote.srtp else None
        self.codec = codec_media(remote.codec)
        self.receiver = self._new_receiver(remote)
        # An ingest call: the daemon's RTP feed of a WebSocket stream, one SSRC per track, mixed.
        self.feed = FeedTracks(self.receiver, lambda: self._new_receiver(remote), stereo) if feed else None
        self.reporter = RtcpReporter(secrets.randbits(32), now)
        self.sender = self._new_sender(remote, now) if send_silence else None
        self._pacer = GridPacer.of(ticker)
        self.outputs = CallOutputs(destinations, config.rtmp, rtmp_tls, on_stream_state, note)
        self.pipeline: MediaPipeline | None = None
        self._retired = (0, 0.0)  # frames and encode seconds of pipelines replaced or closed
        self.telephone_event = remote.telephone_event
        self.encoder_restarts = 0
        self.video = self._new_video(remote, video_endpoint)
        self._sends_video = remote.video is not None and remote.video.send
        self._video_payload_type = remote.video.payload_type if remote.video is not None else 0
        endpoint.set_rtcp_handler(self._on_rtcp)
        endpoint.discard_pending()  # what arrived before the answer is not the call's audio

    def _new_video(self, remote: Peer, endpoint: RtpEndpoint | None) -> CallVideo | None:
        """The far end's H.264, when it was negotiated: synchronised with the audio through RTCP SRs."""
        if remote.video is None or endpoint is None:
            return None
        video = remote.video
        sync = AvSync({"audio": self.codec.codec.rtp_clock, "video": 90000})
        payload_types = {video.payload_type, *VIDEO_PAYLOAD_TYPES}  # ours (RFC 3264 6.1) or the answer's
        far = VideoRemote(video.address, frozenset(payload_types), video.sprop, video.pli, video.fir, video.srtp)
        buffer = self.receiver.buffer
        endpoint.discard_pending()
        ask_by_info = lambda: self._note(PICTURE_FAST_UPDATE)  # noqa: E731 - the daemon sends the INFO
        interval = keyframe_interval(self.outputs.videos(), self.config.video.passthrough_keyframe_seconds)
        delay = lambda: buffer.added_delay  # noqa: E731
        return CallVideo(far, endpoint, self.reporter.our_ssrc, sync, delay, ask_by_info, interval, self._note)

    def _new_receiver(self, remote: Peer) -> RtpReceiver:
        """RTP in the negotiated codec, on a playout timeline at the codec's audio rate."""
        codec, rate = self.codec.codec, self.codec.codec.audio_rate
        playout = PlayoutBuffer(
            initial_delay=self.config.rtp.jitter_delay_ms * rate // 1000,
            encoding="pcmu" if self.codec.decode is None else "linear",
            rate=rate,
            samples_per_tick=codec.samples_per_tick,
        )
        return RtpReceiver(
            remote.address,
            latch=self.config.rtp.latch,
            playout=playout,
            telephone_event_pt=remote.event_payload_type,
            clock_rate=codec.rtp_clock,
            audio_pt=remote.payload_type,
            also_audio_pt=codec.payload_type,
            also_event_pt=EVENT_PAYLOAD_TYPES.get(codec.rtp_clock),
            decode=self.codec.decode,
        )

    def _new_sender(self, remote: Peer, now: float) -> SilenceSender:
        return SilenceSender(
            self.reporter.our_ssrc,
            secrets.randbits(16),
            secrets.randbits(32),
            on_grid(now),
            payload_type=remote.payload_type,
            silence=self.codec.silence,
            ticks_per_frame=self.codec.ticks_per_frame,
            event_payload_type=remote.event_payload_type,
        )

    async def run(self) -> str:
        """Media until it cannot go on; returns why."""
        async with asyncio.TaskGroup() as group:
            outputs_task = group.create_task(self.outputs.run())
            media_task = group.create_task(self._media())
            extras = {group.create_task(self._video_extras())} if self.video is not None else set()
            done, running = await asyncio.wait({outputs_task, media_task}, return_when=asyncio.FIRST_COMPLETED)
            reason = next(iter(done)).result()
            for task in running | extras:
                task.cancel()
        return reason

    async def close(self) -> None:
        """Publish the last audio (flushed from the encoders), then unpublish every destination."""
        self._ticker.cancel(self)
        self._pacer.remove(id(self))
        if self.pipeline is not None:
            flushed = self.pipeline.flush()
            self.outputs.publish(flushed, asyncio.get_running_loop().time())
            if self.recorder is not None:
                self.recorder.aac(flushed[0])
            self._retire(self.pipeline)
            self.pipeline = None
        if self.recorder is not None:
            await self.recorder.close()
        await self.outputs.close()

    def update(self, change: Peer) -> bool:
        """Hold, resume, a new address or new keys (RFC 3264 section 8.4); returns whether held."""
        held = self.far_end.update(change, asyncio.get_running_loop().time())
        if change.srtp is not None and (self.srtp is None or self.srtp.keys != change.srtp):
            self.srtp = SrtpTransform(change.srtp)
        self.receiver.set_remote(change.address)
        if self.video is not None and change.video is not None:
            self.video.update_remote(change.video.address, change.video.send, change.video.srtp)
        return held

    # -- the loop -----------------------------------------------------------------------

    async def _media(self) -> str:
        """Open what the call needs (slate GOPs, encoders), then let the worker's ticker run it."""
        loop = asyncio.get_running_loop()
        try:
            gops = await self._prepare_video()
        except Exception as exc:  # a picture that cannot be decoded or encoded
            return f"slate picture could not be encoded: {type(exc).__name__}: {exc}"
        self.pipeline = self._new_pipeline(loop.time())
        self.outputs.attach(self.pipeline, gops, live_video=self.video is not None)
        self.recorder = self._new_recorder(self.pipeline, loop.time())
        if self.video is not None:
            self.video.tracks = self.outputs.live_tracks
            self.video.set_origin(self.pipeline.clock.start, self.pipeline.lanes[0].encoder.start_offset_ms)
            self.video.endpoint.discard_pending()
        self.endpoint.discard_pending()  # what waited in the socket while slates were encoded is stale
        self._attached.set()
        self._started = loop.time()
        if self.sender is not None:
            self._pacer.add(id(self), self._send_silence, self.failed, loop.time())
        while True:
            self._verdict = loop.create_future()
            self._ticker.schedule(self, loop.time())
            try:
                verdict = await self._verdict
            finally:
                self._ticker.cancel(self)
            if verdict != RESTART_ENCODER or self.pipeline is None:
                return verdict
            self._restart_encoder(loop.time())

    def tick(self, now: float) -> float | None:
        """The call's media work due at ``now`` (run by the worker's ticker); the next deadline."""
        pipeline = self.pipeline
        if pipeline is None:
            return None  # closed
        self._receive(now)
        if self.video is not None:
            self.video.sending = self.far_end.receiving
            self.video.tick(now)
        published = pipeline.tick(now)
        self.outputs.publish(published, now)
        if self.recorder is not None:
            self._record_tick(pipeline, published, now)
        if self.listen is not None and published[0]:
            self.listen([body[2:] for _timestamp, body in published[0]])
        self._send_report(now)
        if self.receiver.dtmf_events:
            self._report_dtmf()
        self.outputs.check_progress(now)
        if now - pipeline.last_output_at > WATCHDOG_SECONDS:
            self._conclude(RESTART_ENCODER)
            return None
        timeout = self.config.rtp.timeout
        last_packet_at = self.feed.last_packet_at if self.feed is not None else self.receiver.last_packet_at
        if self.far_end.silent_for(last_packet_at or self._started, now) > timeout:
            self._conclude(f"no RTP received for {timeout:g} s")
            return None
        return self._next_deadline()

    def failed(self, error: Exception) -> None:
        self._conclude(f"media failed: {type(error).__name__}")

    def _conclude(self, verdict: str) -> None:
        if not self._verdict.done():
            self._verdict.set_result(verdict)

    async def _prepare_video(self) -> dict[VideoSpec, SlateGop]:
        """The slate GOPs of this call's video tracks (encoded once per worker, then cached)."""
        directory = self.config.video.slate_directory
        specs = self.outputs.video_specs
        gops = await asyncio.gather(*(self._slates.get(directory, spec) for spec in specs))
        return dict(zip(specs, gops, strict=True))

    async def _video_extras(self) -> None:
        """Beside the media, once it runs (so a first encode never delays the call's audio): the
        picture shown after ``[video] stall_seconds`` without the far end's video, and our own
        picture to the far end when ``hasVideo`` is true."""
        await self._attached.wait()
        video = self.config.video
        spec = dataclasses.replace(video.default_video(), mode="slate")
        try:
            self.outputs.set_stall_picture(
                await self._slates.get(video.slate_directory, spec), int(video.stall_seconds * 1000)
            )
        except Exception as exc:  # a picture that cannot be encoded: the stream keeps the last frame
            log.warning("call video: the stall picture could not be encoded: %s: %s", type(exc).__name__, exc)
        if self._sends_video and self.video is not None:
            self.video.sender = await self._video_sender(asyncio.get_running_loop().time())

    async def _video_sender(self, now: float) -> VideoSender | None:
        """Our slate as RTP H.264 on the answer's payload type (encoded once per worker, then cached)."""
        assert self.video is not None
        try:
            gop = await self._slates.get(self.config.video.slate_directory, self.config.video.sent_video())
        except Exception as exc:  # a picture that cannot be encoded: receive only, the call goes on
            log.warning("call video: our picture could not be encoded, sending none: %s: %s", type(exc).__name__, exc)
            return None
        numbering = secrets.randbits(32), secrets.randbits(16), secrets.randbits(32)  # RFC 3550 5.1
        return VideoSender(gop.units, gop.fps, numbering[0], self._video_payload_type, now, *numbering[1:])

    def _new_pipeline(self, now: float, clock: PlayoutClock | None = None) -> MediaPipeline:
        # On the loop thread, not in a thread: opening FFmpeg's AAC encoder takes about 0.6 ms and
        # holds the GIL throughout, so a thread gains nothing, and while executor threads hold the
        # GIL every other call's encode (which releases it) waits up to the 5 ms switch interval
        # to get it back: measured as single ticks of 17-40 ms during a burst of new calls.
        rate = self.codec.codec.audio_rate
        encoders = [self._encoder_factory(spec, rate) for spec in self.outputs.audio_specs]
        batches = self.config.media.frames_per_batch
        step = pull_unit([encoder.input_batch * batches for encoder in encoders], encoders[0].input_rate)
        source = self.feed.mix if self.feed is not None else self.receiver.buffer
        return MediaPipeline(source, encoders, clock or PlayoutClock(now, step), batches)

    def _new_recorder(self, pipeline: MediaPipeline, now: float) -> CallRecorder | None:
        """The call's recordings (``record`` in StartMedia): the played-out audio and the first lane's AAC."""
        if self._record is None or self._writer is None or not self._record.formats:
            return None
        header = pipeline.lanes[0].encoder.sequence_header()
        asc = header[2:] if header is not None and self.outputs.audio_specs[0].codec == "aac" else None
        channels = self.outputs.audio_specs[0].channels if self.feed is not None else 1
        rate, published = self.codec.codec.audio_rate, self.outputs.audio_specs[0]
        return CallRecorder(
            self._record, rate, channels, asc, self._writer, self._note, now, aac_rate=published.sample_rate
        )

    def _record_tick(self, pipeline: MediaPipeline, published: list[list[tuple[int, bytes]]], now: float) -> None:
        assert self.recorder is not None
        played = pipeline.played
        if played is not None:
            self.recorder.audio(played, self.feed.track_blocks() if self.feed is not None else None)
        self.recorder.aac(published[0])
        self.recorder.flush(now)

    def _restart_encoder(self, now: float) -> None:
        """The encoder watchdog: no output for WATCHDOG_SECONDS means new encoders (same clock)."""
        assert self.pipeline is not None
        self.encoder_restarts += 1
        self._note("encoder-restart", reason=f"no encoded audio for {WATCHDOG_SECONDS:g} s")
        self._retire(self.pipeline)
        self.pipeline = self._new_pipeline(now, self.pipeline.clock)
        self.outputs.attach(self.pipeline, {})

    def _retire(self, pipeline: MediaPipeline) -> None:
        """Keep what a pipeline encoded: the call's counters outlive its encoders (and the call)."""
        frames, seconds = self._retired
        self._retired = (frames + pipeline.encoded_packets, seconds + pipeline.encode_seconds)

    def _next_deadline(self) -> float:
        """The pipeline's next batch, the next RTCP report, the next frame of our video.

        Our RTP audio (keep-alive silence, DTMF) has a ticker job of its own: :mod:`bridge.media.pacer`.
        """
        assert self.pipeline is not None
        deadline = min(self.pipeline.next_deadline(), self.reporter.get_timer())
        if self.video is not None and self.video.sender is not None:
            deadline = min(deadline, self.video.sender.next_deadline())
        return deadline

    def _send_silence(self, now: float) -> None:
        if self.sender is None:
            return
        datagrams = self.sender.poll(now)  # paced even while held, so its timeline stays continuous
        if self.far_end.receiving:
            for datagram in datagrams:
                self.endpoint.send(self.srtp.protect(datagram) if self.srtp else datagram, self.far_end.address)

    def _send_report(self, now: float) -> None:
        report = self.reporter.poll(now, self.receiver.ssrc, self.receiver.stats)
        if report is not None and self.feed is None:  # an ingest feed is the daemon, which reads no RTCP
            host, port = self.far_end.address
            self.endpoint.send_rtcp(self.srtp.protect_rtcp(report) if self.srtp else report, (host, port + 1))

    def _report_dtmf(self) -> None:
        for event in self.receiver.dtmf_events:
            self._note("dtmf", digit=event.digit, durationMs=event.duration_ms, via="RFC 4733")
        self.receiver.dtmf_events.clear()

    # -- datagrams ----------------------------------------------------------------------

    def _receive(self, now: float) -> None:
        """The RTP that arrived since the last tick, each packet with its kernel receive time."""
        offset = time.time() - now
        for data, source, arrival in self.endpoint.receive(offset):
            self._on_rtp(data, source, min(arrival, now))

    def _on_rtp(self, data: bytes, source: tuple[str, int], arrival: float) -> None:
        if self.feed is not None:
            self.feed.datagram_received(data, source, arrival)
            return
        if self.srtp is not None:
            plain = self.srtp.unprotect(data)
            if plain is None:
                return
            data = plain
        self.receiver.datagram_received(data, source, arrival)
        if self.video is not None and len(data) >= 12 and source == self.receiver.remote:
            self.video.sync.packet("audio", int.from_bytes(data[4:8], "big"), arrival)

    def _on_rtcp(self, data: bytes, source: tuple[str, int]) -> None:
        self.endpoint.rtcp_received += 1
        if source[0] != self.far_end.address[0]:
            return
        plain = self.srtp.unprotect_rtcp(data) if self.srtp is not None else data
        if plain is not None:
            self.reporter.receive(plain, asyncio.get_running_loop().time())
            report = parse_sender_report(plain) if self.video is not None else None
            if self.video is not None and report is not None:
                self.video.sync.sender_report("audio", report.ntp_seconds, report.rtp_timestamp)

    # -- reporting ----------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        receiver, playout = self.receiver, self.receiver.buffer.stats
        per_ms = receiver.buffer.rate // 1000
        pipeline = self.pipeline
        destinations = self.outputs.counters()
        return {
            "packets": receiver.counters.packets,
            "lost": receiver.stats.lost_total,
            "latePackets": playout.late,
            "duplicatePackets": playout.duplicate,
            "concealedMs": playout.concealed_samples // per_ms,
            "silenceInsertedSeconds": round(playout.silence_samples / (per_ms * 1000), 3),
            "comfortNoiseMs": playout.comfort_noise_samples // per_ms,
            "jitterMs": round(receiver.stats.jitter_ms, 2),
            "levelDbfs": pipeline.level_dbfs if pipeline else -120.0,
            "framesEncoded": self._retired[0] + (pipeline.encoded_packets if pipeline else 0),
            "encodeSeconds": round(self._retired[1] + (pipeline.encode_seconds if pipeline else 0.0), 4),
            "bytesPublished": _total(destinations, "bytesPublished"),
            "messagesPublished": _total(destinations, "messagesPublished"),
            "audioMessagesDropped": _total(destinations, "messagesDropped"),
            "videoFramesSent": _total(destinations, "videoFramesSent"),
            "reconnects": _total(destinations, "reconnects"),
            "reconnectAttempts": _total(destinations, "reconnectAttempts"),
            "delayEstimateMs": self._delay_ms(),
            "foreignPackets": receiver.counters.foreign_source,
            "ssrcChanges": receiver.counters.ssrc_changes,
            "dtmfPackets": receiver.counters.telephone_events,
            "rtcpPackets": self.endpoint.rtcp_received,
            "rtcpReportsSent": self.reporter.sent if self.feed is None else 0,
            "silencePacketsSent": self.sender.sent if self.sender else 0,
            "dtmfSent": self.sender.dtmf_sent if self.sender else 0,
            "srtpFailures": self.srtp.failures if self.srtp else 0,
            "encoderRestarts": self.encoder_restarts,
            "destinations": destinations,
            **(self.video.counters() if self.video is not None else {}),
            **(self.feed.counters() if self.feed is not None else {}),
        }

    def _delay_ms(self) -> int:
        """Bridge-added delay: playout buffer + batching + encoder look-ahead + RTMP backlog."""
        pipeline = self.pipeline
        if pipeline is None:
            return 0
        lane = pipeline.lanes[0]
        encoder_ms = 2 * lane.encoder.start_offset_ms  # look-ahead: priming plus one frame
        per_ms = self.receiver.buffer.rate // 1000
        buffered = self.receiver.buffer.depth // per_ms
        return int(buffered + lane.batch // per_ms + encoder_ms + self.outputs.backlog_seconds() * 1000)


def keyframe_interval(videos: list[VideoSpec], passthrough_seconds: float) -> float:
    """How often the far end's video needs a key frame: the shortest keyframeSeconds among the
    destinations (a slate destination's, which its preset bounds), else [video]
    passthrough_keyframe_seconds for those that take the video as it comes."""
    return min((video.keyframe_seconds if video.enabled else passthrough_seconds) for video in videos or [VideoSpec()])


def _total(destinations: list[dict[str, Any]], key: str) -> int:
    return sum(int(counters[key]) for counters in destinations)
