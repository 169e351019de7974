"""Redis is not trusted blindly (security review 2026-12-07, finding 8).

Whoever can write to Redis can point a node record's advertise_url anywhere; a node then relays
callers' requests there, their token with them. A forged record points at a listener on 127.0.0.2:
a node with cluster.peer_networks = ["127.0.0.1/32"] answers 502 and the listener receives nothing,
while a node left at the default (loopback and private ranges) does relay there — the listener sees
the request and its Authorization header, which is what the setting is for. Both nodes talk to a
Redis that needs a password over TLS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rest.auth import hash_token
from tests.support.cluster import cluster_node
from tests.support.http_sink import HttpSink
from tests.support.redis_server import RedisServer
from tests.support.secrets import register_secret

pytestmark = pytest.mark.e2e
TOKEN = "cluster-trust-token-0123456789"
register_secret(TOKEN)


@pytest.fixture(scope="module")
def sink() -> Iterator[HttpSink]:
    server = HttpSink("127.0.0.2")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def secured_redis(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir / "redis-tls", password="trust-redis-password-42", tls=True)
    yield server
    server.stop()


def test_relays_go_only_into_peer_networks(tmp_path: Path, secured_redis: RedisServer, sink: HttpSink) -> None:
    env = {"BRIDGE_AUTH__TOKENS": json.dumps([{"sha256": hash_token(TOKEN), "scope": "full"}])}
    strict = cluster_node(tmp_path, "strict", secured_redis, "trust", env=env, token=TOKEN,
                          extra='peer_networks = ["127.0.0.1/32"]\n')  # fmt: skip
    default = cluster_node(tmp_path, "default", secured_redis, "trust", env=env, token=TOKEN)
    try:
        assert secured_redis.cli("HGET", "trust:node:strict", "advertise_url") == strict.base_url  # over TLS + AUTH
        secured_redis.cli("HSET", "trust:node:forged", "advertise_url", sink.url, "capacity", "10", "heartbeat", "0")
        secured_redis.cli("HSET", "trust:call:stolen", "node", "forged")
        status, answer = strict.request("GET", "/api/v1/calls/stolen")
        assert status == 502 and answer["error"]["code"] == "node_unreachable"
        assert sink.requests == [], "a request was relayed outside cluster.peer_networks"
        assert "outside" in strict.log() or "not in cluster.peer_networks" in strict.log()
        default.request("GET", "/api/v1/calls/stolen")  # the control: the same record, the default networks
        assert [headers.get("Authorization") for headers in sink.requests] == [f"Bearer {TOKEN}"]
    finally:
        strict.stop()
        default.stop()
