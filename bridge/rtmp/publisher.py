"""The asyncio driver for :class:`RtmpClientCore`: one TCP (or TLS) connection.

Writes never block: audio is handed to the transport, and when the server
reads too slowly for the transport buffer to drain below ``max_buffer_bytes``
further audio is dropped and counted instead of queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from bridge.rtmp.amf0 import AmfValue
from bridge.rtmp.client import PublishStarted, RtmpClientCore, RtmpFailed, RtmpState
from bridge.rtmp.url import RtmpTarget

log = logging.getLogger("bridge.rtmp")


class RtmpPublishError(Exception):
    """Publishing could not start or stopped; the message says why."""


class RtmpPublisher:
    """Connects, publishes, sends audio and unpublishes one stream."""

    def __init__(
        self,
        target: RtmpTarget,
        on_failure: Callable[[str], None],
        metadata: dict[str, AmfValue] | None = None,
        connect_timeout: float = 10.0,
        max_buffer_bytes: int = 512 * 1024,
    ) -> None:
        self.target = target
        self.core = RtmpClientCore(target)
        self._on_failure = on_failure
        self._metadata = metadata or {}
        self._connect_timeout = connect_timeout
        self._max_buffer = max_buffer_bytes
        self._writer: asyncio.StreamWriter | None = None
        self._published = asyncio.get_running_loop().create_future()
        self._backlog: list[tuple[int, bytes]] = []
        self.dropped_messages = 0
        self.closing = False

    @property
    def bytes_sent(self) -> int:
        return self.core.bytes_sent

    async def run(self) -> None:
        """Connect and keep reading until the connection ends; report failures."""
        try:
            reader = await asyncio.wait_for(self._connect(), self._connect_timeout)
            await self._read_loop(reader)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            self._fail(f"RTMP connection to {self.target.host}:{self.target.port} failed: {reason}")
        finally:
            if self._writer is not None:
                self._writer.close()

    async def wait_published(self, timeout: float) -> None:
        """Return once NetStream.Publish.Start arrived; raise :class:`RtmpPublishError` otherwise."""
        try:
            await asyncio.wait_for(asyncio.shield(self._published), timeout)
        except TimeoutError:
            raise RtmpPublishError("RTMP server did not confirm publish in time") from None

    def send_audio(self, timestamp_ms: int, body: bytes) -> None:
        """Queue one audio message; held back until publishing, dropped if the server stalls."""
        if self.core.state is not RtmpState.PUBLISHING:
            if len(self._backlog) < 500:
                self._backlog.append((timestamp_ms, body))
            else:
                self.dropped_messages += 1
            return
        if self._writer is None or self._writer.transport.get_write_buffer_size() > self._max_buffer:
            self.dropped_messages += 1
            return
        self.core.send_audio(timestamp_ms, body)
        self._flush()

    async def close(self, timeout: float = 2.0) -> None:
        """FCUnpublish + deleteStream, then close the connection (bounded wait)."""
        self.closing = True
        if self._writer is None or self._writer.is_closing():
            return
        self.core.close()
        self._flush()
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(self._writer.drain(), timeout)
        self._writer.close()

    async def _connect(self) -> asyncio.StreamReader:
        context = ssl.create_default_context() if self.target.tls else None
        reader, writer = await asyncio.open_connection(
            self.target.host,
            self.target.port,
            ssl=context,
            server_hostname=self.target.host if context else None,
        )
        self._writer = writer
        self._flush()
        return reader

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                if not self.closing:
                    self._fail("RTMP server closed the connection")
                return
            self.core.receive_data(data)
            self._handle_events()
            self._flush()

    def _handle_events(self) -> None:
        for event in self.core.events:
            if isinstance(event, PublishStarted):
                self._on_published()
            elif isinstance(event, RtmpFailed):
                self._fail(f"RTMP server refused: {event.code} {event.description}".strip())
        self.core.events.clear()

    def _on_published(self) -> None:
        log.info("publishing %s", self.target.public_url())
        if self._metadata:
            self.core.send_metadata(self._metadata)
        backlog, self._backlog = self._backlog, []
        for timestamp_ms, body in backlog:
            self.core.send_audio(timestamp_ms, body)
        if not self._published.done():
            self._published.set_result(None)

    def _flush(self) -> None:
        data = self.core.data_to_send()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _fail(self, reason: str) -> None:
        if not self._published.done():
            self._published.set_exception(RtmpPublishError(reason))
            self._published.exception()  # mark retrieved; the owner reads it via wait_published
        self._on_failure(reason)
