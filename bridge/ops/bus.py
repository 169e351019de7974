"""In-process event bus: call and stream state changes, DTMF and other timeline events.

Sessions publish; webhooks, Server-Sent Events, metrics and the history store
subscribe. In a cluster, other nodes' events are relayed (bridge.cluster.feed) to the
subscriptions that asked for them (SSE) only: everything else sees each event once, where the
call is. Publishing never blocks: each subscriber has its own bounded queue, and a
subscriber that falls behind loses its oldest events (counted), never the caller's time.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from bridge.model import utc_now

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One event: ``type`` is call.state, stream.state or call.event (DTMF, media, ...)."""

    type: str
    call_id: str
    app_key: str
    data: dict[str, Any]
    id: int = field(default_factory=lambda: next(_ids))
    at: str = field(default_factory=lambda: utc_now().isoformat())

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "callId": self.call_id,
            "appKey": self.app_key,
            "timestamp": self.at,
            **self.data,
        }


class Subscription:
    def __init__(self, bus: EventBus, limit: int, call_id: str | None, remote: bool = False) -> None:
        self._bus = bus
        self.remote = remote  # also other nodes' events (relayed)
        self.queue: asyncio.Queue[BusEvent] = asyncio.Queue()
        self.limit = limit
        self.call_id = call_id
        self.dropped = 0

    def offer(self, event: BusEvent) -> None:
        if self.call_id is not None and event.call_id != self.call_id:
            return
        if self.queue.qsize() >= self.limit:
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> BusEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self.published = 0

    def publish(self, event: BusEvent) -> None:
        self.published += 1
        for subscription in list(self._subscriptions):
            subscription.offer(event)

    def relay(self, event: BusEvent) -> None:
        """Another node's event, for the subscriptions that want the whole cluster's."""
        for subscription in list(self._subscriptions):
            if subscription.remote:
                subscription.offer(event)

    def subscribe(self, limit: int = 1000, call_id: str | None = None, remote: bool = False) -> Subscription:
        subscription = Subscription(self, limit, call_id, remote)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
