"""Free ports on 127.0.0.1 for test peers."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_tcp_pair() -> int:
    """A port free for UDP and TCP, whose successor is free for TCP too (baresip's TLS)."""
    for _ in range(200):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as b,
            ):
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair found")


def free_even_range(size: int) -> tuple[int, int]:
    """A block of ``size`` UDP ports starting at an even number, all free now."""
    for base in range(30000, 60000, 200):
        ports = range(base, base + size)
        sockets = []
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base, base + size - 1
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free UDP port range found")
