"""The cluster feed's receiving side on hand-written messages: others' events reach the
subscriptions that asked for the cluster's (SSE) and nothing else; junk and our own echo are ignored."""

from __future__ import annotations

import json

import pytest

from bridge.cluster.config import ClusterConfig
from bridge.cluster.feed import ClusterFeed, event_message, stats_message
from bridge.ops.bus import BusEvent, EventBus

CONFIG = ClusterConfig(redis_url="redis://127.0.0.1:1/0", name="t", node_id="me", advertise_url="http://x:1")


def _feed(bus: EventBus) -> ClusterFeed:
    return ClusterFeed(CONFIG, bus, lambda: [], lambda: True)


def test_another_nodes_event_reaches_cluster_subscriptions_only() -> None:
    bus = EventBus()
    sse, webhooks = bus.subscribe(remote=True), bus.subscribe()
    event = BusEvent("call.state", "c-1", "app", {"state": "ESTABLISHED", "reason": "200 OK"}, id=41, at="2026-12-06")
    _feed(bus)._take(event_message("other", event, mask_digits=True))
    assert webhooks.queue.empty() and sse.queue.qsize() == 1
    got = sse.queue.get_nowait()
    assert got.to_json() == {
        "id": 41, "type": "call.state", "callId": "c-1", "appKey": "app", "timestamp": "2026-12-06",
        "state": "ESTABLISHED", "reason": "200 OK", "node": "other",
    }  # fmt: skip


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"kind": "event", "node": "other", "event": {"type": "call.state"}}),  # no callId, id
        json.dumps({"kind": "event", "node": "other", "event": "x"}),
        json.dumps({"kind": "stats", "node": "other", "calls": "x"}),
        json.dumps({"kind": "event", "node": "me", "event": {"type": "a", "callId": "b", "id": 1, "timestamp": "t"}}),
    ],
)
def test_junk_and_our_own_echo_are_ignored(message: str) -> None:
    bus = EventBus()
    sse = bus.subscribe(remote=True)
    feed = _feed(bus)
    feed._take(message)
    assert sse.queue.empty() and feed.remote_calls() == [] and feed.relayed == 0


def test_the_other_nodes_counters_are_kept_with_their_node_until_stale() -> None:
    feed = _feed(EventBus())
    feed._take(stats_message("b", [{"callId": "c-2", "state": "ESTABLISHED", "counters": {"packets": 9}}]))
    feed._take(stats_message("me", [{"callId": "mine"}]))
    assert feed.remote_calls() == [{"callId": "c-2", "state": "ESTABLISHED", "counters": {"packets": 9}, "node": "b"}]
    received, calls = feed._remote_stats["b"]
    feed._remote_stats["b"] = (received - CONFIG.node_ttl_seconds - 1, calls)  # a node silent for longer than the TTL
    assert feed.remote_calls() == []


def test_dtmf_digits_cross_redis_masked_unless_masking_is_off() -> None:
    sent = BusEvent("call.event", "c-1", "app", {"event": "dtmf-sent", "digits": "4711#"}, id=3, at="t")
    received = BusEvent("call.event", "c-1", "app", {"event": "dtmf", "digit": "9"}, id=4, at="t")
    for event, secret in ((sent, "4711#"), (received, '"9"')):
        masked = event_message("me", event, mask_digits=True)
        assert secret not in masked and "dtmf" in masked, masked
        assert secret in event_message("me", event, mask_digits=False)


def test_a_remote_calls_end_drops_it_from_that_nodes_last_counters_at_once() -> None:
    """Counters sampled before the end must not show the call alive after its FINISH event."""
    feed = _feed(EventBus())
    alive = [{"callId": "c-3", "state": "ESTABLISHED"}, {"callId": "c-4", "state": "ESTABLISHED"}]
    feed._take(stats_message("b", alive))
    hold = BusEvent("call.state", "c-3", "app", {"state": "HOLD", "reason": "re-INVITE"}, id=7, at="t")
    feed._take(event_message("b", hold, mask_digits=True))
    assert [c["callId"] for c in feed.remote_calls()] == ["c-3", "c-4"]  # not an end: kept
    end = BusEvent("call.state", "c-3", "app", {"state": "FINISH", "reason": "BYE"}, id=8, at="t")
    feed._take(event_message("b", end, mask_digits=True))
    assert [c["callId"] for c in feed.remote_calls()] == ["c-4"]
