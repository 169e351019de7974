"""The cluster's live events on every node: one Redis pub/sub channel, ``<cluster.name>:feed``.

Each node publishes what its own bus carries (call.state, stream.state, call.event: the payloads
SSE clients get, so nothing secret) and, every STATS_SECONDS while another node has an SSE client
that asked for counters (its record's ``watchers``), the counters of its active calls: a cluster
nobody watches spends nothing on them.
DTMF digits cross Redis masked while ``log.mask_dtmf`` is on (as in logs and the stored history):
the owner node's own SSE stream, the API and webhooks still carry them.
Each node relays the other nodes' events to its SSE subscribers only (webhooks, history and
metrics see each event once, on the node that owns the call) and keeps their latest counters for
``calls.stats``. While Redis is away the feed is quiet and starts again when it returns; events
of that time are not replayed (clients reload the list when their stream reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from bridge.calls.destinations import mask_dtmf
from bridge.cluster.config import ClusterConfig
from bridge.model import CallState
from bridge.ops.bus import BusEvent, EventBus

log = logging.getLogger("bridge.cluster")
STATS_SECONDS = 1.0  # how often each node publishes its calls' counters
RETRY_SECONDS = 1.0  # after Redis refused: wait, then subscribe or publish again
Stats = Callable[[], list[dict[str, Any]]]
_STOP = BusEvent("feed.stop", "", "", {})  # wakes the publisher to end (see ClusterFeed.stop)


FINAL_STATES = frozenset(state.value for state in CallState if state.final)


def event_message(node: str, event: BusEvent, mask_digits: bool) -> str:
    payload = event.to_json()
    if mask_digits:
        payload = mask_dtmf(payload)  # a call.event's "event" and "digit(s)" are a timeline entry's
    return json.dumps({"kind": "event", "node": node, "event": payload}, separators=(",", ":"))


def stats_message(node: str, calls: list[dict[str, Any]]) -> str:
    return json.dumps({"kind": "stats", "node": node, "calls": calls}, separators=(",", ":"))


def parse_event(payload: dict[str, Any], node: str) -> BusEvent | None:
    """A remote node's event as a BusEvent (its own id and time kept, ``node`` set); None if malformed."""
    try:
        data = dict(payload)
        kind, call_id, app = str(data.pop("type")), str(data.pop("callId")), str(data.pop("appKey", ""))
        event_id, at = int(data.pop("id")), str(data.pop("timestamp"))
    except (KeyError, TypeError, ValueError):
        return None
    data.setdefault("node", node)
    return BusEvent(kind, call_id, app, data, id=event_id, at=at)


class ClusterFeed:
    def __init__(
        self, config: ClusterConfig, bus: EventBus, stats: Stats, wanted: Callable[[], bool], mask_digits: bool = True
    ) -> None:
        from redis.asyncio import Redis

        self.node = config.node
        self.channel = f"{config.name}:feed"
        self._bus = bus
        self._stats = stats
        self._stats_wanted = wanted
        self._mask_digits = mask_digits
        self.watchers = 0  # this node's SSE clients with ?stats= (in its record: the others then publish)
        self._stale_after = config.node_ttl_seconds
        # Publishing must never wait long on a Redis that stopped answering; a subscriber waits for
        # messages as long as there are none (TCP keepalive finds a dead peer).
        options = config.redis_options()
        self._redis = Redis.from_url(
            config.redis_url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0, **options
        )
        self._subscriber = Redis.from_url(
            config.redis_url, decode_responses=True, socket_timeout=None, socket_connect_timeout=2.0,
            socket_keepalive=True, **options,
        )  # fmt: skip
        self._remote_stats: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # node -> (received, calls)
        self._stopping = False
        self._outbox = bus.subscribe(limit=10_000)  # this node's events, to publish
        self.relayed = 0  # other nodes' events passed to this node's SSE clients
        self.not_published = 0  # this node's events Redis did not take (an outage)

    def remote_calls(self) -> list[dict[str, Any]]:
        """The other nodes' active calls with their counters, as last published (``node`` set)."""
        fresh = time.monotonic() - self._stale_after
        return [
            {**call, "node": node}
            for node, (received, calls) in sorted(self._remote_stats.items())
            if received >= fresh
            for call in calls
        ]

    def stop(self) -> None:
        """End both loops at their next step. Not only a cancellation: a client library that turns
        a cancellation into its own error (which the loops survive, as they must survive Redis
        errors) would otherwise keep a stopping node waiting for ever."""
        self._stopping = True
        self._outbox.queue.put_nowait(_STOP)

    async def run(self) -> None:
        """Publish this node's events and counters, receive the others', until stopped."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish())
                group.create_task(self._receive())
        finally:
            await self._redis.aclose()
            await self._subscriber.aclose()

    async def _publish(self) -> None:
        subscription = self._outbox
        loop = asyncio.get_running_loop()
        next_stats = loop.time()
        try:
            while not self._stopping:
                try:
                    async with asyncio.timeout(max(0.0, next_stats - loop.time())):  # never wait_for (see decisions)
                        event = await subscription.get()
                    if event is not _STOP:
                        await self._send(event_message(self.node, event, self._mask_digits))
                except TimeoutError:
                    next_stats = loop.time() + STATS_SECONDS
                    if self._stats_wanted():
                        await self._send(stats_message(self.node, self._stats()))
        finally:
            subscription.close()

    async def _send(self, message: str) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.publish(self.channel, message)
        except (RedisError, OSError):
            self.not_published += 1  # the registry logs the outage once; the feed stays quiet

    async def _receive(self) -> None:
        from redis.exceptions import RedisError

        while not self._stopping:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=RETRY_SECONDS)
                    if message is not None and message.get("type") == "message":
                        self._take(message.get("data"))
            except (RedisError, OSError) as exc:
                log.debug("cluster feed: %s; subscribing again in %g s", exc, RETRY_SECONDS)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            if not self._stopping:
                await asyncio.sleep(RETRY_SECONDS)

    def _take(self, data: object) -> None:
        """One message of the channel; our own and malformed ones are ignored."""
        try:
            message = json.loads(data) if isinstance(data, str) else None
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("node") == self.node:
            return
        node = str(message.get("node"))
        if message.get("kind") == "stats" and isinstance(message.get("calls"), list):
            self._remote_stats[node] = (time.monotonic(), [c for c in message["calls"] if isinstance(c, dict)])
        elif message.get("kind") == "event" and isinstance(message.get("event"), dict):
            event = parse_event(message["event"], node)
            if event is not None:
                self.relayed += 1
                self._forget_if_ended(node, event)
                self._bus.relay(event)

    def _forget_if_ended(self, node: str, event: BusEvent) -> None:
        """A remote call's final state drops it from that node's last counters at once: they were
        sampled before its end and would show it alive until the node's next publication (a
        node publishes in order, so no older sample can follow the event)."""
        if event.type != "call.state" or event.data.get("state") not in FINAL_STATES:
            return
        entry = self._remote_stats.get(node)
        if entry is not None:
            received, calls = entry
            self._remote_stats[node] = (received, [c for c in calls if c.get("callId") != event.call_id])
