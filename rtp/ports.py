"""Allocation of even RTP ports (RTCP on port + 1, RFC 3550 section 11) from a range."""

from __future__ import annotations


class PortsExhausted(RuntimeError):
    """Every even port of the configured range is in use."""


class PortAllocator:
    """Hands out even ports round-robin so a just-freed port is not reused at once."""

    def __init__(self, first: int, last: int) -> None:
        self.first = first + (first % 2)
        self.last = last
        if self.first + 1 > self.last:
            raise ValueError(f"port range {first}-{last} holds no even/odd pair")
        self._next = self.first
        self._in_use: set[int] = set()

    @property
    def capacity(self) -> int:
        return (self.last - self.first + 1) // 2

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def candidates(self) -> list[int]:
        """Free even ports in the order they should be tried."""
        ports = list(range(self._next, self.last, 2)) + list(range(self.first, self._next, 2))
        return [p for p in ports if p not in self._in_use and p + 1 <= self.last]

    def take(self, port: int) -> None:
        self._in_use.add(port)
        self._next = port + 2 if port + 3 <= self.last else self.first

    def release(self, port: int) -> None:
        self._in_use.discard(port)
