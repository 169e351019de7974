"""Our RTP leaves one packet per 20 ms on the worker's grid (fake clock), whatever the media tick."""

from __future__ import annotations

import pytest

from bridge.media.pacer import GRID_SECONDS, GridPacer, after_grid, on_grid
from bridge.media.ticker import EARLY, Ticker
from rtp.sender import SilenceSender


@pytest.mark.parametrize(("now", "grid"), [(1.0, 1.0), (1.001, 1.02), (1.0199, 1.02), (7.77, 7.78)])
def test_on_grid(now: float, grid: float) -> None:
    assert on_grid(now) == pytest.approx(grid)


@pytest.mark.parametrize(("now", "following"), [(10.0195, 10.04), (10.02, 10.04), (10.0208, 10.04)])
def test_the_next_grid_point_follows_the_one_just_run(now: float, following: float) -> None:
    assert after_grid(now) == pytest.approx(following)


def test_every_call_sends_one_packet_per_grid_point_and_a_failing_call_costs_only_itself() -> None:
    pacer = GridPacer(Ticker())
    senders = [SilenceSender(n, 0, 0, on_grid(10.003 + n / 1000)) for n in range(3)]
    sent: dict[int, list[int]] = {n: [] for n in range(3)}
    failures: list[Exception] = []
    for n, sender in enumerate(senders):
        pacer._calls[n] = (lambda now, n=n, s=sender: sent[n].append(len(s.poll(now))), failures.append)

    def broken(now: float) -> None:
        raise RuntimeError("defect")

    pacer._calls[99] = (broken, failures.append)
    deadline: float | None = on_grid(10.003)
    for _ in range(50):
        assert deadline is not None
        deadline = pacer.tick(deadline - EARLY * 0.8)  # the ticker fires within EARLY of a deadline
    assert all(counts == [1] * 50 for counts in sent.values())  # never 0, never a burst
    assert len(failures) == 1 and 99 not in pacer._calls
    assert deadline == pytest.approx(10.02 + 50 * GRID_SECONDS)
