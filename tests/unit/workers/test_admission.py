"""Admission by measured headroom: calls go where CPU is left, bursts do not overshoot, refusals say why."""

from __future__ import annotations

from bridge.workers.admission import DEFAULT_CALL_COST, Admission, WorkerLoad


def measured(index: int, calls: int, cpu: float, lag_ms: float = 1.0) -> WorkerLoad:
    """A worker whose last two reports showed ``cpu`` of a core with ``calls`` calls."""
    load = WorkerLoad(index)
    load.report(0.0, 0.0, calls, lag_ms)
    load.report(cpu, 1.0, calls, lag_ms)
    load.calls = calls
    return load


def test_loads_come_from_consecutive_reports_smoothed() -> None:
    load = WorkerLoad(0)
    load.report(10.0, 100.0, 10, 2.0)
    assert load.cpu == 0.0 and load.samples == 0  # one report is no rate yet
    load.report(10.5, 101.0, 10, 2.0)
    assert load.cpu == 0.5
    load.report(10.6, 102.0, 12, 3.0)
    assert abs(load.cpu - 0.3) < 1e-9 and load.calls_measured == 12 and load.lag_ms == 3.0


def test_the_call_goes_to_the_able_worker_with_the_fewest_calls() -> None:
    admission = Admission(max_cpu=0.85, max_lag_ms=50)
    assert admission.choose([measured(0, 40, 0.40), measured(1, 20, 0.20)]) == 1
    assert abs(admission.call_cost([measured(0, 40, 0.40), measured(1, 20, 0.20)]) - 0.01) < 1e-9
    busy = measured(1, 20, 0.84)  # few calls, but no CPU left
    assert admission.choose([measured(0, 40, 0.40), busy]) == 0


def test_a_burst_is_spread_over_the_workers_while_their_reports_lag() -> None:
    admission = Admission(max_cpu=0.85, max_lag_ms=50)
    loads = [measured(0, 0, 0.0), measured(1, 0, 0.0)]
    for _ in range(40):
        loads[admission.choose(loads)].calls += 1  # type: ignore[index]
    assert [load.calls for load in loads] == [20, 20]


def test_a_burst_of_new_calls_is_charged_before_the_reports_show_it() -> None:
    admission = Admission(max_cpu=0.85, max_lag_ms=50)
    load = measured(0, 40, 0.40)  # 1 % of a core per call measured
    admitted = 0
    while isinstance(admission.choose([load]), int):
        load.calls += 1  # placed, not yet in any report
        admitted += 1
    assert 44 <= admitted <= 45  # 0.40 + 0.45 + 0.01 would pass 0.85: stops at the limit, not after it
    refusal = admission.choose([load])
    assert isinstance(refusal, str) and "limits.max_worker_cpu 85%" in refusal and "worker 0: 8" in refusal


def test_loop_lag_refuses_a_worker_and_no_limits_means_least_calls() -> None:
    admission = Admission(max_cpu=0.85, max_lag_ms=50)
    assert admission.choose([measured(0, 10, 0.1, lag_ms=80), measured(1, 30, 0.3)]) == 1
    assert isinstance(admission.choose([measured(0, 10, 0.1, lag_ms=80)]), str)
    unlimited = Admission(max_cpu=0, max_lag_ms=0)
    assert unlimited.choose([measured(0, 30, 0.99, lag_ms=500), measured(1, 10, 0.99)]) == 1
    assert unlimited.choose([measured(0, 300, 0.99, lag_ms=500)]) == 0
    dead = measured(0, 0, 0.0)
    dead.alive = False
    assert "no media worker is running" in str(admission.choose([dead]))
    assert admission.call_cost([measured(0, 2, 0.5)]) == DEFAULT_CALL_COST  # too few calls to measure
    assert admission.call_cost([measured(0, 20, 1.0)]) == 0.05  # a set-up burst, not the steady cost
