"""One call that arrives as a WebSocket media stream: from its start message to FINISH or FAILED.

The WebSocket side (rest/ingest.py) owns the connection and the protocol core; it hands this
session the stream's audio, digits and end. The session opens a media worker endpoint,
hands it each media message as a frame (:mod:`bridge.ingest.feed`) and reports like any call. Hanging
up through the API asks the WebSocket side to close the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.calls.record import BaseSession, MediaFailed, SessionError, StopRequested, watch_media
from bridge.calls.services import Services
from bridge.wsmedia.events import GOING_AWAY, INTERNAL_ERROR, NORMAL_CLOSURE, AudioReceived, DigitReceived
from bridge.ingest.feed import StreamFeed
from bridge.ingest.spec import IngestSource
from bridge.model import CallSpec, CallState
from bridge.recording.service import safe_name
from bridge.workers.pool import WorkerUnavailable
from rtp.peer import Peer
from rtp.ports import PortsExhausted

log = logging.getLogger("bridge.ingest")
NO_ADDRESS = ("", 0)
PENDING_FRAMES = 500  # audio held while the media worker starts (10 s of one track)
CloseConnection = Callable[[int, str], None]


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
        feed: StreamFeed,
        close_connection: CloseConnection,
    ) -> None:
        super().__init__(spec, services)
        self.source = source
        self._feed = feed
        self._close_connection = close_connection
        self._inbox: asyncio.Queue[StopRequested | MediaFailed | StreamEnded] = asyncio.Queue()
        self._pending: list[tuple[int, int, bytes]] = []  # track, timestamp, payload
        self._feeding = False  # the worker plays the stream out
        self.dropped_before_start = 0

    @classmethod
    def factory(
        cls, source: IngestSource, feed: StreamFeed, close_connection: CloseConnection
    ) -> Callable[[CallSpec, Services], IngestSession]:
        return lambda spec, services: cls(spec, services, source, feed, close_connection)

    # -- from the WebSocket -------------------------------------------------------------

    def audio(self, audio: AudioReceived) -> None:
        known = len(self._feed.tracks)
        track = self._feed.track_of(audio)
        if track == known and self.media is not None and self.media.started:
            self.media.name_track(known, self._track_file_name(known))
        if self._feeding and self.media is not None:
            self.media.feed(track, audio.timestamp, audio.payload)  # a full channel drops it, counted per worker
        elif len(self._pending) < PENDING_FRAMES:
            self._pending.append((track, audio.timestamp, audio.payload))
        else:
            self.dropped_before_start += 1

    def digit(self, digit: DigitReceived) -> None:
        if not self.state.final:
            self._note("dtmf", digit=digit.digit, track=digit.track, via=self.source.protocol)

    def ended(self, state: CallState, reason: str) -> None:
        self._inbox.put_nowait(StreamEnded(state, reason))

    # -- control ------------------------------------------------------------------------

    def terminate(self, reason: str = "terminated by API request") -> None:
        self._inbox.put_nowait(StopRequested(reason))

    def _on_defect(self) -> None:
        self._close_connection(INTERNAL_ERROR, "internal error")

    async def _run(self) -> None:
        try:
            self.media = self.services.workers().open_feed(self.spec.call_id)
        except (PortsExhausted, WorkerUnavailable) as exc:
            self._close_connection(INTERNAL_ERROR, "no media capacity")
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
        feed = self._feed
        peer = Peer(NO_ADDRESS, receiving=False, codec=feed.codec)  # a stream: nothing is sent to it
        self.media.start(
            peer,
            [view.start_message(self.spec.reveal_stream_names) for view in self.destinations],
            False,
            self.spec.secrets(),
            self._on_media_event,
            self._on_stream_state,
            feed=True,
            stereo=any(d.audio.channels == 2 for d in self.spec.destinations),
            record=self.record_start([self._track_file_name(i) for i in range(len(feed.tracks))]),
        )
        self._feeding = True
        for track, timestamp, payload in self._pending:
            self.media.feed(track, timestamp, payload)
        self._pending = []

    async def _wait_for_end(self) -> tuple[CallState, str]:
        item = await self._inbox.get()
        self._feeding = False
        if isinstance(item, StreamEnded):
            return item.state, item.reason
        if isinstance(item, StopRequested):
            going_away = item.reason == "bridge shutting down"
            self._close_connection(GOING_AWAY if going_away else NORMAL_CLOSURE, item.reason)
            return CallState.FINISH, item.reason
        self._close_connection(INTERNAL_ERROR, "media failed")
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
        return safe_name(self._feed.tracks[index].lower())

    def identity(self) -> dict[str, Any]:
        source = self.source
        return {
            "source": {
                "kind": "ingest",
                "route": source.route,
                "protocol": source.protocol,
                "platformId": source.platform_id,
                "tracks": list(self._feed.tracks) or list(source.tracks),
            }
        }
