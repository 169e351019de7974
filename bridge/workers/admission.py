"""Admission by measured headroom (sans-IO): a new call goes where there is CPU for it, or nowhere.

Each media worker reports its CPU time once a second; the daemon turns consecutive reports
into the worker's load (fraction of one core, smoothed) and keeps its recent event-loop lag.
A call is admitted to the worker with the most headroom, where headroom counts what the
reports cannot show yet: calls placed since the last report are charged at the measured
cost of a call. That is what keeps a burst of new calls from overshooting the limit (the
complaint about CPU-based admission elsewhere: it reads a load that predates the burst).
Refused calls get a 503 that names the limit and the loads.
"""

from __future__ import annotations

from dataclasses import dataclass

SMOOTHING = 0.5  # weight of the newest load sample
DEFAULT_CALL_COST = 0.01  # a core per call, until enough calls have been measured
MIN_CALLS_FOR_COST = 20
COST_RANGE = (0.002, 0.05)  # a measured cost outside this is a transient (set-up bursts), clamped


@dataclass
class WorkerLoad:
    """What the daemon knows about one worker's load."""

    index: int
    calls: int = 0  # calls on the worker now (including those still opening)
    cpu: float = 0.0  # smoothed fraction of one core, from the worker's reports
    calls_measured: int = 0  # calls the worker had when ``cpu`` was measured
    lag_ms: float = 0.0  # recent event-loop lag p99
    alive: bool = True
    samples: int = 0
    _last_cpu_seconds: float | None = None
    _last_report_at: float = 0.0

    def report(self, cpu_seconds: float, at: float, calls: int, lag_ms: float) -> None:
        """A stats report: CPU time so far at monotonic time ``at``, with ``calls`` calls."""
        if self._last_cpu_seconds is not None and at > self._last_report_at:
            sample = max(0.0, (cpu_seconds - self._last_cpu_seconds) / (at - self._last_report_at))
            self.cpu = sample if not self.samples else SMOOTHING * sample + (1 - SMOOTHING) * self.cpu
            self.samples += 1
            self.calls_measured = calls
        self._last_cpu_seconds, self._last_report_at = cpu_seconds, at
        self.lag_ms = lag_ms


class Admission:
    """Picks the worker for a new call, or says why none can take it."""

    def __init__(self, max_cpu: float, max_lag_ms: float) -> None:
        self.max_cpu = max_cpu  # fraction of one core per worker; 0 = not checked
        self.max_lag_ms = max_lag_ms  # 0 = not checked

    def call_cost(self, loads: list[WorkerLoad]) -> float:
        """CPU of one call, measured over the live workers (a default until enough calls ran)."""
        calls = sum(load.calls_measured for load in loads if load.alive)
        if calls < MIN_CALLS_FOR_COST:
            return DEFAULT_CALL_COST
        return min(max(sum(load.cpu for load in loads if load.alive) / calls, COST_RANGE[0]), COST_RANGE[1])

    def headroom(self, load: WorkerLoad, cost: float) -> float:
        """The CPU left after this call, with the calls the last report did not see charged too."""
        unseen = max(0, load.calls - load.calls_measured)
        return self.max_cpu - load.cpu - unseen * cost - cost

    def choose(self, loads: list[WorkerLoad]) -> int | str:
        """The worker to use — among those with headroom, the one with the fewest calls (so a burst is
        spread evenly while the reports lag behind) — or the reason every worker refuses."""
        live = [load for load in loads if load.alive]
        if not live:
            return "no media worker is running (they are restarting)"
        cost = self.call_cost(live)
        able = [load for load in live if self._able(load, cost)]
        if not able:
            return self._refusal(live, cost)
        return min(able, key=lambda load: (load.calls, load.index)).index

    def _able(self, load: WorkerLoad, cost: float) -> bool:
        if self.max_lag_ms and load.lag_ms > self.max_lag_ms:
            return False
        return not self.max_cpu or self.headroom(load, cost) >= 0

    def _refusal(self, live: list[WorkerLoad], cost: float) -> str:
        loads = ", ".join(
            f"worker {load.index}: {load.calls} calls, {load.cpu:.0%} of a core, loop lag {load.lag_ms:.0f} ms"
            for load in live
        )
        return (
            f"the media workers have no CPU headroom for another call ({loads}; a call costs about {cost:.1%} "
            f"of a core; limits.max_worker_cpu {self.max_cpu:.0%}, limits.max_worker_lag_ms {self.max_lag_ms:g})"
        )
