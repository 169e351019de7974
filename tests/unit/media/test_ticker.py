"""One timer per worker: jobs run at their deadlines, share wake-ups, leave, and fail alone."""

from __future__ import annotations

import asyncio
import itertools

from bridge.media.ticker import Ticker


class Job:
    def __init__(self, name: str, period: float, runs: int, log: list[tuple[str, float]]) -> None:
        self.name, self.period, self.left, self.log = name, period, runs, log
        self.error: Exception | None = None

    def tick(self, now: float) -> float | None:
        self.log.append((self.name, now))
        self.left -= 1
        return now + self.period if self.left > 0 else None

    def failed(self, error: Exception) -> None:
        self.error = error


class Broken(Job):
    def tick(self, now: float) -> float | None:
        raise RuntimeError("defect")


async def test_jobs_run_at_their_deadlines_and_leave_when_done() -> None:
    loop = asyncio.get_running_loop()
    ticker, log = Ticker(), []
    start = loop.time()
    fast, slow = Job("fast", 0.02, 5, log), Job("slow", 0.05, 2, log)
    ticker.schedule(fast, start + 0.01)
    ticker.schedule(slow, start + 0.01)
    await asyncio.sleep(0.2)
    assert [name for name, _ in log].count("fast") == 5 and [name for name, _ in log].count("slow") == 2
    for name, period in (("fast", 0.02), ("slow", 0.05)):
        times = [at for who, at in log if who == name]
        assert all(abs((b - a) - period) < 0.006 for a, b in itertools.pairwise(times))
        assert times[0] >= start + 0.01 - 0.0006  # never earlier than half a millisecond before
    assert len(ticker) == 0 and ticker.wakeups < ticker.ticks  # the first deadline was shared


async def test_cancel_and_a_failing_job_leave_the_others_running() -> None:
    loop = asyncio.get_running_loop()
    ticker, log = Ticker(), []
    good, cancelled, broken = Job("good", 0.01, 10, log), Job("cancelled", 0.01, 10, log), Broken("broken", 0, 1, log)
    now = loop.time()
    for job in (good, cancelled, broken):
        ticker.schedule(job, now + 0.005)
    ticker.cancel(cancelled)
    await asyncio.sleep(0.15)
    names = [name for name, _ in log]
    assert names.count("good") == 10 and "cancelled" not in names
    assert isinstance(broken.error, RuntimeError) and good.error is None
    ticker.close()
