"""One call's RTMP stream, kept published for the whole call.

- States PENDING, PUBLISHING, RECONNECTING, FAILED, UNPUBLISHED, reported with reasons.
- When the connection drops or the server restarts: reconnect with capped exponential
  backoff and republish under the same name; timestamps keep following the call's
  wall-clock timeline, so players see one continuous stream.
- Refusals (connect rejected, Publish.BadName/Rejected, a close in answer to publish)
  fail the stream at once: retrying would not change the answer.
- Audio goes through a backlog bounded in seconds: while the server cannot take it,
  the oldest audio is dropped (and counted) so latency cannot grow without bound.
- Watchdog: no audio accepted by the socket for ``stall_seconds`` while publishing
  restarts the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from bridge.config import RtmpConfig
from bridge.rtmp.amf0 import AmfValue
from bridge.rtmp.publisher import RtmpPublisher, RtmpPublishError, RtmpRefused
from bridge.rtmp.url import RtmpTarget

log = logging.getLogger("bridge.rtmp")


class StreamState(StrEnum):
    PENDING = "PENDING"
    PUBLISHING = "PUBLISHING"
    RECONNECTING = "RECONNECTING"
    FAILED = "FAILED"
    UNPUBLISHED = "UNPUBLISHED"


StateHandler = Callable[[StreamState, str], None]


class StreamPublisher:
    def __init__(
        self,
        target: RtmpTarget,
        metadata: dict[str, AmfValue],
        config: RtmpConfig,
        on_state: StateHandler,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self.state = StreamState.PENDING
        self.reconnects = 0
        self.reconnect_attempts = 0
        self.dropped_messages = 0
        self.messages_sent = 0
        self._metadata = metadata
        self._config = config
        self._on_state = on_state
        self._tls = tls
        self._backlog: deque[tuple[int, bytes]] = deque()
        self._sequence_header: bytes | None = None
        self._connection: RtmpPublisher | None = None
        self._failures: asyncio.Queue[RtmpPublishError] = asyncio.Queue()
        self._bytes_closed_connections = 0
        self._last_write: float | None = None
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
        return (self._backlog[-1][0] - self._backlog[0][0]) / 1000

    def set_sequence_header(self, body: bytes) -> None:
        """The AAC AudioSpecificConfig (or nothing for G.711); sent after every publish."""
        self._sequence_header = body

    def send_audio(self, timestamp_ms: int, body: bytes, now: float) -> None:
        self._backlog.append((timestamp_ms, body))
        while self.backlog_seconds > self._config.max_backlog_seconds:
            self._backlog.popleft()
            self.dropped_messages += 1
        self._drain(now)

    def check_progress(self, now: float) -> None:
        """The watchdog: a socket that has taken nothing for ``stall_seconds`` is restarted."""
        connection = self._connection
        if connection is None or self._last_write is None or not self._backlog:
            return
        if now - self._last_write > self._config.stall_seconds:
            log.warning(
                "RTMP %s made no progress for %s s; restarting", self.target.public_url(), self._config.stall_seconds
            )
            self._failures.put_nowait(RtmpPublishError(f"no progress for {self._config.stall_seconds:g} s"))
            connection.abort()

    async def run(self) -> str:
        """Publish until :meth:`close`; returns the reason if the stream had to be given up ("" if closed)."""
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        backoff = self._config.reconnect_initial_interval
        while not self._stopped.is_set():
            error, published = await self._publish_once()
            if error is None:
                return ""
            if isinstance(error, RtmpRefused):
                return self._give_up(str(error))
            now = loop.time()
            if published:
                failing_since, backoff = now, self._config.reconnect_initial_interval
            failing_since = failing_since if failing_since is not None else now
            limit = self._config.max_reconnect_seconds
            if limit and now - failing_since > limit:
                return self._give_up(f"gave up reconnecting after {limit:g} s: {error}")
            self._set(StreamState.RECONNECTING, str(error))
            if await self._stopped_within(backoff):
                return ""
            backoff = min(backoff * 2, self._config.reconnect_max_interval)
        return ""

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)
        return self._stopped.is_set()

    async def _publish_once(self) -> tuple[RtmpPublishError | None, bool]:
        """One connection: publish, drain, wait for it to fail or for close().

        Returns (why it ended, whether it published); (None, _) means close() was called. The
        connection's task is always reaped here, whatever happens (no task outlives the call).
        """
        connection = RtmpPublisher(
            self.target, self._failures.put_nowait, self._metadata, self._config.connect_timeout, self._tls
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
        if republish:
            self.reconnects += 1
        self._set(StreamState.PUBLISHING, "republished" if republish else f"publishing {self.target.public_url()}")
        if self._sequence_header is not None:
            first = self._backlog[0][0] if self._backlog else self._last_timestamp
            connection.write(first, self._sequence_header)
        self._last_write = asyncio.get_running_loop().time()
        self._drain(self._last_write)

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
        while self._backlog and connection is not None and connection.writable:
            timestamp, body = self._backlog.popleft()
            connection.write(timestamp, body)
            self.messages_sent += 1
            self._last_timestamp = timestamp
            self._last_write = now

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
