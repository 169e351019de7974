"""The skeleton of the scripted peers: a UDP socket on 127.0.0.1 served by one thread."""

from __future__ import annotations

import socket
import threading

import numpy as np

from rtp.g711 import encode_ulaw


class UdpPeer:
    """Binds a free port, calls :meth:`handle` for every datagram, stops cleanly."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.running = True
        self._threads: list[threading.Thread] = []
        self.start_thread(self._serve)

    def start_thread(self, target: object) -> None:
        thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def handle(self, data: bytes, source: tuple[str, int]) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while self.running:
            try:
                data, source = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            self.handle(data, source)

    def stop(self) -> None:
        self.running = False
        for thread in self._threads:
            thread.join(2)
        self.sock.close()


def tone_frame(sequence: int, frequency: float = 440.0) -> bytes:
    """20 ms of a PCMU tone: frame ``sequence`` of a continuous sine at 8 kHz."""
    t = np.arange(sequence * 160, (sequence + 1) * 160) / 8000
    return encode_ulaw((8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16))
