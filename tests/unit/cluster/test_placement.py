"""Placement: the node with the most headroom; none when the cluster is full; draining takes nothing."""

from __future__ import annotations

from bridge.cluster.placement import NodeRecord, choose


def _record(node: str, capacity: int, calls: int, draining: bool = False) -> NodeRecord:
    return NodeRecord(node, f"http://{node}:9091", capacity, calls, draining)


def test_the_most_headroom_wins_and_ties_stay_here() -> None:
    records = [_record("a", 10, 9), _record("b", 10, 2), _record("c", 20, 12)]
    assert choose(records, "a").node == "b"  # type: ignore[union-attr]
    tied = [_record("a", 10, 5), _record("b", 10, 5)]
    assert choose(tied, "b").node == "b" and choose(tied, "a").node == "a"  # type: ignore[union-attr]


def test_a_full_or_draining_cluster_places_nothing() -> None:
    assert choose([_record("a", 2, 2), _record("b", 5, 0, draining=True)], "a") is None
    assert choose([], "a") is None


def test_records_are_parsed_as_redis_holds_them() -> None:
    fields = {"advertise_url": "http://a:9091", "capacity": "100", "calls": "7", "draining": "0"}
    assert NodeRecord.parse("a", fields) == _record("a", 100, 7)
    assert NodeRecord.parse("a", {**fields, "draining": "1"}) == _record("a", 100, 7, draining=True)
    assert NodeRecord.parse("a", {"capacity": "x"}) is None
