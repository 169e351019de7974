"""The asyncio driver for :class:`RtmpClientCore`: one TCP (or TLS) connection, one publish.

:class:`bridge.media.stream.StreamPublisher` owns reconnection, backlog and states;
this class only connects, publishes, writes when the socket can take it, and
unpublishes. Writes never block: :attr:`writable` says when the transport buffer is
below its high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from bridge.net.netpolicy import short_reason
from bridge.rtmp.amf0 import AmfValue
from bridge.rtmp.auth import PublishAuth
from bridge.rtmp.client import AuthFailed, AuthRetry, PublishStarted, RtmpClientCore, RtmpFailed, RtmpState
from bridge.rtmp.flv import FlvTag
from bridge.rtmp.url import RtmpTarget

log = logging.getLogger("bridge.rtmp")
HIGH_WATER_BYTES = 256 * 1024


class RtmpPublishError(Exception):
    """Publishing could not start or stopped; the message says why."""


class RtmpRefused(RtmpPublishError):
    """The server refused us (connect _error, onStatus error): retrying will not help."""


class RtmpAuthRetry(RtmpPublishError):
    """The server challenged our publish authentication: connect again at once with the response."""


class RtmpPublisher:
    """Connects, publishes, writes audio and unpublishes one stream on one connection."""

    def __init__(
        self,
        target: RtmpTarget,
        on_failure: Callable[[RtmpPublishError], None],
        metadata: dict[str, AmfValue] | None = None,
        connect_timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        auth: PublishAuth | None = None,
        ack_window: int = 0,
        refusal: Callable[[str], str | None] | None = None,
    ) -> None:
        self.target = target
        self._refusal = refusal or (lambda address: None)  # the network policy (bridge.net.netpolicy)
        self.core = RtmpClientCore(target, auth=auth, ack_window=ack_window)
        self._on_failure = on_failure
        self._metadata = metadata or {}
        self._connect_timeout = connect_timeout
        self._tls = tls
        self._writer: asyncio.StreamWriter | None = None
        self._published = asyncio.get_running_loop().create_future()
        self.closing = False
        self.messages_sent = 0

    @property
    def bytes_sent(self) -> int:
        return self.core.bytes_sent

    @property
    def publishing(self) -> bool:
        return self.core.state is RtmpState.PUBLISHING and self._writer is not None

    @property
    def writable(self) -> bool:
        """Publishing, and the socket has drained below its high-water mark."""
        writer = self._writer
        return (
            self.publishing
            and writer is not None
            and not writer.is_closing()
            and writer.transport.get_write_buffer_size() < HIGH_WATER_BYTES
        )

    async def run(self) -> None:
        """Connect and keep reading until the connection ends; report failures."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader = await self._connect()
            await self._read_loop(reader)
        except RtmpRefused as exc:
            self._fail(exc)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            # The detail to the log only: in the API it would tell a caller what listens where.
            log.info(
                "RTMP connection to %s:%d failed: %s", self.target.host, self.target.port, exc or type(exc).__name__
            )
            self._fail(RtmpPublishError(f"RTMP connection to {self.target.host} failed: {short_reason(exc)}"))
        finally:
            if self._writer is not None:
                self._writer.close()

    async def wait_published(self, timeout: float) -> None:
        """Return once NetStream.Publish.Start arrived; raise :class:`RtmpPublishError` otherwise."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._published)
        except TimeoutError:
            raise RtmpPublishError("RTMP server did not confirm publish in time") from None

    def write(self, tags: list[FlvTag]) -> None:
        """Send audio/video messages now, in one socket write (the caller checked :attr:`writable`)."""
        for tag in tags:
            self.core.send_media(tag.kind, tag.timestamp, tag.body)
        self.messages_sent += len(tags)
        self._flush()

    def write_one(self, tag: FlvTag) -> bool:
        """The publish fast path: one message built and written in one step, if the socket is below
        its high-water mark and the core has it as a single chunk; False: use :meth:`write`."""
        writer = self._writer
        if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size() >= HIGH_WATER_BYTES:
            return False
        data = self.core.media_bytes(tag.kind, tag.timestamp, tag.body)
        if data is None:
            return False
        writer.transport.write(data)
        self.messages_sent += 1
        return True

    async def close(self, timeout: float = 2.0) -> None:
        """FCUnpublish + deleteStream, then close the connection (bounded wait)."""
        self.closing = True
        if self._writer is None or self._writer.is_closing():
            return
        self.core.close()
        self._flush()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        self._writer.close()

    def abort(self) -> None:
        """Drop the connection at once (stalled server)."""
        self.closing = True
        if self._writer is not None:
            self._writer.transport.abort()

    async def _connect(self) -> asyncio.StreamReader:
        """Resolve without blocking, drop the addresses the network policy refuses, connect to the
        first of the rest that answers (TLS checks the URL's host name, not the address)."""
        context = (self._tls or ssl.create_default_context()) if self.target.tls else None
        addresses = await self._allowed_addresses()
        error: OSError | None = None
        for address in addresses:
            try:
                reader, writer = await asyncio.open_connection(
                    address, self.target.port, ssl=context, server_hostname=self.target.host if context else None
                )
            except OSError as exc:  # ssl.SSLError too
                error = exc
                continue
            self._writer = writer
            self._flush()
            return reader
        assert error is not None
        raise error

    async def _allowed_addresses(self) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [address for address in addresses if self._refusal(address) is None]
        if not allowed:
            raise RtmpRefused(f"RTMP host {self.target.host} is refused: {self._refusal(addresses[0])}")
        return allowed

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                if not self.closing:
                    self._fail(self._closed_error())
                return
            self.core.receive_data(data)
            self._handle_events()
            self._flush()

    def _closed_error(self) -> RtmpPublishError:
        """A close in answer to connect/publish is a refusal (e.g. nginx-rtmp's on_publish said no)."""
        if self.core.state in (RtmpState.CONNECTING, RtmpState.CREATING_STREAM, RtmpState.PUBLISH_REQUESTED):
            return RtmpRefused(f"RTMP server closed the connection instead of accepting {self.core.state.value}")
        return RtmpPublishError("RTMP server closed the connection")

    def _handle_events(self) -> None:
        for event in self.core.events:
            if isinstance(event, PublishStarted):
                if self._metadata:
                    self.core.send_metadata(self._metadata)
                if not self._published.done():
                    self._published.set_result(None)
            elif isinstance(event, AuthRetry):
                self._fail(RtmpAuthRetry("RTMP server asked for publish authentication"))
            elif isinstance(event, AuthFailed):
                self._fail(RtmpRefused(event.reason))
            elif isinstance(event, RtmpFailed):
                self._fail(RtmpRefused(f"RTMP server refused: {event.code} {event.description}".strip()))
        self.core.events.clear()

    def _flush(self) -> None:
        data = self.core.data_to_send()
        if data and self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _fail(self, error: RtmpPublishError) -> None:
        if not self._published.done():
            self._published.set_exception(error)
            self._published.exception()  # retrieved here; the owner also learns through on_failure
        if not self.closing:
            self._on_failure(error)
