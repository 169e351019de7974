"""The cluster registry's scripts and lock against a real redis-server, without daemons.

Two survivors that notice the same lost node at the same moment: exactly one ends its calls.
A release after the callId was claimed again elsewhere frees nothing of the new owner's.
"""

from __future__ import annotations

import asyncio

import pytest

from bridge.cluster.config import ClusterConfig
from bridge.cluster.registry import Claim, ClusterRegistry, LostCall
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e


def _registry(redis: RedisServer, node: str, reports: list[tuple[str, str, list[LostCall]]]) -> ClusterRegistry:
    config = ClusterConfig(
        redis_url=redis.url, name="reg", node_id=node, advertise_url=f"http://{node}:9091",
        heartbeat_seconds=0.2, node_ttl_seconds=0.5,
    )  # fmt: skip
    return ClusterRegistry(config, dict, lambda lost, calls: reports.append((node, lost, calls)), lambda: None)


def test_two_survivors_at_once_end_a_lost_nodes_calls_once(redis: RedisServer) -> None:
    reports: list[tuple[str, str, list[LostCall]]] = []

    async def scenario() -> None:
        doomed = _registry(redis, "doomed", reports)
        await doomed._heartbeat()
        assert await doomed.claim(Claim("z-1", ("d1",), "app", "2026-12-06T10:00:00+00:00")) is None
        await asyncio.sleep(0.7)  # its heartbeat key expires; it never says goodbye
        survivors = [_registry(redis, name, reports) for name in ("s1", "s2", "s3")]
        await asyncio.gather(*(survivor._heartbeat() for survivor in survivors))
        await asyncio.gather(*(survivor._reap_lost_nodes() for survivor in survivors))
        for registry in (doomed, *survivors):
            await registry._redis.aclose()

    asyncio.run(scenario())
    assert [(lost, [call.call_id for call in calls]) for _, lost, calls in reports] == [("doomed", ["z-1"])]
    assert redis.keys("reg:call:*") == [] and redis.keys("reg:stream:*") == []


def test_a_late_release_frees_nothing_of_the_new_owner(redis: RedisServer) -> None:
    async def scenario() -> None:
        first, second = _registry(redis, "first", []), _registry(redis, "second", [])
        assert await first.claim(Claim("y-1", ("s-y",))) is None
        conflict = await second.claim(Claim("y-1", ("s-y",)))
        assert conflict is not None and (conflict.field, conflict.holder) == ("callId", "first")
        await first._release("first", "y-1", ("s-y",))
        assert await second.claim(Claim("y-1", ("s-y",))) is None
        await first._release("first", "y-1", ("s-y",))  # late, again: the call is second's now
        for registry in (first, second):
            await registry._redis.aclose()

    asyncio.run(scenario())
    assert redis.cli("HGET", "reg:call:y-1", "node") == "second"
    assert redis.cli("GET", "reg:stream:s-y") == "y-1"
