"""One timer per worker: jobs run at their deadlines, share wake-ups, leave, and fail alone."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from bridge.media.ticker import GRID_SECONDS, Ticker, clock_start, grid_point


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
        # a job asks for now + period; the ticker wakes on the next grid point at or after it
        assert all(-0.001 < (b - a) - period < GRID_SECONDS + 0.006 for a, b in itertools.pairwise(times))
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


async def test_wakeups_fall_on_the_grid_and_calls_started_apart_share_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty 64 ms jobs whose clocks started at scattered times (each on the clock grid, as a call's
    playout clock does) cost the worker one wake-up per 16 ms phase, not one per job and batch; every
    timer the ticker arms is a grid point (read from the loop's own call_at)."""
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def recording(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__self__", None) is ticker:
            armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", recording)
    ticker, log = Ticker(), []
    start = loop.time()
    jobs = [Job(f"call{n}", 0.064, 4, log) for n in range(20)]
    for n, job in enumerate(jobs):
        ticker.schedule(job, clock_start(start + 0.0037 * n) + 0.064)
    off_grid = Job("off", 0.0, 1, log)
    ticker.schedule(off_grid, start + 0.0101)
    await asyncio.sleep(0.40)
    assert len(log) == 81
    assert armed and all(abs(when / GRID_SECONDS - round(when / GRID_SECONDS)) < 1e-6 for when in armed)
    assert ticker.wakeups <= 4 * 5 + 1  # four phases per 64 ms batch (20 jobs x 4 batches), and the off-grid job
    ran_at = next(at for name, at in log if name == "off")
    assert ran_at >= grid_point(start + 0.0101) - 0.0006  # not before its grid point (less libuv's rounding)
    ticker.close()
