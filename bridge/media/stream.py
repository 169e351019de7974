"""One destination's RTMP stream, kept published for the whole call.

- States PENDING, PUBLISHING, RECONNECTING, FAILED, UNPUBLISHED, reported with reasons.
- When the connection drops or the server restarts: reconnect with capped exponential
  backoff and republish under the same name; timestamps keep following the call's
  wall-clock timeline, so players see one continuous stream. After every publish the
  metadata and the sequence headers (AAC AudioSpecificConfig, AVC decoder configuration)
  go out first, and video resumes on a key frame (the owner is asked for one).
- Publish authentication (``authmod=adobe``/``llnw`` from the URL's userinfo): a challenge
  is answered on a new connection at once; wrong credentials fail the stream.
- Refusals (connect rejected, Publish.BadName/Rejected, a close in answer to publish)
  fail the stream at once: retrying would not change the answer.
- Audio and video go through a backlog bounded in seconds: while the server cannot take
  it, the oldest messages are dropped (and counted) so latency cannot grow without bound.
- Watchdog: nothing accepted by the socket for ``stall_seconds`` while publishing restarts
  the connection; so does a server that stops acknowledging what we send (we ask it to
  acknowledge every ``ack_window_bytes``): a server that stops reading keeps its kernel
  taking our bytes into socket buffers of megabytes, minutes of audio.

Reasons never carry a secret: the target is shown by its masked ``label`` and texts from
the server are passed through ``scrub`` (a server may echo the stream key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable

from bridge.channel.protocol import StreamState
from bridge.config import RtmpConfig
from bridge.rtmp.amf0 import AmfValue
from bridge.rtmp.auth import PublishAuth
from bridge.rtmp.flv import AUDIO, VIDEO, FlvTag
from bridge.rtmp.policy import KeyframeGate, ProgressWatchdog, PublishSettings, ReconnectPolicy
from bridge.rtmp.publisher import RtmpAuthRetry, RtmpPublisher, RtmpPublishError, RtmpRefused
from bridge.rtmp.url import RtmpTarget

log = logging.getLogger("bridge.rtmp")
MAX_AUTH_CONNECTIONS = 3  # anonymous-or-first try, a switched authmod, the response


StateHandler = Callable[[StreamState, str], None]


class StreamPublisher:
    def __init__(
        self,
        target: RtmpTarget,
        metadata: dict[str, AmfValue],
        config: RtmpConfig,
        on_state: StateHandler,
        tls: ssl.SSLContext | None = None,
        label: str = "",
        authmod: str = "adobe",
        scrub: Callable[[str], str] = str,
        on_published: Callable[[], None] = lambda: None,
    ) -> None:
        self.target = target
        self.label = label or target.display()
        self.state = StreamState.PENDING
        self.reconnects = 0
        self.reconnect_attempts = 0
        self.connections = 0
        self.dropped_messages = 0
        self.messages_sent = 0
        self.video_frames_sent = 0
        self._metadata = metadata
        self._config = config
        self._on_state = on_state
        self._on_published_hook = on_published
        self._scrub = scrub
        self._tls = tls
        self._auth = PublishAuth(target.username, target.password, target.app, authmod)
        self._backlog: deque[FlvTag] = deque()
        self._sequence_headers: list[FlvTag] = []
        self._connection: RtmpPublisher | None = None
        self._failures: asyncio.Queue[RtmpPublishError] = asyncio.Queue()
        self._bytes_closed_connections = 0
        settings = publish_settings(config)
        self._reconnect = ReconnectPolicy(settings)
        self._watchdog = ProgressWatchdog(settings)
        self._keyframes = KeyframeGate()
        self._stopped = asyncio.Event()
        self._last_timestamp = 0

    @property
    def bytes_sent(self) -> int:
        current = self._connection.bytes_sent if self._connection else 0
        return self._bytes_closed_connections + current

    @property
    def backlog_seconds(self) -> float:
        if len(self._backlog) < 2:
            return 0.0
        return (self._backlog[-1].timestamp - self._backlog[0].timestamp) / 1000

    def set_sequence_headers(self, headers: list[FlvTag]) -> None:
        """AAC AudioSpecificConfig and AVC decoder configuration (none for G.711); sent after every publish.

        Publishing starts while the call's encoders are still being opened, so headers that
        arrive on a live connection go out at once, ahead of any media.
        """
        self._sequence_headers = headers
        if self._connection is not None and headers:
            self._write_sequence_headers(self._connection)

    def send(self, tags: list[FlvTag], now: float) -> None:
        """Queue messages in timestamp order and write what the socket can take.

        The common case, one audio message with nothing queued before it on a connection that can
        take it, is written in one step (:meth:`RtmpPublisher.write_one`)."""
        connection = self._connection
        one = len(tags) == 1 and not self._backlog and tags[0].kind == AUDIO
        if one and connection is not None and connection.write_one(tags[0]):
            self.messages_sent += 1
            self._last_timestamp = tags[0].timestamp
            self._watchdog.wrote(now)
            return
        self._backlog.extend(tags)
        while self.backlog_seconds > self._config.max_backlog_seconds:
            self._backlog.popleft()
            self.dropped_messages += 1
        self._drain(now)

    def check_progress(self, now: float) -> None:
        """The watchdog (:class:`~bridge.rtmp.policy.ProgressWatchdog`): a connection whose socket has
        taken nothing, or whose server has acknowledged nothing, for ``stall_seconds`` is restarted."""
        connection = self._connection
        if connection is None:
            return
        core = connection.core
        reason = self._watchdog.check(now, bool(self._backlog), core.unacknowledged, core.sent_after_handshake)
        if reason is not None:
            self._restart(connection, reason)

    def _restart(self, connection: RtmpPublisher, reason: str) -> None:
        log.warning("RTMP %s: %s; restarting", self.label, reason)
        self._failures.put_nowait(RtmpPublishError(reason))
        connection.abort()

    async def run(self) -> str:
        """Publish until :meth:`close`; returns the reason if the stream had to be given up ("" if closed)."""
        loop = asyncio.get_running_loop()
        while not self._stopped.is_set():
            error, published = await self._publish_authenticated()
            if error is None:
                return ""
            if isinstance(error, RtmpRefused):
                return self._give_up(self._scrub(str(error)))
            delay = self._reconnect.failed(loop.time(), published)
            if delay is None:
                limit = self._config.max_reconnect_seconds
                return self._give_up(f"gave up reconnecting after {limit:g} s: {self._scrub(str(error))}")
            self._set(StreamState.RECONNECTING, self._scrub(str(error)))
            if await self._stopped_within(delay):
                return ""
        return ""

    async def _publish_authenticated(self) -> tuple[RtmpPublishError | None, bool]:
        """One publish; a challenge to our credentials is answered on a new connection at once."""
        for _ in range(MAX_AUTH_CONNECTIONS):
            error, published = await self._publish_once()
            if not isinstance(error, RtmpAuthRetry) or self._stopped.is_set():
                return error, published
        return RtmpRefused("RTMP authentication failed: too many challenges"), False

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopped.wait()
        return self._stopped.is_set()

    async def _publish_once(self) -> tuple[RtmpPublishError | None, bool]:
        """One connection: publish, drain, wait for it to fail or for close().

        Returns (why it ended, whether it published); (None, _) means close() was called. The
        connection's task is always reaped here, whatever happens (no task outlives the call).
        """
        self.connections += 1
        connection = RtmpPublisher(
            self.target,
            self._failures.put_nowait,
            self._metadata,
            self._config.connect_timeout,
            self._tls,
            self._auth,
            self._config.ack_window_bytes,
            self._config.network_policy().refusal,
        )
        task = asyncio.get_running_loop().create_task(connection.run())
        published = False
        try:
            try:
                await connection.wait_published(self._config.connect_timeout)
            except RtmpPublishError as exc:
                return exc, False
            if self._stopped.is_set():
                return None, False
            published = True
            self._on_published(connection)
            return await self._failure_or_stop(), True
        finally:
            await self._finish(connection, task, published)

    async def _failure_or_stop(self) -> RtmpPublishError | None:
        failure = asyncio.ensure_future(self._failures.get())
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({failure, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (failure, stop):
                waiter.cancel()
        return failure.result() if failure.done() and not failure.cancelled() else None

    def _on_published(self, connection: RtmpPublisher) -> None:
        republish = self.state is StreamState.RECONNECTING
        self._connection = connection
        self._auth.published()
        if republish:
            self.reconnects += 1
        self._set(StreamState.PUBLISHING, "republished" if republish else f"publishing {self.label}")
        self._write_sequence_headers(connection)
        self._keyframes.published()
        self._on_published_hook()  # video restarts on a key frame
        now = asyncio.get_running_loop().time()
        self._watchdog.connected(now)
        self._drain(now)

    def _write_sequence_headers(self, connection: RtmpPublisher) -> None:
        first = self._backlog[0].timestamp if self._backlog else self._last_timestamp
        headers = [FlvTag(tag.kind, first, tag.body, tag.keyframe) for tag in self._sequence_headers]
        if headers:
            connection.write(headers)

    async def _finish(self, connection: RtmpPublisher, task: asyncio.Task[None], published: bool) -> None:
        if self._connection is connection:
            self._connection = None
        self._bytes_closed_connections += connection.bytes_sent
        if not self._stopped.is_set() or not published:
            connection.abort()
        task.cancel()
        await asyncio.wait({task}, timeout=2.0)  # never swallows our own cancellation
        while not self._failures.empty():
            self._failures.get_nowait()

    def _drain(self, now: float) -> None:
        connection = self._connection
        if connection is None or not self._backlog or not connection.writable:
            return
        batch: list[FlvTag] = []
        while self._backlog:
            tag = self._backlog.popleft()
            if tag.kind == VIDEO and not self._accept_video(tag):
                continue
            batch.append(tag)
        connection.write(batch)
        self.messages_sent += len(batch)
        if batch:
            self._last_timestamp = batch[-1].timestamp
        self._watchdog.wrote(now)

    def _accept_video(self, tag: FlvTag) -> bool:
        """After a (re)publish, video starts with a key frame: inter frames before it are dropped."""
        if not self._keyframes.accept(tag.keyframe):
            return False
        self.video_frames_sent += 1
        return True

    def _give_up(self, reason: str) -> str:
        self._set(StreamState.FAILED, reason)
        return reason

    def _set(self, state: StreamState, reason: str) -> None:
        if state is StreamState.RECONNECTING:
            self.reconnect_attempts += 1
        if state is not self.state:
            self.state = state
            self._on_state(state, reason)

    async def close(self) -> None:
        """Unpublish cleanly (FCUnpublish, deleteStream) and report UNPUBLISHED; stops run()."""
        self._stopped.set()
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
        if self.state is not StreamState.FAILED:
            self._set(StreamState.UNPUBLISHED, "call ended")


def publish_settings(config: RtmpConfig) -> PublishSettings:
    """The ``[rtmp]`` keys the publish policy follows."""
    return PublishSettings(
        config.reconnect_initial_interval,
        config.reconnect_max_interval,
        config.max_reconnect_seconds,
        config.stall_seconds,
        config.ack_window_bytes,
    )
