"""Call set-ups take turns: one per loop turn, in order, bounded; ticks ready meanwhile run between them."""

from __future__ import annotations

import asyncio

import pytest

from bridge.media.setup_queue import SetupQueue, SetupQueueFull


class TurnCounter:
    """Counts loop turns: a callback that schedules itself again runs once per turn."""

    def __init__(self) -> None:
        self.turn = 0
        self._handle = asyncio.get_running_loop().call_soon(self._count)

    def _count(self) -> None:
        self.turn += 1
        self._handle = asyncio.get_running_loop().call_soon(self._count)

    def stop(self) -> None:
        self._handle.cancel()


async def test_set_ups_run_one_per_loop_turn_in_order_with_ticks_between() -> None:
    queue, counter, started = SetupQueue(), TurnCounter(), []

    async def set_up(name: int) -> None:
        await queue.turn()
        started.append((name, counter.turn))

    async with asyncio.TaskGroup() as group:
        for name in range(30):
            group.create_task(set_up(name))
    counter.stop()
    assert [name for name, _ in started] == list(range(30))
    turns = [turn for _, turn in started]
    assert len(set(turns)) == 30  # never two set-ups in one loop turn
    assert queue.given == 30 and len(queue) == 0 and queue.most_waiting == 30


async def test_a_cancelled_set_up_loses_its_place_and_a_full_queue_refuses() -> None:
    queue = SetupQueue(limit=3)
    first, second, third = queue.turn(), queue.turn(), queue.turn()
    with pytest.raises(SetupQueueFull, match="3 call set-ups are waiting"):
        queue.turn()
    first.cancel()
    await asyncio.sleep(0)  # one loop turn: one turn given, to the first waiter still waiting
    assert second.done() and not third.done()
    await third
    assert queue.given == 2
    fourth = queue.turn()
    queue.close()
    assert fourth.cancelled()
