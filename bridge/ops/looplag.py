"""Event-loop lag: how late a periodic wake-up fires, kept as recent samples."""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np

RECENT_SAMPLES = 50  # 5 s at the default interval: what admission reacts to


class LoopLagMonitor:
    """Sleeps ``interval`` repeatedly and records the overshoot in milliseconds."""

    def __init__(self, interval: float = 0.1, keep: int = 600) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, (loop.time() - expected) * 1000.0))

    def summary(self) -> dict[str, float]:
        """p50, p99 and max over the kept samples (a minute), and ``recent`` (the p99 of the last 5 s)."""
        if not self.samples:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "recent": 0.0}
        data = np.fromiter(self.samples, dtype=float)
        p50, p99 = np.percentile(data, [50, 99])
        recent = float(np.percentile(data[-RECENT_SAMPLES:], 99))
        return {
            "p50": round(float(p50), 3),
            "p99": round(float(p99), 3),
            "max": round(float(data.max()), 3),
            "recent": round(recent, 3),
        }
