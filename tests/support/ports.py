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


_HANDED_OUT: list[range] = []  # blocks given to peers of this run: a port goes to one peer only


def free_even_range(size: int) -> tuple[int, int]:
    """A block of ``size`` UDP ports starting at an even number, all free now and given to no other
    peer of this run (daemons and far ends bind their ports only when calls start)."""
    base = 30000
    while base + size <= 60000:
        ports = range(base, base + size)
        taken = [given.stop for given in _HANDED_OUT if ports.start < given.stop and given.start < ports.stop]
        if taken:
            base = max(taken) + max(taken) % 2
            continue
        busy = _first_busy(ports)
        if busy is None:
            _HANDED_OUT.append(ports)
            return base, base + size - 1
        base = busy + 1 + (busy + 1) % 2
    raise RuntimeError("no free UDP port range found")


def _first_busy(ports: range) -> int | None:
    """The first port of ``ports`` that cannot be bound now, or None if all can."""
    sockets = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return port
        return None
    finally:
        for sock in sockets:
            sock.close()
