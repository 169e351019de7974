"""The daemon's side of one call's media, which runs in a media worker process.

The session talks to a :class:`MediaHandle` as it would to local media: start, update
(hold, resume, new address or keys), DTMF, wait for the end, close. Requests become
messages to the worker; the worker's typed events, stream states and counters come back and
are kept here, so reading a call's counters never waits for the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from bridge.channel import protocol as p
from bridge.channel.counters import MediaCounters, zero_counters
from bridge.channel.protocol import StreamState
from bridge.wsmedia.stream import Handover
from rtp.peer import Peer

log = logging.getLogger("bridge.media")
STOP_TIMEOUT = 5.0
LISTEN_QUEUE = 50  # worker ticks (about 3 s of AAC at 16 kHz) a listener may fall behind
WORKER_FAILED = "media worker failed"

EventHandler = Callable[[p.MediaReport], None]
StreamStateHandler = Callable[[int, StreamState, str], None]


class DtmfUnavailable(Exception):
    """DTMF cannot be sent on this call; the message says why."""


class WorkerLink(Protocol):
    """How a handle reaches its worker process."""

    index: int
    pid: int

    def send(self, message: p._Message) -> None: ...

    def send_feed(self, frame: p.FeedAudio) -> bool: ...

    def adopt_stream(self, call_id: str, fd: int, handover: Handover) -> bool: ...


class MediaHandle:
    """One call's RTP port pair and media in a worker; lost if the worker dies."""

    def __init__(self, call_id: str, worker: WorkerLink, port: int, release: Callable[[], None]) -> None:
        self.call_id = call_id
        self.worker = worker
        self.port = port
        self.video_port = 0  # the H.264 pair, when the call offers video
        self._release = release
        self._counters: dict[str, Any] = {}
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._stopped = asyncio.Event()
        self._on_event: EventHandler | None = None
        self._on_stream_state: StreamStateHandler | None = None
        self.peer: Peer | None = None  # as last sent to the worker
        self.sends_rtp = False
        self.lost_reason = ""
        self._closed = False
        self._listeners: set[asyncio.Queue[list[bytes] | None]] = set()

    @property
    def started(self) -> bool:
        return self.peer is not None

    def start(
        self,
        peer: Peer,
        destinations: list[p.DestinationStart],
        send_silence: bool,
        secrets: tuple[str, ...],
        on_event: EventHandler,
        on_stream_state: StreamStateHandler,
        feed: bool = False,
        stereo: bool = False,
        record: p.RecordStart | None = None,
    ) -> None:
        """The far end answered (or early media): receive, encode and publish in the worker."""
        self._on_event, self._on_stream_state = on_event, on_stream_state
        self._counters = zero_counters(len(destinations))
        self.peer = peer
        self.sends_rtp = send_silence
        self.worker.send(
            p.StartMedia(
                call=self.call_id,
                peer=peer,
                send_silence=send_silence,
                destinations=destinations,
                secrets=list(secrets),
                feed=feed,
                stereo=stereo,
                record=record,
            )
        )

    def feed(self, track: int, timestamp: int, payload: bytes) -> None:
        """An ingest call's frame to the worker's playout (dropped, and counted, when the channel is full)."""
        self.worker.send_feed(p.FeedAudio(self.call_id, track, timestamp, payload))

    def adopt_stream(self, fd: int, handover: Handover) -> bool:
        """The worker reads the call's WebSocket (``fd``) from now on; False if it cannot (the daemon goes on)."""
        if self._closed or self.lost_reason or self.peer is None:
            return False
        return self.worker.adopt_stream(self.call_id, fd, handover)

    def close_stream(self, code: int, reason: str) -> None:
        """Have the worker close the adopted WebSocket with ``code``; it answers with a StreamClosed report."""
        if not self._closed and not self.lost_reason:
            self.worker.send(p.CloseStream(call=self.call_id, code=code, reason=reason))

    def name_track(self, index: int, name: str) -> None:
        """An ingest call's track ``index`` appeared: its recording files are named ``name``."""
        self.worker.send(p.NameTrack(call=self.call_id, index=index, name=name))

    def update(self, peer: Peer) -> bool:
        """Hold, resume, a new address or new keys (RFC 3264 section 8.4); returns whether held."""
        if self.peer is None:
            return False
        self.peer = peer
        self.worker.send(p.UpdateMedia(call=self.call_id, peer=peer))
        return peer.held

    def send_dtmf(self, digits: str, duration_ms: int) -> None:
        """RFC 4733 digits into the call; raises DtmfUnavailable saying why not."""
        if not self.sends_rtp:
            raise DtmfUnavailable("the call is receive-only (hasAudio and hasVideo false): it sends no RTP")
        if self.peer is None or not self.peer.telephone_event:
            raise DtmfUnavailable("the far end did not accept telephone-event (RFC 4733) in its SDP answer")
        if self.peer.held:
            raise DtmfUnavailable("the far end is not receiving (on hold)")
        if self.lost_reason:
            raise DtmfUnavailable(f"the call's media is gone: {self.lost_reason}")
        self.worker.send(p.SendDtmf(call=self.call_id, digits=digits, duration_ms=duration_ms))

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[asyncio.Queue[list[bytes] | None]]:
        """A queue of the published AAC frames, per worker tick, while the caller listens (None: the
        media ended). The worker sends them only while someone listens; a listener that falls
        behind loses its oldest frames, never the call's memory."""
        queue: asyncio.Queue[list[bytes] | None] = asyncio.Queue(maxsize=LISTEN_QUEUE)
        if self._closed or self.lost_reason:
            queue.put_nowait(None)
        self._listeners.add(queue)
        if len(self._listeners) == 1:
            self.worker.send(p.Listen(call=self.call_id, on=True))
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
            if not self._listeners and not self._closed and not self.lost_reason:
                self.worker.send(p.Listen(call=self.call_id, on=False))

    def _to_listeners(self, frames: list[bytes] | None) -> None:
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frames)

    async def run(self) -> str:
        """Wait until media cannot go on; returns why."""
        return await asyncio.shield(self._ended)

    async def close(self) -> None:
        """Flush, unpublish and free the ports (bounded wait); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._to_listeners(None)
        if not self.lost_reason:
            self.worker.send(p.StopMedia(call=self.call_id))
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self._stopped.wait()
            except TimeoutError:
                log.warning("call %s: worker %d did not confirm the media stop", self.call_id, self.worker.index)
        self._release()

    def counters(self) -> dict[str, Any]:
        return self._counters

    # -- from the worker ------------------------------------------------------------

    def received(self, message: p.FromWorker) -> None:
        """A message from the worker about this call."""
        if isinstance(message, p.StreamStateChanged | p.MediaStopped) and message.counters is not None:
            self._counters = message.counters.view()
        if isinstance(message, p.MediaEvent) and self._on_event is not None:
            self._on_event(message.event)
        elif isinstance(message, p.StreamStateChanged) and self._on_stream_state is not None:
            self._on_stream_state(message.destination, StreamState(message.state), message.reason)
        elif isinstance(message, p.MediaEnded) and not self._ended.done():
            self._ended.set_result(message.reason)
        elif isinstance(message, p.ListenAudio):
            self._to_listeners(message.frames)
        elif isinstance(message, p.MediaStopped):
            self._stopped.set()

    def counters_received(self, counters: MediaCounters) -> None:
        self._counters = counters.view()

    def lost(self, reason: str) -> None:
        """The worker process died: this call's media (and its RTMP connection) went with it."""
        self.lost_reason = reason
        self._to_listeners(None)
        if not self._ended.done():
            self._ended.set_result(f"{WORKER_FAILED} ({reason})")
        self._stopped.set()
