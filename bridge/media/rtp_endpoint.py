"""The asyncio side of one call's RTP/RTCP port pair."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from rtp.ports import PortsExhausted

log = logging.getLogger("bridge.rtp")

Endpoint = tuple[str, int]
DatagramHandler = Callable[[bytes, Endpoint], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, handler: DatagramHandler) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handler(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error: %s", exc)


def _ignore(data: bytes, source: Endpoint) -> None:
    """Placeholder handler until the endpoint is wired."""


class RtpEndpoint:
    """A bound RTP socket (even port) and RTCP socket (port + 1)."""

    def __init__(
        self,
        port: int,
        rtp: asyncio.DatagramTransport,
        rtcp: asyncio.DatagramTransport,
        protocol: _Protocol,
        rtcp_protocol: _Protocol,
    ) -> None:
        self.port = port
        self._rtp = rtp
        self._rtcp = rtcp
        self._protocol = protocol
        self._rtcp_protocol = rtcp_protocol
        self.rtcp_received = 0

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
                rtp, protocol = await loop.create_datagram_endpoint(lambda: _Protocol(_ignore), local_addr=(host, port))
            except OSError:
                continue
            try:
                rtcp, rtcp_protocol = await loop.create_datagram_endpoint(
                    lambda: _Protocol(_ignore), local_addr=(host, port + 1)
                )
            except OSError:
                rtp.close()
                continue
            return cls(port, rtp, rtcp, protocol, rtcp_protocol)
        raise PortsExhausted(f"none of the {tried} free RTP port pairs offered could be bound on {host}")

    def set_handler(self, handler: DatagramHandler) -> None:
        self._protocol.handler = handler

    def set_rtcp_handler(self, handler: DatagramHandler) -> None:
        self._rtcp_protocol.handler = handler

    def send(self, data: bytes, destination: Endpoint) -> None:
        self._rtp.sendto(data, destination)

    def send_rtcp(self, data: bytes, destination: Endpoint) -> None:
        self._rtcp.sendto(data, destination)

    def close(self) -> None:
        self._rtp.close()
        self._rtcp.close()
