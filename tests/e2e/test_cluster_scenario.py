"""Three bridges, one Redis, one PostgreSQL history, through an operator's day, timed step by step.

Capacities 20, 15 and 10: 30 calls POSTed to random nodes are placed by headroom (15, 10 and 5:
every node ends with the same room left, as redis-cli counts them); duplicates on other nodes are
409; hang-ups sent to nodes that do not own the call reach kamailio; node-c killed with SIGKILL has
its calls end FAILED "node lost" with one webhook each and their callIds reused; Redis restarted;
node-b drained to exit 0; then every node restarted, and psql reads a history with every call of
the day in it, each in the final state it really reached. nginx-rtmp's statistics show every stream
publishing, and a listen ticket one node issued opens the live audio on another (FFmpeg hears 440 Hz).
The table of timings is printed.
"""

from __future__ import annotations

import io
import random
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.support.audio import dominant_frequency
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.cluster import cluster_node
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.postgres import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
SECRET = "scenario-webhook-secret-0123456789"
CAPACITY = {"node-a": 20, "node-b": 15, "node-c": 10}
CALLS = 30
NAME = "day"


@pytest.fixture(scope="module")
def far_end(workdir: Path) -> Iterator[Baresip]:
    """A far end that takes every call of the day at once (replaces tests/e2e/conftest.py's)."""
    peer = Baresip(workdir / "many", max_calls=48)
    yield peer
    peer.stop()


@pytest.fixture(params=["requirepass", "tls"])
def redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """Redis as production runs it: with a password, and with a password over TLS (rediss://)."""
    server = RedisServer(tmp_path / "redis", password="scenario-redis-password-7", tls=request.param == "tls")
    yield server
    server.stop()


@pytest.fixture()
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SECRET)
    yield receiver
    receiver.stop()


class Day:
    """The three nodes and what the test did to them, with the time each step took."""

    def __init__(self, tmp_path: Path, redis: RedisServer, history: str, webhooks: WebhookReceiver) -> None:
        self.redis = redis
        self.timings: list[tuple[str, float]] = []
        self.expected: dict[str, str] = {}  # callId -> the final state its last row must have
        hooks = f'\n[webhooks]\ndefault_app = "hooks"\n\n[apps.hooks]\nurl = "{webhooks.url}"\nsecret = "{SECRET}"\n'
        self.nodes: dict[str, BridgeDaemon] = {}
        for node, capacity in CAPACITY.items():
            env = {"BRIDGE_LIMITS__MAX_CALLS": str(capacity)}
            self.nodes[node] = cluster_node(
                tmp_path, node, redis, NAME, extra=hooks, env=env, history_url=history, rtp_ports=4 * capacity + 8
            )

    def timed(self, what: str, since: float) -> None:
        self.timings.append((what, time.monotonic() - since))

    def owner(self, call_id: str) -> str:
        return self.redis.cli("HGET", f"{NAME}:call:{call_id}", "node")

    def not_owner(self, call_id: str, *also_not: str) -> BridgeDaemon:
        owner = self.owner(call_id)
        return next(d for n, d in sorted(self.nodes.items()) if n != owner and n not in also_not)

    def calls_on(self, node: str) -> int:
        return int(self.redis.cli("SCARD", f"{NAME}:calls:{node}").split()[-1])

    def listed(self, asker: BridgeDaemon) -> dict[str, dict[str, Any]]:
        status, page = asker.request("GET", "/api/v1/calls?limit=200")
        assert status == 200, page
        return {call["callId"]: call for call in page["calls"]}

    def stop(self) -> None:
        for daemon in self.nodes.values():
            daemon.stop()


def _post(asker: BridgeDaemon, call_id: str, stream: str, nginx: NginxRtmp, domain: Kamailio,
          account: SipAccount) -> tuple[int, Any]:  # fmt: skip
    return asker.request("POST", "/RESTCall/call", call_body(call_id, stream, nginx, domain, account))


def test_an_operators_day_on_three_nodes(
    tmp_path: Path, redis: RedisServer, postgres: PostgresServer, webhooks: WebhookReceiver, nginx: NginxRtmp,
    far_end: Baresip, sip_domain: Kamailio, account: SipAccount,
) -> None:  # fmt: skip
    database = f"{NAME}_{'tls' if redis.tls else 'auth'}"
    history = postgres.create_database(database)
    day = Day(tmp_path, redis, history, webhooks)
    try:
        _thirty_calls(day, nginx, sip_domain, account)
        _listen_on_another_node(day)
        _duplicates_and_hang_ups(day, nginx, sip_domain, account)
        _node_c_killed(day, webhooks, nginx, sip_domain, account)
        _redis_restarted(day, nginx, sip_domain, account)
        _node_b_drained(day, nginx, sip_domain, account)
        _everyone_restarted(day, postgres, database)
    finally:
        day.stop()
    print("\n| step | seconds |\n| --- | --- |")
    for what, seconds in day.timings:
        print(f"| {what} | {seconds:.1f} |")


def _thirty_calls(day: Day, nginx: NginxRtmp, domain: Kamailio, account: SipAccount) -> None:
    pick, names = random.Random(30), sorted(day.nodes)
    started = time.monotonic()
    for index in range(CALLS):
        status, reply = _post(day.nodes[pick.choice(names)], f"s-{index}", f"s{index}", nginx, domain, account)
        assert status == 200, reply
        day.expected[f"s-{index}"] = "ESTABLISHED"
    day.timed(f"{CALLS} calls POSTed to random nodes (each answered)", started)

    def all_up() -> bool:
        calls = day.listed(day.nodes[pick.choice(names)])
        return sum(call["state"] == "ESTABLISHED" for call in calls.values()) == CALLS

    wait_until(all_up, 60, "every call ESTABLISHED, as any node lists them")
    day.timed(f"{CALLS} calls ESTABLISHED (listed by any node)", started)
    counts = {node: day.calls_on(node) for node in names}
    print(f"\n{CALLS} calls on capacities {CAPACITY}: placed {counts}")
    assert counts == {"node-a": 15, "node-b": 10, "node-c": 5}  # 5 left on each: placed by headroom
    wait_until(lambda: all(nginx.bytes_in(f"s{i}") > 0 for i in range(CALLS)), 15, "every stream at nginx-rtmp")
    day.timed(f"{CALLS} streams publishing (nginx-rtmp statistics)", started)


def _listen_on_another_node(day: Day) -> None:
    """A ticket from one node that does not own the call opens the listen URL on the other one."""
    owner = day.owner("s-10")
    issuer, player = (d for n, d in sorted(day.nodes.items()) if n != owner)
    status, ticket = issuer.request("GET", "/api/v1/calls/s-10/tickets?purpose=listen")
    assert status == 200, ticket
    started = time.monotonic()
    with urllib.request.urlopen(player.base_url + ticket["url"], timeout=10) as reply:
        assert reply.headers["Content-Type"] == "audio/aac"
        data = b""
        while time.monotonic() - started < 2.5:
            data += reply.read1(4096)
    with av.open(io.BytesIO(data), format="aac") as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(stream)])
    assert abs(dominant_frequency(samples[-stream.rate :], stream.rate) - 440) <= 5
    day.timed(f"listen ticket of {issuer.dir.parent.name} played on {player.dir.parent.name}: 440 Hz", started)


def _duplicates_and_hang_ups(day: Day, nginx: NginxRtmp, domain: Kamailio, account: SipAccount) -> None:
    status, reply = _post(day.not_owner("s-0"), "s-0", "another", nginx, domain, account)
    assert status == 409 and reply["error"]["field"] == "callId", reply
    status, reply = _post(day.not_owner("s-1"), "s-new", "s1", nginx, domain, account)
    assert status == 409 and reply["error"]["field"] == "rtmpStream", reply
    started = time.monotonic()
    hung_up = [f"s-{index}" for index in range(5)]
    sip_ids = {}
    for call_id in hung_up:
        other = day.not_owner(call_id)
        sip_ids[call_id] = other.call(call_id)["sipCallId"]  # type: ignore[index]
        assert other.request("DELETE", f"/api/v1/calls/{call_id}")[0] == 202
        day.expected[call_id] = "FINISH"
    for call_id in hung_up:
        pattern = f"IN-DIALOG BYE callid={re.escape(sip_ids[call_id])}"
        wait_until(lambda p=pattern: re.search(p, domain.log()) is not None, 10, f"BYE of {call_id} at kamailio")
    day.timed("5 hang-ups sent to other nodes: every BYE at kamailio", started)


def _node_c_killed(day: Day, webhooks: WebhookReceiver, nginx: NginxRtmp, domain: Kamailio,
                   account: SipAccount) -> None:  # fmt: skip
    victims = day.redis.members(f"{NAME}:calls:node-c")
    assert victims, "node-c holds calls"
    day.nodes["node-c"].kill()
    killed = time.monotonic()

    def lost(call_id: str) -> list[dict[str, Any]]:
        return [e for e in webhooks.events if e["callId"] == call_id and e.get("reason") == "node lost"]

    wait_until(lambda: all(lost(call_id) for call_id in victims), 3 + 5, "node lost for every call of node-c")
    day.timed(f"node-c killed: its {len(victims)} calls FAILED 'node lost' (TTL 3 s)", killed)
    time.sleep(1.5)  # every survivor has looked again since: still one webhook each
    assert all(len(lost(call_id)) == 1 for call_id in victims), webhooks.events
    for call_id in victims:
        day.expected[call_id] = "FAILED"
    reused = victims[:2]
    for call_id in reused:
        status, reply = _post(day.nodes["node-a"], call_id, call_id.replace("-", ""), nginx, domain, account)
        assert status == 200, reply
        day.expected[call_id] = "ESTABLISHED"
    for call_id in reused:
        wait_until(lambda c=call_id: (day.listed(day.nodes["node-b"]).get(c) or {}).get("state") == "ESTABLISHED",
                   20, f"{call_id} up again")  # fmt: skip
        assert day.owner(call_id) in ("node-a", "node-b")


def _redis_restarted(day: Day, nginx: NginxRtmp, domain: Kamailio, account: SipAccount) -> None:
    day.redis.stop()
    stopped = time.monotonic()
    status, reply = _post(day.nodes["node-a"], "r-1", "r1", nginx, domain, account)
    assert status == 503 and reply["error"]["code"] == "registry_unavailable", reply
    time.sleep(1.0)
    day.redis.start()
    wait_until(lambda: _post(day.nodes["node-b"], "r-1", "r1", nginx, domain, account)[0] == 200, 15, "r-1 taken")
    day.expected["r-1"] = "ESTABLISHED"
    day.timed("Redis stopped 1 s, then restarted: a new call accepted again", stopped)
    up = [c for c, state in day.expected.items() if state == "ESTABLISHED"]
    wait_until(lambda: len(day.redis.keys(f"{NAME}:call:*")) == len(up), 5, "every call claimed again")
    day.timed(f"Redis restarted empty: all {len(up)} calls in the registry again", stopped)
    states = {call_id: call["state"] for call_id, call in day.listed(day.nodes["node-a"]).items()}
    assert all(states[c] == "ESTABLISHED" for c, state in day.expected.items() if state == "ESTABLISHED" and c != "r-1")


def _node_b_drained(day: Day, nginx: NginxRtmp, domain: Kamailio, account: SipAccount) -> None:
    b = day.nodes["node-b"]
    assert b.request("POST", "/api/v1/node/drain", {"timeoutSeconds": 120})[0] == 202
    started = time.monotonic()
    for call_id in ("d-1", "d-2"):
        status, reply = _post(b, call_id, call_id.replace("-", ""), nginx, domain, account)
        assert status == 200 and day.owner(call_id) == "node-a", reply  # not on the draining node
        day.expected[call_id] = "ESTABLISHED"
    mine = b.active_ids()  # its calls, as it says itself
    assert mine and all(day.expected[c] == "ESTABLISHED" and day.owner(c) == "node-b" for c in mine), mine
    for call_id in mine:
        assert day.nodes["node-a"].request("DELETE", f"/api/v1/calls/{call_id}")[0] == 202
        day.expected[call_id] = "FINISH"
    assert b.process.proc.wait(30) == 0
    day.timed(f"node-b drained: its {len(mine)} calls hung up through node-a, it exited 0", started)


def _everyone_restarted(day: Day, postgres: PostgresServer, database: str) -> None:
    a = day.nodes["node-a"]
    up = [c for c, state in day.expected.items() if state == "ESTABLISHED"]
    assert all(day.owner(c) == "node-a" for c in up), {c: day.owner(c) for c in up}
    started = time.monotonic()
    a.process.signal(signal.SIGTERM)  # a clean stop hangs its calls up, and ends by itself
    assert a.process.proc.wait(15) == 0
    for call_id in up:
        day.expected[call_id] = "FINISH"
    for daemon in day.nodes.values():
        daemon.start()
    day.timed("every node started again", started)
    rows = postgres.psql("SELECT call_id, state, reason, node FROM calls ORDER BY id", database)
    last = {call_id: (state, reason, node) for call_id, state, reason, node in rows}
    assert sorted(last) == sorted(day.expected), sorted(set(last) ^ set(day.expected))
    wrong = {c: last[c] for c, state in day.expected.items() if last[c][0] != state}
    assert not wrong, wrong
    assert all(last[c][1] == "node lost" and last[c][2] == "node-c" for c, s in day.expected.items() if s == "FAILED")
    assert len(rows) == len(day.expected) + 2  # the two reused callIds have a row for each of their calls
    status, page = day.nodes["node-c"].request("GET", "/api/v1/history?limit=200")
    assert status == 200 and page["total"] == len(rows)  # the history API reads the same rows on any node
    print(f"\nhistory after the restarts: {len(rows)} rows, {len(last)} callIds, none left active")
