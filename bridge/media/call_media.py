"""The media side of one call: its source, playout, encode, destinations (asyncio driver).

The source is chosen once per call (:mod:`bridge.media.sources`): the far end's RTP, or an
ingest call's frames. Beside it: the output clock and pipeline, the call's destinations
(:class:`CallOutputs`), its recorder and listen tap, and the far end's video when negotiated.
:meth:`run` returns the reason when media can no longer go on (no audio for ``rtp.timeout``,
every destination given up). It holds no protocol logic itself: it wires the parts and runs
them at their deadlines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import ssl
import time
from collections.abc import Callable

from bridge.channel.counters import MediaCounters
from bridge.channel.protocol import (
    DestinationStart,
    DtmfHeard,
    EncoderRestarted,
    KeyframeWanted,
    RecordStart,
    Reporter,
)
from bridge.config import BridgeConfig
from bridge.media.call_video import CallVideo, VideoRemote
from bridge.media.decoders import codec_media
from bridge.media.encoder import AudioEncoder
from bridge.media.file_writer import FileWriter
from bridge.media.outputs import CallOutputs, StreamStateHandler
from bridge.media.pacer import GridPacer
from bridge.media.pipeline import MediaPipeline, PlayoutClock, pull_unit
from bridge.media.recorder import CallRecorder
from bridge.media.rtp_endpoint import RtpEndpoint
from bridge.media.setup_queue import SetupQueue, SetupQueueFull
from bridge.media.slate import SlateCache, SlateGop
from bridge.media.sources import FeedSource, RtpSource
from bridge.media.ticker import Ticker, clock_start
from bridge.media.video_sender import VideoSender
from bridge.model import OutputSpec, VideoSpec
from rtp.avsync import AvSync
from rtp.codecs import VIDEO_PAYLOAD_TYPES
from rtp.fast import FAST
from rtp.peer import Peer

log = logging.getLogger("bridge.media")
WATCHDOG_SECONDS = 10.0
CHECK_SECONDS = 0.25  # the stall, encoder and RTP-timeout checks: seconds-long limits, checked this often
RESTART_ENCODER = "restart the encoder"


class CallMedia:
    def __init__(
        self,
        config: BridgeConfig,
        rtmp_tls: ssl.SSLContext | None,
        endpoint: RtpEndpoint | None,
        remote: Peer,
        destinations: list[DestinationStart],
        send_silence: bool,
        encoder_factory: Callable[[OutputSpec, int], AudioEncoder],
        report: Reporter,
        on_stream_state: StreamStateHandler,
        slates: SlateCache,
        ticker: Ticker,
        video_endpoint: RtpEndpoint | None = None,
        stereo: bool = False,
        record: RecordStart | None = None,
        writer: FileWriter | None = None,
        clock: Callable[[], float] | None = None,
        setups: SetupQueue | None = None,
    ) -> None:
        """``endpoint`` None: an ingest call, whose frames come by :meth:`push_feed`. ``clock``: the
        loop's monotonic time unless a test drives a fake one. ``setups``: the worker's queue, whose
        turn the media waits for before opening its encoders (none: at once)."""
        self._setups = setups
        self.config = config
        self._record, self._writer = record, writer
        self.recorder: CallRecorder | None = None
        self._track_names: dict[int, str] = {}  # named before the recorder existed
        self.listen: Callable[[list[bytes]], None] | None = None  # someone listens: the published AAC frames
        self._ticker = ticker
        loop = asyncio.get_running_loop()
        self._clock = clock or loop.time
        self._verdict: asyncio.Future[str] = loop.create_future()
        self._attached = asyncio.Event()  # the pipeline and its tracks exist
        self._report = report
        self._encoder_factory = encoder_factory
        self._slates = slates
        self._started = self._clock()
        self._checks_due = self._started
        self.codec = codec_media(remote.codec)
        self.endpoint = endpoint
        self.source: RtpSource | FeedSource = (
            RtpSource(remote, self.codec, config.rtp, send_silence, self._started)
            if endpoint is not None
            else FeedSource(self.codec, config.rtp, stereo)
        )
        if endpoint is not None and isinstance(self.source, RtpSource):
            rtp_source = self.source
            endpoint.set_rtcp_handler(lambda data, source: rtp_source.receive_rtcp(data, source, self._clock()))
            endpoint.discard_pending()  # what arrived before the answer is not the call's audio
        self._pacer = GridPacer.of(ticker)
        self.outputs = CallOutputs(destinations, config.rtmp, rtmp_tls, on_stream_state, report)
        self.pipeline: MediaPipeline | None = None
        self._retired = (0, 0.0)  # frames and encode seconds of pipelines replaced or closed
        self.encoder_restarts = 0
        rtp = self.source if isinstance(self.source, RtpSource) else None
        self.video = self._new_video(remote, rtp, video_endpoint) if rtp is not None else None
        self._sends_video = remote.video is not None and remote.video.send
        self._video_payload_type = remote.video.payload_type if remote.video is not None else 0

    def _new_video(self, remote: Peer, rtp: RtpSource, endpoint: RtpEndpoint | None) -> CallVideo | None:
        """The far end's H.264, when it was negotiated: synchronised with the audio through RTCP SRs."""
        if remote.video is None or endpoint is None:
            return None
        video = remote.video
        sync = AvSync({"audio": self.codec.codec.rtp_clock, "video": 90000})
        rtp.on_audio_rtp = lambda timestamp, arrival: sync.packet("audio", timestamp, arrival)
        rtp.on_sender_report = lambda report: sync.sender_report("audio", report.ntp_seconds, report.rtp_timestamp)
        payload_types = {video.payload_type, *VIDEO_PAYLOAD_TYPES}  # ours (RFC 3264 6.1) or the answer's
        far = VideoRemote(video.address, frozenset(payload_types), video.sprop, video.pli, video.fir, video.srtp)
        buffer = rtp.receiver.buffer
        endpoint.discard_pending()
        ask_by_info = lambda: self._report(KeyframeWanted())  # noqa: E731 - the daemon sends the INFO
        interval = keyframe_interval(self.outputs.videos(), self.config.video.passthrough_keyframe_seconds)
        delay = lambda: buffer.added_delay  # noqa: E731
        return CallVideo(far, endpoint, rtp.reporter.our_ssrc, sync, delay, ask_by_info, interval, self._report)

    def push_feed(self, track: int, timestamp: int, payload: bytes, now: float) -> None:
        """An ingest call's frame (ignored for an RTP call, and before the pipeline plays out: as
        RTP waiting in a socket while the slates were encoded, it would only be stale)."""
        if isinstance(self.source, FeedSource) and self.pipeline is not None:
            self.source.push(track, timestamp, payload, now)

    def name_track(self, index: int, name: str) -> None:
        """An ingest call's track ``index`` is called ``name`` in its recording files (kept until the
        recorder exists: a track may be named while the slates are still being encoded)."""
        self._track_names.setdefault(index, name)
        if self.recorder is not None:
            self.recorder.name_track(index, name)

    def send_dtmf(self, digits: str, duration_ms: int) -> None:
        if isinstance(self.source, RtpSource):
            self.source.send_dtmf(digits, duration_ms)

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
            self.outputs.publish(flushed, self._clock())
            if self.recorder is not None:
                self.recorder.aac(flushed[0])
            self._retire(self.pipeline)
            self.pipeline = None
        if self.recorder is not None:
            await self.recorder.close()
        await self.outputs.close()

    def update(self, change: Peer) -> bool:
        """Hold, resume, a new address or new keys (RFC 3264 section 8.4); returns whether held."""
        if not isinstance(self.source, RtpSource):
            return False
        held = self.source.update(change, self._clock())
        if self.video is not None and change.video is not None:
            self.video.update_remote(change.video.address, change.video.send, change.video.srtp)
        return held

    # -- the loop -----------------------------------------------------------------------

    async def _media(self) -> str:
        """Open what the call needs (slate GOPs, encoders), then let the worker's ticker run it."""
        loop = asyncio.get_running_loop()
        if self._setups is not None:
            try:
                await self._setups.turn()
            except SetupQueueFull as exc:
                return f"media worker busy: {exc}; try again"
        try:
            gops = await self._prepare_video()
        except Exception as exc:  # a picture that cannot be decoded or encoded
            return f"slate picture could not be encoded: {type(exc).__name__}: {exc}"
        self.pipeline = self._new_pipeline(self._clock())
        self.outputs.attach(self.pipeline, gops, live_video=self.video is not None)
        self.recorder = self._new_recorder(self.pipeline, self._clock())
        if self.video is not None:
            self.video.tracks = self.outputs.live_tracks
            self.video.set_origin(self.pipeline.clock.start, self.pipeline.lanes[0].encoder.start_offset_ms)
            self.video.endpoint.discard_pending()
        if self.endpoint is not None:  # what waited in the socket while slates were encoded is stale
            self.endpoint.discard_pending()
        if isinstance(self.source, RtpSource) and self.source.sender is not None:
            self._pacer.add(id(self), self._send_due, self.failed, self._clock())
        self._attached.set()
        self._started = self._checks_due = self._clock()
        while True:
            self._verdict = loop.create_future()
            self._ticker.schedule(self, self._clock())
            try:
                verdict = await self._verdict
            finally:
                self._ticker.cancel(self)
            if verdict != RESTART_ENCODER or self.pipeline is None:
                return verdict
            self._restart_encoder(self._clock())

    def tick(self, now: float) -> float | None:
        """The call's media work due at ``now`` (run by the worker's ticker); the next deadline."""
        pipeline = self.pipeline
        if pipeline is None:
            return None  # closed
        source = self.source
        rtp = source if isinstance(source, RtpSource) else None
        if rtp is not None:
            self._read_rtp(rtp, now)
            if self.video is not None:
                self.video.sending = rtp.far_end.receiving
                self.video.tick(now)
        published = pipeline.tick(now)
        self.outputs.publish(published, now)
        if self.recorder is not None:
            self._record_tick(pipeline, published, now)
        if self.listen is not None and published[0]:
            self.listen([body[2:] for _timestamp, body in published[0]])
        if rtp is not None:
            if now >= rtp.get_timer():  # our RTCP report (polled at each batch, no wake-up of its own)
                rtp.handle_timer(now)
            self._send(rtp)
            while (event := rtp.next_event()) is not None:
                self._report(DtmfHeard(digit=event.digit, duration_ms=event.duration_ms))
        if now >= self._checks_due and not self._check(pipeline, now):
            return None
        return self._next_deadline()

    def _check(self, pipeline: MediaPipeline, now: float) -> bool:
        """Every CHECK_SECONDS: the destinations' progress, the encoder watchdog, ``rtp.timeout``.
        False when the media cannot go on (the verdict is given)."""
        self._checks_due = now + CHECK_SECONDS
        self.outputs.check_progress(now)
        if now - pipeline.last_output_at > WATCHDOG_SECONDS:
            self._conclude(RESTART_ENCODER)
            return False
        timeout, source = self.config.rtp.timeout, self.source
        if source.silent_for(source.last_heard() or self._started, now) > timeout:
            self._conclude(f"no RTP received for {timeout:g} s")
            return False
        return True

    # -- the sockets (RTP calls) ---------------------------------------------------------

    def _read_rtp(self, rtp: RtpSource, now: float) -> None:
        """The RTP that arrived since the last tick, each packet with its kernel receive time."""
        assert self.endpoint is not None
        offset = time.time() - now
        if FAST is not None and rtp.plain:  # one recvmmsg per 32 datagrams; the common packets in C
            leftovers, error = FAST.receive_socket(self.endpoint.fileno, rtp.receiver, offset, now)
            if error:
                self.endpoint.note_error(OSError(error, os.strerror(error)))
            for data, source, arrival in leftovers:
                rtp.receive_datagram(data, source, arrival)
            return
        for data, source, arrival in self.endpoint.receive(offset):
            rtp.receive_datagram(data, source, min(arrival, now))

    def _send(self, rtp: RtpSource) -> None:
        assert self.endpoint is not None
        for out in rtp.datagrams_to_send():
            if out.rtcp:
                self.endpoint.send_rtcp(out.data, out.address)
            else:
                self.endpoint.send(out.data, out.address)

    def _send_due(self, now: float) -> None:
        """The worker's 20 ms grid job: our paced RTP toward the far end (silence, DTMF)."""
        if isinstance(self.source, RtpSource):
            self.source.send_due(now)
            self._send(self.source)

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
            self.video.sender = await self._video_sender(self._clock())

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
        pipeline = MediaPipeline(self.source, encoders, clock or PlayoutClock(clock_start(now), step), batches)
        pipeline.last_output_at = now  # a restarted pipeline keeps the clock, not the old deadline
        return pipeline

    def _new_recorder(self, pipeline: MediaPipeline, now: float) -> CallRecorder | None:
        """The call's recordings (``record`` in StartMedia): the played-out audio and the first lane's AAC."""
        if self._record is None or self._writer is None or not self._record.formats:
            return None
        header = pipeline.lanes[0].encoder.sequence_header()
        asc = header[2:] if header is not None and self.outputs.audio_specs[0].codec == "aac" else None
        channels = self.outputs.audio_specs[0].channels if isinstance(self.source, FeedSource) else 1
        rate, published = self.codec.codec.audio_rate, self.outputs.audio_specs[0]
        recorder = CallRecorder(
            self._record, rate, channels, asc, self._writer, self._report, now, aac_rate=published.sample_rate
        )
        for index, name in self._track_names.items():
            recorder.name_track(index, name)
        return recorder

    def _record_tick(self, pipeline: MediaPipeline, published: list[list[tuple[int, bytes]]], now: float) -> None:
        assert self.recorder is not None
        played = pipeline.played
        if played is not None:
            self.recorder.audio(played, self.source.track_blocks())
        self.recorder.aac(published[0])
        self.recorder.flush(now)

    def _restart_encoder(self, now: float) -> None:
        """The encoder watchdog: no output for WATCHDOG_SECONDS means new encoders (same clock)."""
        assert self.pipeline is not None
        self.encoder_restarts += 1
        self._report(EncoderRestarted(reason=f"no encoded audio for {WATCHDOG_SECONDS:g} s"))
        self._retire(self.pipeline)
        self.pipeline = self._new_pipeline(now, self.pipeline.clock)
        self.outputs.attach(self.pipeline, {})

    def _retire(self, pipeline: MediaPipeline) -> None:
        """Keep what a pipeline encoded: the call's counters outlive its encoders (and the call)."""
        frames, seconds = self._retired
        self._retired = (frames + pipeline.encoded_packets, seconds + pipeline.encode_seconds)

    def _next_deadline(self) -> float:
        """The pipeline's next batch, the next frame of our video.

        The RTCP report is polled at every batch (RFC 3550 6.2 randomises its interval by half anyway),
        so it costs no wake-up of its own. Our RTP audio (keep-alive silence, DTMF) has a ticker job of
        its own: :mod:`bridge.media.pacer`.
        """
        assert self.pipeline is not None
        deadline = self.pipeline.next_deadline()
        if self.video is not None and self.video.sender is not None:
            deadline = min(deadline, self.video.sender.next_deadline())
        return deadline

    # -- reporting ----------------------------------------------------------------------

    def counters(self) -> MediaCounters:
        """Every counter (zero where the source has no such thing), and per destination."""
        pipeline = self.pipeline
        destinations = self.outputs.counters()
        return MediaCounters(
            **self.source.counters(),
            levelDbfs=pipeline.level_dbfs if pipeline else -120.0,
            framesEncoded=self._retired[0] + (pipeline.encoded_packets if pipeline else 0),
            encodeSeconds=round(self._retired[1] + (pipeline.encode_seconds if pipeline else 0.0), 4),
            bytesPublished=sum(d.bytesPublished for d in destinations),
            messagesPublished=sum(d.messagesPublished for d in destinations),
            audioMessagesDropped=sum(d.messagesDropped for d in destinations),
            videoFramesSent=sum(d.videoFramesSent for d in destinations),
            reconnects=sum(d.reconnects for d in destinations),
            reconnectAttempts=sum(d.reconnectAttempts for d in destinations),
            delayEstimateMs=self._delay_ms(),
            encoderRestarts=self.encoder_restarts,
            destinations=destinations,
            video=self.video.counters() if self.video is not None else None,
        )

    def _delay_ms(self) -> int:
        """Bridge-added delay: playout buffer + batching + encoder look-ahead + RTMP backlog."""
        pipeline = self.pipeline
        if pipeline is None:
            return 0
        lane = pipeline.lanes[0]
        encoder_ms = 2 * lane.encoder.start_offset_ms  # look-ahead: priming plus one frame
        per_ms = self.source.rate // 1000
        buffered = self.source.buffered_samples // per_ms
        return int(buffered + lane.batch // per_ms + encoder_ms + self.outputs.backlog_seconds() * 1000)


def keyframe_interval(videos: list[VideoSpec], passthrough_seconds: float) -> float:
    """How often the far end's video needs a key frame: the shortest keyframeSeconds among the
    destinations (a slate destination's, which its preset bounds), else [video]
    passthrough_keyframe_seconds for those that take the video as it comes."""
    return min((video.keyframe_seconds if video.enabled else passthrough_seconds) for video in videos or [VideoSpec()])
