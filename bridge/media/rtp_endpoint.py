"""The sockets of one call's RTP/RTCP port pair.

RTP is read by polling, not by the event loop: the call's media tick (16 times a second)
first drains its socket, then plays out. Every datagram carries the kernel's receive time
(``SO_TIMESTAMPNS``), so the jitter buffer and the RFC 3550 jitter see true arrival times,
while the loop is spared one wake-up, one epoll round and one callback per packet (50 per
second per call). RTCP (a packet every few seconds) stays an ordinary asyncio endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator

from rtp.ports import PortsExhausted

log = logging.getLogger("bridge.rtp")

Endpoint = tuple[str, int]
DatagramHandler = Callable[[bytes, Endpoint], None]
MAX_DATAGRAM = 2048
RECEIVE_BUFFER = 256 * 1024  # about 5 s of 20 ms G.711 packets, far more than a tick
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the value Python does not name on 3.11


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handler(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("RTCP socket error: %s", exc)


def _ignore(data: bytes, source: Endpoint) -> None:
    """Placeholder handler until the endpoint is wired."""


def _bind_rtp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class RtpEndpoint:
    """A bound RTP socket (even port), polled by the media tick, and an RTCP socket (port + 1)."""

    def __init__(self, port: int, rtp: socket.socket, rtcp: asyncio.DatagramTransport, rtcp_protocol: _Protocol):
        self.port = port
        self._rtp = rtp
        self._rtcp = rtcp
        self._rtcp_protocol = rtcp_protocol
        self.rtcp_received = 0
        self.receive_errors = 0

    @classmethod
    async def open(cls, candidates: Iterable[int], host: str) -> RtpEndpoint:
        """Bind the first candidate whose pair is free; raise PortsExhausted if none is.

        The candidates come from the daemon's allocator; another process may hold one
        of them, which costs a skipped port, nothing more.
        """
        loop = asyncio.get_running_loop()
        tried = 0
        for port in candidates:
            tried += 1
            try:
                rtp = _bind_rtp(host, port)
            except OSError:
                continue
            try:
                rtcp, rtcp_protocol = await loop.create_datagram_endpoint(
                    lambda: _Protocol(_ignore), local_addr=(host, port + 1)
                )
            except OSError:
                rtp.close()
                continue
            return cls(port, rtp, rtcp, rtcp_protocol)
        raise PortsExhausted(f"none of the {tried} free RTP port pairs offered could be bound on {host}")

    def set_rtcp_handler(self, handler: DatagramHandler) -> None:
        self._rtcp_protocol.handler = handler

    def receive(self, monotonic_offset: float) -> Iterator[tuple[bytes, Endpoint, float]]:
        """Every datagram waiting: (data, source, arrival), arrival on the monotonic clock.

        ``monotonic_offset`` is wall-clock time minus monotonic time, to convert the kernel's
        (wall-clock) receive stamps.
        """
        sock = self._rtp
        while True:
            try:
                data, ancillary, _flags, source = sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                self.note_error(exc)
                return
            yield data, (source[0], source[1]), _arrival(ancillary, monotonic_offset)

    @property
    def fileno(self) -> int:
        """The RTP socket's descriptor (the compiled receive path reads it: rtp._fast)."""
        return self._rtp.fileno()

    def note_error(self, exc: OSError) -> None:
        self.receive_errors += 1
        log.debug("RTP socket error: %s", exc)

    def discard_pending(self) -> int:
        """Drop what arrived before media started (as the far end's early packets always were)."""
        return sum(1 for _ in self.receive(time.time() - time.monotonic()))

    def send(self, data: bytes, destination: Endpoint) -> None:
        try:
            self._rtp.sendto(data, destination)
        except (BlockingIOError, OSError) as exc:  # a full socket buffer or an unreachable host: drop
            log.debug("RTP send failed: %s", exc)

    def send_rtcp(self, data: bytes, destination: Endpoint) -> None:
        self._rtcp.sendto(data, destination)

    def close(self) -> None:
        self._rtp.close()
        self._rtcp.close()


def _arrival(ancillary: list[tuple[int, int, bytes]], monotonic_offset: float) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds * 1e-9 - monotonic_offset)
    return time.time() - monotonic_offset  # no stamp (not Linux): now
