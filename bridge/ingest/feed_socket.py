"""The daemon's one loopback UDP socket that carries every ingest call's RTP to its media worker."""

from __future__ import annotations

import logging
import socket

log = logging.getLogger("bridge.ingest")
FEED_HOST = "127.0.0.1"


class FeedSocket:
    """Bound on first use; a full socket buffer drops the packet (the worker conceals it)."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = None
        self.dropped = 0

    @property
    def address(self) -> tuple[str, int]:
        sock = self._bound()
        host, port = sock.getsockname()[:2]
        return str(host), int(port)

    def send(self, datagrams: list[bytes], port: int) -> None:
        sock = self._bound()
        for datagram in datagrams:
            try:
                sock.sendto(datagram, (FEED_HOST, port))
            except OSError:  # BlockingIOError (buffer full) or the worker's port gone
                self.dropped += 1

    def _bound(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((FEED_HOST, 0))
            self._socket = sock
        return self._socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
