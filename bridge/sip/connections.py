"""TCP and TLS connections for SIP (RFC 3261 section 18), each owned by one task.

Outgoing connections are opened on first use and reused for every message to the
same destination; connections accepted on our listener are keyed by the peer, so
responses to requests that arrived on them go back the same way.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from bridge.net.connlimit import ConnectionLimiter
from bridge.sip.addressing import Destination, Transport
from bridge.sip.framing import FramingError, StreamFramer

log = logging.getLogger("bridge.sip")
CONNECT_TIMEOUT = 5.0
MAX_PENDING_BYTES = 256 * 1024

# Takes one framed message; False: it was for none of our calls and the connection that brought it
# is to be closed (a stranger's connection under sip.unknown_requests = "drop").
MessageHandler = Callable[[bytes, Destination], bool]
FailureHandler = Callable[[Destination, str], None]  # reason "": closed quietly (a connection we accepted)


class IdleClosed(Exception):
    """No complete message within the idle time (connections we accepted)."""


class StreamConnection:
    """One TCP/TLS connection: buffered until connected, framed on reading."""

    def __init__(
        self,
        key: Destination,
        on_message: MessageHandler,
        on_failure: FailureHandler,
        idle_seconds: float | None = None,
    ) -> None:
        self.key = key
        self._on_message = on_message
        self._on_failure = on_failure
        self._writer: asyncio.StreamWriter | None = None
        self._pending = bytearray()
        self._framer = StreamFramer()
        self._idle_seconds = idle_seconds  # None: ours (outgoing), kept open while calls use it
        self.closed_idle = 0

    @property
    def _level(self) -> int:
        """Our own connections' troubles are worth a line; anyone's accepted connection is not."""
        return logging.DEBUG if self.accepted else logging.INFO

    @property
    def accepted(self) -> bool:
        """Opened by the far end on our listener (bounded, closed when idle), not by us."""
        return self._idle_seconds is not None

    def send(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)
        elif len(self._pending) + len(data) <= MAX_PENDING_BYTES:
            self._pending += data

    async def connect_and_serve(self, tls: ssl.SSLContext | None) -> None:
        """Open the connection (bounded), flush what was queued, then read until it closes."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(
                    self.key.host,
                    self.key.port,
                    ssl=tls,
                    server_hostname=(self.key.server_name or self.key.host) if tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            self._on_failure(self.key, f"cannot connect to {self.key}: {reason}")
            return
        await self.serve(reader, writer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        if self._pending:
            writer.write(bytes(self._pending))
            self._pending.clear()
        try:
            await self._read_loop(reader, writer)
        except (OSError, ssl.SSLError) as exc:
            log.log(self._level, "SIP connection %s failed: %s", self.key, exc)
        except IdleClosed:
            self.closed_idle = 1  # counted by the pool; a scanner's idle connection is worth no log line
        finally:
            writer.close()
            self._on_failure(self.key, f"connection to {self.key} closed")

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as idle:
                self._extend(idle, loop.time())
                while data := await reader.read(65536):
                    try:
                        messages = self._framer.feed(data)
                    except FramingError as exc:
                        log.log(self._level, "SIP connection %s: %s; closing it", self.key, exc)
                        return
                    for _ in range(self._framer.pings):
                        writer.write(b"\r\n")  # RFC 5626 pong
                    self._framer.pings = 0
                    for message in messages:
                        if not self._on_message(message, self.key) and self._idle_seconds is not None:
                            return  # a stranger's connection: closed after its first message for no call
                    if messages:
                        self._extend(idle, loop.time())
        except TimeoutError:
            raise IdleClosed from None

    def _extend(self, idle: asyncio.Timeout, now: float) -> None:
        """Another ``idle_seconds`` for the next complete message (accepted connections only)."""
        if self._idle_seconds is not None:
            idle.reschedule(now + self._idle_seconds)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class ConnectionPool:
    """Connections by destination, each served by a task the pool owns.

    Connections accepted on our listener are bounded (``limiter``: in all and per address) and
    closed when idle for ``idle_seconds`` (sip.tcp_idle_seconds), so idle connections from
    anyone cannot take the descriptors calls need.
    """

    def __init__(
        self,
        on_message: MessageHandler,
        on_failure: FailureHandler,
        tls: ssl.SSLContext | None,
        limiter: ConnectionLimiter | None = None,
        idle_seconds: float = 32.0,
    ) -> None:
        self._on_message = on_message
        self._on_failure = on_failure
        self._tls = tls
        self._connections: dict[Destination, StreamConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.limiter = limiter or ConnectionLimiter("sip_tcp", 256, 16)
        self.idle_seconds = idle_seconds
        self.idle_closed = 0

    def send(self, data: bytes, destination: Destination) -> None:
        key = Destination(destination.transport, destination.host, destination.port)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._open(key, destination)
        connection.send(data)

    def _open(self, key: Destination, destination: Destination) -> StreamConnection:
        if destination.transport is Transport.TLS and self._tls is None:
            raise ValueError("TLS is not configured")
        connection = StreamConnection(destination, self._on_message, self._closed)
        self._connections[key] = connection
        tls = self._tls if destination.transport is Transport.TLS else None
        self._spawn(connection.connect_and_serve(tls))
        return connection

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An incoming TCP connection (our listener): served within the limits, closed when idle."""
        host, port = writer.get_extra_info("peername")[:2]
        if not self.limiter.admit(host):
            writer.transport.abort()  # no FIN handshake to wait for: the descriptor is free at once
            return
        key = Destination(Transport.TCP, host, port)
        connection = StreamConnection(key, self._on_message, self._closed, self.idle_seconds)
        self._connections[key] = connection
        try:
            await connection.serve(reader, writer)
        finally:
            self.limiter.release(host)
            self.idle_closed += connection.closed_idle

    def _closed(self, destination: Destination, reason: str) -> None:
        """A connection ended. One we accepted is anyone's to open and close: no reason, no log line."""
        key = Destination(destination.transport, destination.host, destination.port)
        connection = self._connections.pop(key, None)
        accepted = connection is not None and connection.accepted
        self._on_failure(key, "" if accepted else reason)

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for connection in list(self._connections.values()):
            connection.close()
        for task in list(self._tasks):
            task.cancel()
