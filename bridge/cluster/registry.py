"""This node's side of the cluster registry in Redis (``[cluster]``): claims, heartbeat, lost nodes.

- :meth:`ClusterRegistry.claim` makes a callId and its streams this node's in one atomic step
  (a Lua script): a duplicate on any node is a conflict, never a race.
- :meth:`ClusterRegistry.run` sends the heartbeat (a key with a TTL, and the node's record), then
  looks for nodes whose heartbeat expired: one survivor (a lock with a TTL) releases their calls'
  keys and reports each call once to ``on_node_lost``. A node that learns it was declared lost
  (it stalled past the TTL) ends its calls, as its claims are gone.
- While Redis cannot be reached ``available`` is False: new calls are refused, calls in progress
  go on, and when it returns the node claims its calls again (a restarted Redis may have lost them).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.cluster.config import ClusterConfig
from bridge.cluster.keys import CLAIM, RELEASE, Keys
from bridge.cluster.placement import NodeRecord

log = logging.getLogger("bridge.cluster")
LOST_MARK_SECONDS = 3600  # how long a lost node's tombstone waits for it to come back and see it
ENDED_POINTER_SECONDS = 600  # how long other nodes send questions about an ended call to its node


class RegistryUnavailable(Exception):
    """Redis cannot be reached: no new call can be made unique across the cluster now."""


@dataclass(frozen=True, slots=True)
class Conflict:
    field: str  # "callId" or "stream"
    holder: str  # the node holding the callId, or the callId publishing the stream


@dataclass(frozen=True, slots=True)
class Claim:
    call_id: str
    streams: tuple[str, ...]  # digests (bridge.cluster.keys.stream_digest)
    app: str = ""
    created: str = ""


@dataclass(frozen=True, slots=True)
class LostCall:
    call_id: str
    node: str
    app: str
    created: str


NodeLost = Callable[[str, list[LostCall]], None]


def _text(value: bytes | str) -> str:
    """The client decodes replies (decode_responses); its types still allow bytes."""
    return value.decode() if isinstance(value, bytes) else value


Load = Callable[[], dict[str, Any]]


class ClusterRegistry:
    def __init__(self, config: ClusterConfig, load: Load, on_node_lost: NodeLost, on_declared_lost: Callable[[], None]):
        from redis.asyncio import Redis

        self.config = config
        self.node = config.node
        self.keys = Keys(config.name)
        self._redis = Redis.from_url(
            config.redis_url,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            **config.redis_options(),
        )
        self._claim_script = self._redis.register_script(CLAIM)
        self._release_script = self._redis.register_script(RELEASE)
        self._load = load
        self._on_node_lost = on_node_lost
        self._on_declared_lost = on_declared_lost
        self.claims: dict[str, Claim] = {}  # this node's active calls, claimed again after an outage
        self._unreleased: list[Claim] = []  # releases Redis did not take (an outage): done on its return
        self.available = False
        self.reaped = 0  # calls of lost nodes this node ended
        self.lost_nodes = 0  # nodes this node found lost and reaped
        self.last_records: list[NodeRecord] = []  # every live node, as read at the last heartbeat (metrics)
        self.on_shared_key: Callable[[bytes], None] | None = None  # the cluster's ticket key, once known
        self._shared_key: str | None = None
        self._epoch: str | None = None  # Redis's data generation, as the last heartbeat read it
        self._data_lost = False  # the epoch changed: Redis restarted without its data
        self._stopping = False

    async def claim(self, claim: Claim) -> Conflict | None:
        """Make the call and its streams this node's, or say who holds them."""
        keys = [self.keys.call(claim.call_id), self.keys.calls_of(self.node), self.keys.node(self.node)]
        keys += [self.keys.stream(digest) for digest in claim.streams]
        args = [self.node, claim.call_id, " ".join(claim.streams), claim.app, claim.created]
        result = await self._call(self._claim_script, keys, args)
        if result:
            return Conflict(str(result[0]), str(result[1]))
        self.claims[claim.call_id] = claim
        return None

    async def release(self, call_id: str) -> None:
        """The call ended here: its callId and streams are free again (retried by the next reconcile)."""
        claim = self.claims.pop(call_id, None)
        if claim is not None:
            try:
                await self._release(self.node, claim.call_id, claim.streams)
            except RegistryUnavailable:
                self._unreleased.append(claim)

    async def _release(self, node: str, call_id: str, streams: tuple[str, ...], keep_ended: bool = True) -> None:
        keys = [self.keys.call(call_id), self.keys.calls_of(node), self.keys.node(node), self.keys.ended(call_id)]
        keys += [self.keys.stream(digest) for digest in streams]
        keep = str(ENDED_POINTER_SECONDS if keep_ended else 0)
        await self._call(self._release_script, keys, [node, call_id, keep])

    async def _call(self, script: Any, keys: list[str], args: list[str]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._set_available(False, exc)
            raise RegistryUnavailable(f"the cluster registry (Redis) cannot be reached: {exc}") from None

    def _set_available(self, available: bool, problem: BaseException | None = None) -> None:
        if available != self.available:
            if available:
                log.info("cluster %s: Redis reachable; node %s registered", self.config.name, self.node)
            else:
                log.error("cluster %s: Redis unreachable (%s); new calls are refused, calls in progress go on",
                          self.config.name, problem)  # fmt: skip
        self.available = available

    def stop(self) -> None:
        """End :meth:`run` at its next step (a cancellation a Redis call turned into its own error
        would be survived like any Redis error)."""
        self._stopping = True

    async def run(self) -> None:
        """Heartbeat and watch for lost nodes every ``cluster.heartbeat_seconds``, until stopped."""
        from redis.exceptions import RedisError

        while not self._stopping:
            try:
                returned = not self.available
                await self._heartbeat()
                if returned or self._data_lost:
                    self._data_lost = False
                    await self._reconcile()
                    await self._share_key(again=True)
                await self._share_key()
                self._set_available(True)
                await self._reap_lost_nodes()
                self.last_records = await self.records()
            except (RedisError, OSError, RegistryUnavailable) as exc:
                self._set_available(False, exc)
            await asyncio.sleep(self.config.heartbeat_seconds)

    async def announce(self) -> None:
        """Write this node's record now (e.g. draining), not at the next heartbeat; quiet if Redis is away."""
        from redis.exceptions import RedisError

        try:
            await self._heartbeat()
        except (RedisError, OSError) as exc:
            self._set_available(False, exc)

    async def _heartbeat(self) -> None:
        if await self._redis.delete(f"{self.keys.namespace}:lost:{self.node}"):
            log.error("cluster %s: this node was declared lost (no heartbeat for %g s); its calls end",
                      self.config.name, self.config.node_ttl_seconds)  # fmt: skip
            self.claims.clear()
            self._on_declared_lost()
        record = {"advertise_url": self.config.advertise_url, "heartbeat": f"{time.time():.3f}", **self._load()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.alive(self.node), "1", px=int(self.config.node_ttl_seconds * 1000))
            pipe.hset(self.keys.node(self.node), mapping={k: str(v) for k, v in record.items()})
            pipe.sadd(self.keys.nodes, self.node)
            pipe.set(self.keys.epoch, secrets.token_hex(8), nx=True)
            pipe.get(self.keys.epoch)
            epoch = _text((await pipe.execute())[-1])
        if self._epoch is not None and epoch != self._epoch:
            log.warning("cluster %s: Redis restarted without its data; this node claims its calls again",
                        self.config.name)  # fmt: skip
            self._data_lost = True
        self._epoch = epoch

    async def _share_key(self, again: bool = False) -> None:
        """The key every node signs tickets with: made by the first node, read by the others; after
        an outage (``again``) the key this node knows is offered back, should Redis have lost it."""
        if self.on_shared_key is None or (self._shared_key is not None and not again):
            return
        await self._redis.set(self.keys.tickets_key, self._shared_key or secrets.token_hex(32), nx=True)
        value = await self._redis.get(self.keys.tickets_key)
        if value and _text(value) != self._shared_key:
            self._shared_key = _text(value)
            self.on_shared_key(hashlib.sha256(self._shared_key.encode()).digest())  # any text will do

    async def _reconcile(self) -> None:
        """After an outage: releases that failed, then this node's calls claimed again."""
        pending, self._unreleased = self._unreleased, []
        for claim in pending:
            await self._release(self.node, claim.call_id, claim.streams)
        for claim in list(self.claims.values()):
            conflict = await self.claim(claim)
            if conflict is not None and not (conflict.field == "callId" and conflict.holder == self.node):
                log.error("cluster %s: call %s could not be claimed again after the outage (%s held by %s)",
                          self.config.name, claim.call_id, conflict.field, conflict.holder)  # fmt: skip

    async def _reap_lost_nodes(self) -> None:
        for node in await self._members(self.keys.nodes):
            if node == self.node or await self._redis.exists(self.keys.alive(node)):
                continue
            lock_ms = int(self.config.node_ttl_seconds * 1000)
            if not await self._redis.set(self.keys.reap(node), self.node, nx=True, px=lock_ms):
                continue  # another survivor is on it
            lost = await self._release_node(node)
            self.reaped += len(lost)
            self.lost_nodes += 1
            log.warning("cluster %s: node %s lost (no heartbeat for %g s); %d call(s) ended FAILED \"node lost\"",
                        self.config.name, node, self.config.node_ttl_seconds, len(lost))  # fmt: skip
            self._on_node_lost(node, lost)

    async def _release_node(self, node: str) -> list[LostCall]:
        lost = []
        for call_id in await self._members(self.keys.calls_of(node)):
            record = await self._record(self.keys.call(call_id))
            if record.get("node") != node:
                continue
            streams = tuple(record.get("streams", "").split())
            await self._release(node, call_id, streams, keep_ended=False)
            lost.append(LostCall(call_id, node, record.get("app", ""), record.get("created", "")))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.calls_of(node), self.keys.node(node))
            pipe.srem(self.keys.nodes, node)
            pipe.set(f"{self.keys.namespace}:lost:{node}", "1", ex=LOST_MARK_SECONDS)
            await pipe.execute()
        return lost

    async def nodes(self) -> dict[str, dict[str, str]]:
        """Every live node's record with its ``calls`` counted from its calls set (one round trip):
        the set changes in the claim's own step, a count in the record would lag behind it."""
        members = await self._members(self.keys.nodes)
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in members:
                pipe.hgetall(self.keys.node(node))
                pipe.scard(self.keys.calls_of(node))
            answers = await pipe.execute()
        result = {}
        for node, fields, calls in zip(members, answers[::2], answers[1::2], strict=True):
            record = {_text(field): _text(value) for field, value in fields.items()}
            if record:
                result[node] = {**record, "calls": str(calls)}
        return result

    async def records(self) -> list[NodeRecord]:
        """The live nodes' records, for placement."""
        return [r for node, fields in (await self.nodes()).items() if (r := NodeRecord.parse(node, fields))]

    async def owner(self, call_id: str) -> NodeRecord | None:
        """The other node that holds ``call_id``, or where it ended in the last ENDED_POINTER_SECONDS."""
        node = await self._redis.hget(self.keys.call(call_id), "node") or await self._redis.get(
            self.keys.ended(call_id)
        )
        if node is None or _text(node) == self.node:
            return None
        return NodeRecord.parse(_text(node), await self._record(self.keys.node(_text(node))))

    async def _members(self, key: str) -> list[str]:
        return sorted(_text(member) for member in await self._redis.smembers(key))

    async def _record(self, key: str) -> dict[str, str]:
        return {_text(field): _text(value) for field, value in (await self._redis.hgetall(key)).items()}

    async def close(self) -> None:
        """Leave the cluster cleanly (graceful stop): no survivor needs to reap this node."""
        from redis.exceptions import RedisError

        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.keys.alive(self.node), self.keys.node(self.node), self.keys.calls_of(self.node))
                pipe.srem(self.keys.nodes, self.node)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("cluster %s: could not leave cleanly: %s", self.config.name, exc)
        await self._redis.aclose()
