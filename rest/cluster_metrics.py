"""The cluster as this node sees it, for Prometheus (``[cluster]``): read at scrape time from the
registry's last heartbeat, so a scrape never waits for Redis."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.cluster.registry import ClusterRegistry


class ClusterCollector(Collector):
    def __init__(self, registry: ClusterRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        registry = self._registry
        records = registry.last_records
        yield GaugeMetricFamily(
            "bridge_cluster_registry_up", "1 while Redis answers this node", value=registry.available
        )
        yield GaugeMetricFamily("bridge_cluster_nodes", "Live nodes at the last heartbeat", value=len(records))
        yield GaugeMetricFamily(
            "bridge_cluster_headroom", "New calls the cluster can take (draining nodes count 0)",
            value=sum(max(record.headroom, 0) for record in records),
        )  # fmt: skip
        calls = GaugeMetricFamily("bridge_cluster_node_calls", "Calls on each node", labels=["node"])
        headroom = GaugeMetricFamily("bridge_cluster_node_headroom", "New calls each node can take", labels=["node"])
        draining = GaugeMetricFamily("bridge_cluster_node_draining", "1 while the node drains", labels=["node"])
        for record in records:
            calls.add_metric([record.node], record.calls)
            headroom.add_metric([record.node], max(record.headroom, 0))
            draining.add_metric([record.node], int(record.draining))
        yield from (calls, headroom, draining)
        yield CounterMetricFamily(
            "bridge_cluster_lost_nodes",
            "Nodes this node found lost and whose calls it ended",
            value=registry.lost_nodes,
        )
        yield CounterMetricFamily(
            "bridge_cluster_lost_calls", "Calls of lost nodes this node ended FAILED 'node lost'", value=registry.reaped
        )
