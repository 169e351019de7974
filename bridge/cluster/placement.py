"""Which node takes a new call: the one with the most headroom (no I/O here).

Headroom is a node's capacity (``limits.max_calls``, bounded by its RTP ports) minus its calls: the
capacity from the node's record (the heartbeat writes it), the calls counted from its calls set in
Redis (each claim adds to it in the same step). A draining node takes nothing. Ties go to the node
that received the request, saving a hop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node: str
    url: str
    capacity: int
    calls: int
    draining: bool
    watchers: int = 0  # SSE clients of this node that asked for every node's counters (calls.stats)

    @property
    def headroom(self) -> int:
        return 0 if self.draining else self.capacity - self.calls

    @classmethod
    def parse(cls, node: str, record: dict[str, str]) -> NodeRecord | None:
        """A record as stored, or None if it is incomplete (a node still joining). ``calls`` is
        counted from the node's calls set by :meth:`ClusterRegistry.nodes` (0 where not needed)."""
        try:
            return cls(node, record["advertise_url"], int(record["capacity"]), int(record.get("calls", "0")),
                       record.get("draining", "0") == "1", int(record.get("watchers", "0")))  # fmt: skip
        except (KeyError, ValueError):
            return None


def choose(records: list[NodeRecord], me: str) -> NodeRecord | None:
    """The node to place a call on, or None when no node has room."""
    open_nodes = [record for record in records if record.headroom > 0]
    if not open_nodes:
        return None
    return max(open_nodes, key=lambda record: (record.headroom, record.node == me))
