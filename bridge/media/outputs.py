"""A call's destinations: audio encoded once per distinct setting, muxed with video, fanned out.

Each distinct audio setting (AAC 16 kHz, AAC 48 kHz, G.711) is one encoder lane of the
pipeline; each distinct (audio lane, video track) pair is one :class:`Route` with its own
:class:`FlvMuxer`; each destination is one :class:`StreamPublisher` fed by its route,
with its own state, reconnects, backlog and counters. A destination that fails does
not stop the others; the call's media ends when every destination has failed (unless
``rtmp.keep_call_on_failure``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.channel.counters import DestinationCounters
from bridge.channel.protocol import DestinationFailed, DestinationStart, Reporter, StreamState
from bridge.config import RtmpConfig
from bridge.media.live_video import LiveVideoTrack
from bridge.media.muxer import FlvMuxer
from bridge.media.pipeline import MediaPipeline
from bridge.media.slate import SlateGop
from bridge.media.stream import StreamPublisher
from bridge.media.video_track import SlateTrack
from bridge.model import OutputSpec, VideoSpec
from bridge.ops.redaction import SecretIndex
from bridge.rtmp.flv import metadata

StreamStateHandler = Callable[[int, StreamState, str], None]


@dataclass
class Route:
    """One audio lane muxed with one video track, and the destinations that publish it."""

    lane: int
    video: VideoSpec
    muxer: FlvMuxer | None = None
    destinations: list[int] = field(default_factory=list)


class CallOutputs:
    def __init__(
        self,
        destinations: list[DestinationStart],
        config: RtmpConfig,
        tls: ssl.SSLContext | None,
        on_state: StreamStateHandler,
        report: Reporter,
    ) -> None:
        self.audio_specs: list[OutputSpec] = []
        self.routes: list[Route] = []
        self.live_tracks: list[LiveVideoTrack] = []
        self.publishers = [self._publisher(i, d, config, tls, on_state) for i, d in enumerate(destinations)]
        self._keep_call = config.keep_call_on_failure
        self._report = report
        for index, destination in enumerate(destinations):
            self._route_for(destination).destinations.append(index)

    def videos(self) -> list[VideoSpec]:
        """Each route's video (mode "none" for the routes that carry the far end's video as it comes)."""
        return [route.video for route in self.routes]

    @property
    def video_specs(self) -> list[VideoSpec]:
        """The distinct video tracks to prepare (their slate GOPs) before media starts."""
        return list(dict.fromkeys(route.video for route in self.routes if route.video.enabled))

    def _route_for(self, destination: DestinationStart) -> Route:
        if destination.audio not in self.audio_specs:
            self.audio_specs.append(destination.audio)
        lane = self.audio_specs.index(destination.audio)
        video = destination.video if destination.video.enabled else VideoSpec()
        for route in self.routes:
            if route.lane == lane and route.video == video:
                return route
        self.routes.append(Route(lane, video))
        return self.routes[-1]

    def _publisher(
        self,
        index: int,
        destination: DestinationStart,
        config: RtmpConfig,
        tls: ssl.SSLContext | None,
        on_state: StreamStateHandler,
    ) -> StreamPublisher:
        scrubber = SecretIndex()
        scrubber.register(*destination.secrets)
        return StreamPublisher(
            destination.target,
            metadata(destination.audio, destination.video),
            config,
            lambda state, reason: on_state(index, state, reason),
            tls,
            label=destination.label,
            authmod=destination.authmod,
            scrub=scrubber.redact,
            on_published=lambda: self._keyframe_for(index),
        )

    def attach(self, pipeline: MediaPipeline, gops: dict[VideoSpec, SlateGop], live_video: bool = False) -> None:
        """Wire the (new) pipeline's encoders into the routes; video tracks survive an encoder restart.

        ``live_video``: every route carries the far end's H.264 (one track each, fed by the call's video);
        a route with a slate of its own shows it when that video stalls (others: see :meth:`set_stall_picture`).
        """
        for route in self.routes:
            encoder = pipeline.lanes[route.lane].encoder
            header = encoder.sequence_header()
            if route.muxer is None:
                gop = gops.get(route.video)
                video: SlateTrack | LiveVideoTrack | None = None
                if live_video:
                    video = LiveVideoTrack(gop)
                    self.live_tracks.append(video)
                elif gop is not None:
                    video = SlateTrack(gop, encoder.start_offset_ms)
                route.muxer = FlvMuxer(header, video)
            route.muxer.audio_header = header
            for index in route.destinations:
                self.publishers[index].set_sequence_headers(route.muxer.sequence_headers())

    def set_stall_picture(self, gop: SlateGop, stall_ms: int) -> None:
        """What live video tracks without a slate of their own show after ``stall_ms`` without video."""
        for track in self.live_tracks:
            track.set_stall_picture(gop, stall_ms)

    def publish(self, per_lane: list[list[tuple[int, bytes]]], now: float) -> None:
        """The pipeline's output of one tick, muxed per route and sent to each destination."""
        for route in self.routes:
            audio = per_lane[route.lane]
            if not audio or route.muxer is None:
                continue
            tags = route.muxer.mux(audio)
            for index in route.destinations:
                self.publishers[index].send(tags, now)

    def check_progress(self, now: float) -> None:
        for publisher in self.publishers:
            publisher.check_progress(now)

    def _keyframe_for(self, index: int) -> None:
        for route in self.routes:
            if index in route.destinations and route.muxer is not None:
                route.muxer.request_keyframe()

    async def run(self) -> str:
        """Publish until every destination has failed (returns why) or until cancelled."""
        running = {asyncio.ensure_future(p.run()): i for i, p in enumerate(self.publishers)}
        failures: list[str] = []
        try:
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = running.pop(task)
                    reason = task.result()
                    if reason:
                        failures.append(reason)
                        self._report(DestinationFailed(destination=index, reason=reason))
            if failures and len(failures) == len(self.publishers) and not self._keep_call:
                return failures[0] if len(failures) == 1 else f"every destination failed: {failures[-1]}"
            await asyncio.Event().wait()  # the call goes on without a stream (keep_call_on_failure)
            return ""
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)

    async def close(self) -> None:
        await asyncio.gather(*(publisher.close() for publisher in self.publishers))

    def counters(self) -> list[DestinationCounters]:
        return [
            DestinationCounters(
                bytesPublished=p.bytes_sent,
                messagesPublished=p.messages_sent,
                messagesDropped=p.dropped_messages,
                videoFramesSent=p.video_frames_sent,
                reconnects=p.reconnects,
                reconnectAttempts=p.reconnect_attempts,
                connections=p.connections,
            )
            for p in self.publishers
        ]

    def backlog_seconds(self) -> float:
        return max((p.backlog_seconds for p in self.publishers), default=0.0)
