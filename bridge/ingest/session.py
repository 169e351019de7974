"""One call that arrives as a WebSocket media stream: from its start message to FINISH or FAILED.

The WebSocket side (rest/ingest.py) owns the connection and the stream; it hands this session
the stream's audio (track number, timestamp, payload), new tracks, digits and end. The session
starts the call's media in a worker, sends it the audio that came before as frames and then has
the connection handed to the worker (:meth:`StreamConnection.media_started`), which reports the
digits, tracks and end from there. It reports like any call. Hanging up through the API asks the
WebSocket side to close the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.calls.record import BaseSession, MediaFailed, SessionError, StopRequested, watch_media
from bridge.calls.services import Services
from bridge.channel.protocol import MediaReport, StreamClosed, StreamDigit, StreamTrack
from bridge.ingest.spec import IngestSource
from bridge.model import CallSpec, CallState
from bridge.recording.service import safe_name
from bridge.workers.handle import MediaHandle
from bridge.workers.pool import WorkerUnavailable
from bridge.wsmedia.events import GOING_AWAY, INTERNAL_ERROR, NORMAL_CLOSURE, StreamStarted
from rtp.codecs import feed_codec_name
from rtp.peer import Peer
from rtp.ports import PortsExhausted

log = logging.getLogger("bridge.ingest")
NO_ADDRESS = ("", 0)
PENDING_FRAMES = 500  # audio held while the media worker starts (10 s of one track)


class StreamConnection(Protocol):
    """The WebSocket side, as the session sees it."""

    def close(self, code: int, reason: str) -> None: ...

    def media_started(self, media: MediaHandle) -> None: ...

    def stream_closed(self, code: int, reason: str, finished: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The WebSocket side's verdict: a stop message, a close, or a protocol error."""

    state: CallState
    reason: str


class IngestSession(BaseSession):
    """An ingest call; :meth:`audio` and :meth:`digit` are called for each message, never block."""

    def __init__(
        self,
        spec: CallSpec,
        services: Services,
        source: IngestSource,
        started: StreamStarted,
        connection: StreamConnection,
    ) -> None:
        super().__init__(spec, services)
        self.source = source
        self._codec = feed_codec_name(started.encoding, started.rate)  # the worker's codec name (rtp.codecs)
        self._tracks: list[str] = []  # the platform's track names, by track number
        self._connection = connection
        self._inbox: asyncio.Queue[StopRequested | MediaFailed | StreamEnded] = asyncio.Queue()
        self._pending: list[tuple[int, int, bytes]] = []  # track, timestamp, payload
        self._feeding = False  # the worker plays the stream out

    @classmethod
    def factory(
        cls, source: IngestSource, started: StreamStarted, connection: StreamConnection
    ) -> Callable[[CallSpec, Services], IngestSession]:
        return lambda spec, services: cls(spec, services, source, started, connection)

    # -- from the WebSocket (read by the daemon, or by the worker and reported) -----------

    def audio(self, track: int, timestamp: int, payload: bytes) -> None:
        if self._feeding and self.media is not None:
            self.media.feed(track, timestamp, payload)  # a full channel drops it, counted per worker
        elif len(self._pending) < PENDING_FRAMES:
            self._pending.append((track, timestamp, payload))
        else:
            source = self.source
            self.services.ingest_stats.dropped_before_media[(source.route, source.protocol)] += 1

    def track_appeared(self, index: int, name: str) -> None:
        """Track number ``index`` is the platform's ``name`` (numbers come in order)."""
        if index != len(self._tracks):
            return
        self._tracks.append(name)
        if self.media is not None and self.media.started:
            self.media.name_track(index, self._track_file_name(index))

    def digit(self, digit: str, track: str) -> None:
        if not self.state.final:
            self._note("dtmf", digit=digit, track=track, via=self.source.protocol)

    def _on_media_event(self, event: MediaReport) -> None:
        """The worker's reports about the stream it reads, then those of every call."""
        if isinstance(event, StreamDigit):
            self.digit(event.digit, event.track)
        elif isinstance(event, StreamTrack):
            self.track_appeared(event.index, event.name)
        elif isinstance(event, StreamClosed):
            self._connection.stream_closed(event.code, event.reason, event.finished)
        else:
            super()._on_media_event(event)

    def ended(self, state: CallState, reason: str) -> None:
        self._inbox.put_nowait(StreamEnded(state, reason))

    # -- control ------------------------------------------------------------------------

    def terminate(self, reason: str = "terminated by API request") -> None:
        self._inbox.put_nowait(StopRequested(reason))

    def _on_defect(self) -> None:
        self._connection.close(INTERNAL_ERROR, "internal error")

    async def _run(self) -> None:
        try:
            self.media = self.services.workers().open_feed(self.spec.call_id)
        except (PortsExhausted, WorkerUnavailable) as exc:
            self._connection.close(INTERNAL_ERROR, "no media capacity")
            raise SessionError(str(exc)) from None
        source = self.source
        self._set_state(CallState.ESTABLISHED, f"{source.protocol} stream started on route {source.route}")
        self._start_media()
        async with asyncio.TaskGroup() as group:
            media_task = group.create_task(watch_media(self.media, self._inbox))
            state, reason = await self._wait_for_end()
            media_task.cancel()
            await self.media.close()
        self._set_state(state, reason)

    def _start_media(self) -> None:
        assert self.media is not None
        peer = Peer(NO_ADDRESS, receiving=False, codec=self._codec)  # a stream: nothing is sent to it
        self.media.start(
            peer,
            [view.start_message(self.spec.reveal_stream_names) for view in self.destinations],
            False,
            self.spec.secrets(),
            self._on_media_event,
            self._on_stream_state,
            feed=True,
            stereo=any(d.audio.channels == 2 for d in self.spec.destinations),
            record=self.record_start([self._track_file_name(i) for i in range(len(self._tracks))]),
        )
        self._feeding = True
        for track, timestamp, payload in self._pending:
            self.media.feed(track, timestamp, payload)
        self._pending = []
        self._connection.media_started(self.media)

    async def _wait_for_end(self) -> tuple[CallState, str]:
        item = await self._inbox.get()
        self._feeding = False
        if isinstance(item, StreamEnded):
            return item.state, item.reason
        if isinstance(item, StopRequested):
            going_away = item.reason == "bridge shutting down"
            self._connection.close(GOING_AWAY if going_away else NORMAL_CLOSURE, item.reason)
            return CallState.FINISH, item.reason
        self._connection.close(INTERNAL_ERROR, "media failed")
        reason = item.reason.replace("no RTP received", "no media from the stream")
        return CallState.FAILED, reason

    def source_label(self) -> str:
        return self.source.protocol

    def _track_file_name(self, index: int) -> str:
        """A track's name in its recording files: the platform's for Twilio and RingCentral
        (inbound, outbound; participant, conference), ``participant<n>`` for ACS (whose raw ids
        identify people and do not belong in file names)."""
        if self.source.protocol == "acs":
            return f"participant{index + 1}"
        return safe_name(self._tracks[index].lower())

    def identity(self) -> dict[str, Any]:
        source = self.source
        return {
            "source": {
                "kind": "ingest",
                "route": source.route,
                "protocol": source.protocol,
                "platformId": source.platform_id,
                "tracks": list(self._tracks) or list(source.tracks),
            }
        }
