"""Ports on 127.0.0.1 for test peers, handed out so that nothing else can take them.

Ports come from below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``, 32768 and
up by default), so no outgoing connection of any process is given one between the moment a test
picks it and the moment its peer binds it; and each pytest-xdist worker has a block of its own,
handed out in order, so two peers of a run never get the same port. A port that cannot be bound
now (a service of the machine) is skipped.
"""

from __future__ import annotations

import os
import socket

LOW, HIGH = 10_000, 32_768
BLOCKS = 4  # the most xdist workers a run uses (make test runs -n 3)


def _block() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) % BLOCKS if worker[2:].isdigit() else 0
    size = (HIGH - LOW) // BLOCKS
    return LOW + index * size, LOW + (index + 1) * size


_FIRST, _END = _block()
_next = _FIRST


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _take(size: int, even: bool, usable: list[tuple[int, int]]) -> int:
    """The first port of ``size`` consecutive ports from this worker's block, each offset in
    ``usable`` (offset, socket kind) bindable now."""
    global _next
    for _ in range(2 * (_END - _FIRST)):
        start = _next + (_next % 2 if even else 0)
        if start + size > _END:
            _next = _FIRST  # the block is used up: start again (earlier peers have ended long since)
            continue
        _next = start + size
        if all(_bindable(start + offset, kind) for offset, kind in usable):
            return start
    raise RuntimeError(f"no free ports in {_FIRST}-{_END - 1}")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    return _take(1, False, [(0, kind)])


def free_udp_tcp_pair() -> int:
    """A port free for UDP and TCP, whose successor is free for TCP too (baresip's TLS)."""
    return _take(2, False, [(0, socket.SOCK_DGRAM), (0, socket.SOCK_STREAM), (1, socket.SOCK_STREAM)])


def free_even_range(size: int) -> tuple[int, int]:
    """A block of ``size`` UDP ports starting at an even number, all free now and given to no other
    peer of this run (daemons and far ends bind their ports only when calls start)."""
    base = _take(size, True, [(offset, socket.SOCK_DGRAM) for offset in range(size)])
    return base, base + size - 1
