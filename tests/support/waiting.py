"""Polling for a condition a real peer will reach, with a deadline and a message when it does not."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Poll every 10 ms until ``predicate()`` is true; return the seconds it took, or raise TimeoutError."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.01)
    raise TimeoutError(what)


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
