"""One API over three bridges sharing a Redis: placement by headroom, any node answering for any call.

Capacities 1, 2 and 3 (limits.max_calls): six calls POSTed to random nodes fill them exactly, as
redis-cli counts them; a seventh gets 503. GET, DTMF and DELETE sent to nodes that do not own the
call take effect where the call is: the far end receives the digits, kamailio sees the BYE. An SSE
client of one node sees another node's call: its states, its counters, its node.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rest.cluster_forward import FORWARDED
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body, direct_call_body
from tests.support.cluster import cluster_node
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.redis_server import RedisServer
from tests.support.silent_uas import DtmfSinkUas
from tests.support.sse import SseCollector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
CAPACITY = {"node-a": 1, "node-b": 2, "node-c": 3}


@pytest.fixture()
def cluster(tmp_path: Path, redis: RedisServer) -> Iterator[dict[str, BridgeDaemon]]:
    nodes: dict[str, BridgeDaemon] = {}
    try:
        for node, capacity in CAPACITY.items():
            env = {"BRIDGE_LIMITS__MAX_CALLS": str(capacity)}
            nodes[node] = cluster_node(tmp_path, node, redis, "api", env=env)
        wait_until(lambda: redis.cli("SCARD", "api:nodes") == "(integer) 3", 5, "three nodes registered")
        yield nodes
    finally:
        for daemon in nodes.values():
            daemon.stop()


def _calls_on(redis: RedisServer, node: str) -> int:
    return int(redis.cli("SCARD", f"api:calls:{node}").split()[-1])


def test_calls_are_placed_by_headroom_and_a_full_cluster_says_503(
    cluster: dict[str, BridgeDaemon], redis: RedisServer, nginx: NginxRtmp, far_end: Baresip,
    sip_domain: Kamailio, account: SipAccount,
) -> None:  # fmt: skip
    pick = random.Random(19)
    names = sorted(cluster)
    for index in range(6):
        entry = cluster[pick.choice(names)]
        status, reply = entry.request(
            "POST", "/RESTCall/call", call_body(f"p-{index}", f"p{index}", nginx, sip_domain, account)
        )
        assert status == 200, reply
    for index in range(6):
        asker = cluster[pick.choice(names)]  # any node answers for any call
        wait_until(lambda i=index, a=asker: (a.call(f"p-{i}") or {}).get("state") == "ESTABLISHED", 20, f"p-{index}")
    counts = {node: _calls_on(redis, node) for node in names}
    print(f"\nsix calls posted to random nodes of capacities {CAPACITY}: placed {counts}")
    assert counts == CAPACITY
    status, listed = cluster["node-a"].request("GET", "/api/v1/calls?limit=10")
    assert status == 200 and listed["total"] == 6 and "unreachableNodes" not in listed
    owners = {call["callId"]: call["node"] for call in listed["calls"]}
    assert owners == {f"p-{i}": redis.cli("HGET", f"api:call:p-{i}", "node") for i in range(6)}
    status, reply = cluster["node-b"].request(
        "POST", "/RESTCall/call", call_body("p-6", "p6", nginx, sip_domain, account)
    )
    assert status == 503 and "no node of the cluster has room" in reply["error"]["message"], reply
    assert cluster["node-b"].last_headers.get("Retry-After") == "5"
    owner = next(node for node in names if redis.cli("HGET", "api:call:p-0", "node") == node)
    other = cluster[next(node for node in names if node != owner)]
    sip_call_id = other.call("p-0")["sipCallId"]  # type: ignore[index]
    status, _ = other.request("DELETE", "/api/v1/calls/p-0")
    assert status == 202
    pattern = f"IN-DIALOG BYE callid={re.escape(sip_call_id)}"
    wait_until(lambda: re.search(pattern, sip_domain.log()) is not None, 5, "kamailio saw the BYE")
    wait_until(lambda: (other.call("p-0") or {}).get("state") == "FINISH", 10, "p-0 ended, read from another node")


def test_dtmf_sent_to_another_node_reaches_the_far_end(
    cluster: dict[str, BridgeDaemon], redis: RedisServer, nginx: NginxRtmp
) -> None:
    sink = DtmfSinkUas()
    try:
        body = direct_call_body("d-1", "d1", nginx.url, sink.port, callee="sink", hasAudio="true")
        assert cluster["node-a"].request("POST", "/RESTCall/call", body)[0] == 200
        owner = redis.cli("HGET", "api:call:d-1", "node")
        wait_until(lambda: (cluster[owner].call("d-1") or {}).get("state") == "ESTABLISHED", 20, "d-1 up")
        other = cluster[next(node for node in sorted(cluster) if node != owner)]
        feed = subprocess.Popen(  # what crosses Redis, read by redis-cli (log.mask_dtmf is on by default)
            ["redis-cli", "-p", str(redis.port), "--raw", "SUBSCRIBE", "api:feed"], stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.3)
        status, reply = other.request("POST", "/api/v1/calls/d-1/dtmf", {"digits": "47#"})
        assert status == 202, reply
        wait_until(lambda: sink.digits == ["4", "7", "#"], 5, "digits at the far end")
        time.sleep(0.5)
    finally:
        sink.stop()
    feed.terminate()
    crossed = feed.communicate(timeout=5)[0]
    assert '"event":"dtmf-sent"' in crossed and "47#" not in crossed, crossed[-2000:]


def test_an_sse_client_of_one_node_sees_the_calls_of_the_others(
    cluster: dict[str, BridgeDaemon], redis: RedisServer, nginx: NginxRtmp, far_end: Baresip,
    sip_domain: Kamailio, account: SipAccount,
) -> None:  # fmt: skip
    events = SseCollector(cluster["node-a"], "/api/v1/events?stats=1")
    try:
        body = call_body("e-1", "e1", nginx, sip_domain, account)
        assert cluster["node-c"].request("POST", "/RESTCall/call", body, headers={FORWARDED: "test"})[0] == 200
        wait_until(lambda: any(e.data["state"] == "ESTABLISHED" for e in events.of("call.state", "e-1")), 20, "up")
        wait_until(lambda: any(s["counters"]["packets"] > 0 for s in events.stats_of("e-1")), 10, "counters")
        assert {s["node"] for s in events.stats_of("e-1")} == {"node-c"}
        status, nodes = cluster["node-b"].request("GET", "/api/v1/nodes")
        assert status == 200 and nodes["cluster"] == "api" and nodes["registryUp"] is True
        by_node = {entry["node"]: entry for entry in nodes["nodes"]}
        assert sorted(by_node) == ["node-a", "node-b", "node-c"] and by_node["node-c"]["calls"] == 1
        assert by_node["node-c"]["headroom"] == 2 and by_node["node-a"]["url"] == cluster["node-a"].base_url
        assert cluster["node-b"].request("DELETE", "/api/v1/calls/e-1")[0] == 202
        wait_until(lambda: any(e.data["state"] == "FINISH" for e in events.of("call.state", "e-1")), 10, "ended")
    finally:
        events.stop()
    states = events.of("call.state", "e-1")
    assert all(e.data["node"] == "node-c" and e.id.startswith("node-c.") for e in states), states
    wait_until(lambda: not redis.keys("api:call:e-1"), 5, "e-1 released")
