"""Our RTP leaves one packet per 20 ms on the worker's grid (fake clock), whatever the media tick."""

from __future__ import annotations

import pytest

from bridge.media.pacer import GRID_SECONDS, PacedSend, on_grid
from bridge.media.ticker import EARLY
from rtp.sender import SilenceSender


@pytest.mark.parametrize(("now", "grid"), [(1.0, 1.0), (1.001, 1.02), (1.0199, 1.02), (7.77, 7.78)])
def test_on_grid(now: float, grid: float) -> None:
    assert on_grid(now) == pytest.approx(grid)


def test_one_packet_per_grid_point_even_when_the_ticker_runs_a_little_early() -> None:
    sender = SilenceSender(1, 0, 0, on_grid(10.003))
    sent: list[tuple[float, int]] = []

    def send(now: float) -> float | None:
        sent.append((now, len(sender.poll(now))))
        return sender.get_timer()

    pacer = PacedSend(send, lambda error: None)
    deadline: float | None = sender.get_timer()
    for _ in range(50):
        assert deadline is not None
        deadline = pacer.tick(deadline - EARLY * 0.8)  # the ticker fires within EARLY of the deadline
    assert [count for _, count in sent] == [1] * 50  # never 0 (a wasted wake-up), never a burst
    assert deadline == pytest.approx(10.02 + 50 * GRID_SECONDS)
