"""Redis key names and the scripts that change several keys in one atomic step (no I/O here).

Every key starts with ``<cluster.name>:`` so clusters sharing one Redis never see each other's
calls (peers' users lost jobs to a neighbouring environment whose topics were global). A stream
is stored as the SHA-256 of its destination key: the stream name is the CDN's secret.

- ``<ns>:call:<callId>``   hash: node, streams (space-separated digests), app, created
- ``<ns>:stream:<digest>`` string: the callId publishing it
- ``<ns>:calls:<node>``    set: the node's callIds
- ``<ns>:node:<node>``     hash: the node's record (advertise URL, capacity, draining, watchers)
- ``<ns>:alive:<node>``    string with a TTL: the heartbeat
- ``<ns>:nodes``           set: every node that has joined
- ``<ns>:reap:<node>``     string with a TTL: the survivor ending a lost node's calls
- ``<ns>:ended:<callId>``  string with a TTL: the node where the call ended (it answers for it)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str

    def call(self, call_id: str) -> str:
        return f"{self.namespace}:call:{call_id}"

    def stream(self, digest: str) -> str:
        return f"{self.namespace}:stream:{digest}"

    def calls_of(self, node: str) -> str:
        return f"{self.namespace}:calls:{node}"

    def node(self, node: str) -> str:
        return f"{self.namespace}:node:{node}"

    def alive(self, node: str) -> str:
        return f"{self.namespace}:alive:{node}"

    @property
    def nodes(self) -> str:
        return f"{self.namespace}:nodes"

    @property
    def epoch(self) -> str:
        """A random value the first node sets: a new one means Redis lost its data (restarted empty)."""
        return f"{self.namespace}:epoch"

    @property
    def tickets_key(self) -> str:
        return f"{self.namespace}:tickets-key"

    def ended(self, call_id: str) -> str:
        return f"{self.namespace}:ended:{call_id}"

    def reap(self, node: str) -> str:
        return f"{self.namespace}:reap:{node}"


def stream_digest(dedupe_key: str) -> str:
    """What Redis holds for a stream: never its name (for YouTube, Twitch or Facebook, the key)."""
    return hashlib.sha256(dedupe_key.encode()).hexdigest()


# KEYS: call, calls_of(node), node(node), stream... ; ARGV: node, callId, streams (space-separated), app, created
# Returns nil when claimed, else {"callId", holder node} or {"stream", holder callId}. The node's
# calls set is what placement counts (SCARD): it changes in the same step as the claim, so the
# next placement sees the call at once. (A count in the node's record, raised here and written by
# the heartbeat, once lost a claim made between the heartbeat's reading and its writing.)
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'callId', redis.call('HGET', KEYS[1], 'node') or ''}
end
for i = 4, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder then return {'stream', holder} end
end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'streams', ARGV[3], 'app', ARGV[4], 'created', ARGV[5])
for i = 4, #KEYS do redis.call('SET', KEYS[i], ARGV[2]) end
redis.call('SADD', KEYS[2], ARGV[2])
return nil
"""

# KEYS: call, calls_of(node), node(node), ended(callId), stream... ; ARGV: node, callId, seconds to keep
# an "ended here" pointer (0: none, as for a lost node's calls). Releases only what this node's call
# still holds: once the callId was released and claimed again (here or on another node), a late
# release from the old owner touches nothing of it.
RELEASE = """
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
for i = 5, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[3]) end
return 1
"""
