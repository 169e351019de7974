"""Joining the cluster at start-up (``[cluster]``), and leaving it at a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from bridge.calls.registry import CallManager
from bridge.calls.services import Services
from bridge.cluster.feed import ClusterFeed
from bridge.cluster.node_loss import NODE_LOST, mark_lost_in_history, publish_lost_calls
from bridge.cluster.registry import ClusterRegistry, LostCall
from bridge.ops.logs import REDACTOR

log = logging.getLogger("bridge.cluster")


def _load(manager: CallManager) -> dict[str, Any]:
    services = manager.services
    capacity = min(services.config.limits.max_calls, services.ports.capacity)
    return {
        "capacity": capacity,
        "draining": int(manager.draining or manager.shutting_down),
        "watchers": services.cluster_feed.watchers if services.cluster_feed is not None else 0,
    }


def open_cluster(services: Services, manager: CallManager) -> ClusterRegistry | None:
    """The registry, when ``cluster.redis_url`` is set; :meth:`ClusterRegistry.run` is the caller's task."""
    config = services.config.cluster
    if not config.enabled:
        return None
    REDACTOR.register(*config.secrets())

    def node_lost(node: str, calls: list[LostCall]) -> None:
        publish_lost_calls(services.bus, node, calls)
        if services.history is not None:
            mark_lost_in_history(services.history, node, calls)

    def declared_lost() -> None:
        for session in list(manager.sessions.values()):
            session.terminate(f"{NODE_LOST}: this node missed its heartbeat and its calls were ended")

    registry = ClusterRegistry(config, lambda: _load(manager), node_lost, declared_lost)
    registry.on_shared_key = services.tickets.use_key
    services.cluster = registry

    def stats_wanted() -> bool:
        return any(record.watchers > 0 for record in registry.last_records if record.node != registry.node)

    mask = services.config.log.mask_dtmf
    services.cluster_feed = ClusterFeed(config, services.bus, lambda: manager.stats(None), stats_wanted, mask)
    log.info("cluster %s: node %s, Redis %s", config.name, registry.node, REDACTOR.redact(config.redis_url))
    return registry


async def run_cluster(registry: ClusterRegistry, feed: ClusterFeed | None) -> None:
    """The heartbeat and the event feed, until cancelled."""
    async with asyncio.TaskGroup() as group:
        group.create_task(registry.run())
        if feed is not None:
            group.create_task(feed.run())


async def leave_cluster(
    registry: ClusterRegistry | None, feed: ClusterFeed | None, task: asyncio.Task[None] | None
) -> None:
    """Stop the heartbeat and the feed (flags first, then a cancellation), then leave cleanly."""
    for part in (registry, feed):
        if part is not None:
            part.stop()
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if registry is not None:
        await registry.close()
