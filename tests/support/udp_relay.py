"""A UDP relay between the daemon and the SIP domain that loses chosen datagrams.

It forwards client -> server and server -> client and drops the first datagram
matching each rule, to prove retransmission (RFC 3261 Timer A, and the far end's
2xx retransmission answered by our ACK).
"""

from __future__ import annotations

import socket
import threading

from tests.support.ports import free_port


class LossyRelay:
    def __init__(self, server: tuple[str, int], drop_once: list[bytes]) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.server = server
        self.pending_drops = list(drop_once)
        self.dropped: list[bytes] = []
        self.forwarded = 0
        self._client: tuple[str, int] | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, source = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            if self._drop(data):
                continue
            if source == self.server:
                if self._client is not None:
                    self._sock.sendto(data, self._client)
            else:
                self._client = source
                self._sock.sendto(data, self.server)
            self.forwarded += 1

    def _drop(self, data: bytes) -> bool:
        for prefix in self.pending_drops:
            if data.startswith(prefix):
                self.pending_drops.remove(prefix)
                self.dropped.append(data.split(b"\r\n", 1)[0])
                return True
        return False

    def stop(self) -> None:
        self._running = False
        self._thread.join(2)
        self._sock.close()


class BlackHole:
    """A bound UDP port that never answers (the SIP server is down)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])

    def stop(self) -> None:
        self._sock.close()
