"""A clock a test moves by hand, for the cores and drivers that take ``clock`` or ``now``."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds; set or advance ``now``, call it to read."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
