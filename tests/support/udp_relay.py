"""A UDP relay between the daemon and the SIP domain that loses chosen datagrams.

It forwards client -> server and server -> client and drops the first datagram
matching each rule, to prove retransmission (RFC 3261 Timer A, and the far end's
2xx retransmission answered by our ACK).
"""

from __future__ import annotations

import socket

from tests.support.udp_peer import UdpPeer


class LossyRelay(UdpPeer):
    def __init__(self, server: tuple[str, int], drop_once: list[bytes]) -> None:
        self.server = server
        self.pending_drops = list(drop_once)
        self.dropped: list[bytes] = []
        self.forwarded = 0
        self._client: tuple[str, int] | None = None
        super().__init__()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        if self._drop(data):
            return
        if source == self.server:
            if self._client is not None:
                self.sock.sendto(data, self._client)
        else:
            self._client = source
            self.sock.sendto(data, self.server)
        self.forwarded += 1

    def _drop(self, data: bytes) -> bool:
        for prefix in self.pending_drops:
            if data.startswith(prefix):
                self.pending_drops.remove(prefix)
                self.dropped.append(data.split(b"\r\n", 1)[0])
                return True
        return False


class BlackHole:
    """A bound UDP port that never answers (the SIP server is down)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])

    def stop(self) -> None:
        self._sock.close()
