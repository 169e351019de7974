"""Bridges sharing one Redis (``[cluster]``), against Debian's redis-server; redis-cli reads the keys.

- a callId or a stream in use on one node is a 409 on another, and free again when the call ends;
- a node killed with SIGKILL: within cluster.node_ttl_seconds + 5 s a survivor ends its calls
  FAILED "node lost", one webhook each (three nodes race for it), and the callIds can be reused;
- Redis restarted mid-call: the call goes on publishing without a gap, new calls get 503 with the
  reason meanwhile and succeed once it is back, and the registry holds the call again, also after
  a FLUSHALL that no command noticed;
- a Twilio Media Stream whose CallSid is live on another node is refused with close code 1008.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rest.cluster_forward import FORWARDED
from tests.support.audio import dominant_frequency, pull_audio
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.cluster import cluster_node
from tests.support.daemon import BridgeDaemon
from tests.support.ingest_senders import Script, Sender
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e
SECRET = "cluster-webhook-secret-0123456789"
TTL = 3.0  # cluster.node_ttl_seconds of tests.support.cluster


@pytest.fixture()
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SECRET)
    yield receiver
    receiver.stop()


def _node(tmp_path: Path, node: str, redis: RedisServer, webhooks: WebhookReceiver, name: str) -> BridgeDaemon:
    hooks = f'\n[webhooks]\ndefault_app = "hooks"\n\n[apps.hooks]\nurl = "{webhooks.url}"\nsecret = "{SECRET}"\n'
    return cluster_node(tmp_path, node, redis, name, extra=hooks)


def _metric(node: BridgeDaemon, name: str) -> float:
    """One sample of the node's /metrics, read with prometheus_client's own parser."""
    for family in text_string_to_metric_families(node.raw("GET", "/metrics")):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    raise AssertionError(f"{name} not in /metrics")


def _post(node: BridgeDaemon, call_id: str, stream: str, nginx: NginxRtmp, domain: Kamailio,
          account: SipAccount) -> tuple[int, Any]:  # fmt: skip
    """A new call started on ``node`` itself, as a node does with a request another node placed
    there: two nodes doing so at once for one callId or stream is what the registry must refuse."""
    body = call_body(call_id, stream, nginx, domain, account)
    return node.request("POST", "/RESTCall/call", body, headers={FORWARDED: "test"})


def test_callids_and_streams_are_unique_across_nodes_and_free_again_after_the_call(
    tmp_path: Path, redis: RedisServer, webhooks: WebhookReceiver, nginx: NginxRtmp, far_end: Baresip,
    sip_domain: Kamailio, account: SipAccount,
) -> None:  # fmt: skip
    a, b = (_node(tmp_path, node, redis, webhooks, "unique") for node in ("node-a", "node-b"))
    try:
        assert _post(a, "u-1", "ustream", nginx, sip_domain, account)[0] == 200
        a.wait_state("u-1", {"ESTABLISHED"})
        status, reply = _post(b, "u-1", "another", nginx, sip_domain, account)
        assert status == 409 and reply["error"]["field"] == "callId" and "node-a" in reply["error"]["message"], reply
        status, reply = _post(b, "u-2", "ustream", nginx, sip_domain, account)
        assert status == 409 and reply["error"]["field"] == "rtmpStream" and "u-1" in reply["error"]["message"], reply
        assert redis.cli("HGET", "unique:call:u-1", "node") == "node-a"
        streams = redis.keys("unique:stream:*")
        assert len(streams) == 1 and redis.cli("GET", streams[0]) == "u-1" and "ustream" not in streams[0]
        a.request("POST", "/RESTCall/terminate", {"callId": "u-1"})
        a.wait_gone("u-1")
        wait_until(lambda: not redis.keys("unique:call:*") and not redis.keys("unique:stream:*"), 5, "keys released")
        assert _post(b, "u-1", "ustream", nginx, sip_domain, account)[0] == 200
        b.wait_state("u-1", {"ESTABLISHED"})
    finally:
        for node in (a, b):
            node.stop()
    cluster_wide = ("unique:epoch", "unique:tickets-key")  # the cluster's, not a node's
    left = lambda: [key for key in redis.keys("unique:*") if ":ended:" not in key and key not in cluster_wide]  # noqa: E731
    wait_until(lambda: not left(), 5, "both nodes left the cluster cleanly")
    assert redis.cli("GET", "unique:ended:u-1") == "node-b"  # where u-1 ended: it answers for it a while


def test_a_killed_nodes_calls_end_node_lost_once_and_their_callids_are_reused(
    tmp_path: Path, redis: RedisServer, webhooks: WebhookReceiver, nginx: NginxRtmp, far_end: Baresip,
    sip_domain: Kamailio, account: SipAccount,
) -> None:  # fmt: skip
    a, b, c = (_node(tmp_path, node, redis, webhooks, "lost") for node in ("node-a", "node-b", "node-c"))
    try:
        for call_id in ("k-1", "k-2"):
            assert _post(a, call_id, call_id.replace("-", ""), nginx, sip_domain, account)[0] == 200
            a.wait_state(call_id, {"ESTABLISHED"})
        a.kill()
        killed = time.monotonic()

        def lost(call_id: str) -> list[dict[str, object]]:
            return [e for e in webhooks.events if e["callId"] == call_id and e.get("reason") == "node lost"]

        wait_until(lambda: lost("k-1") and lost("k-2"), TTL + 5, "node lost webhooks")
        after = time.monotonic() - killed
        time.sleep(2 * 0.5 + 1)  # every survivor has looked again since
        print(f"\nnode killed: its calls ended 'node lost' {after:.1f} s later (TTL {TTL:g} s)")
        assert len(lost("k-1")) == 1 and len(lost("k-2")) == 1, webhooks.events
        assert lost("k-1")[0]["state"] == "FAILED" and lost("k-1")[0]["node"] == "node-a"
        assert not redis.keys("lost:call:*") and not redis.keys("lost:stream:*")
        assert not [key for key in redis.keys("lost:*node-a") if key.split(":")[1] in ("node", "alive", "calls")]
        assert redis.cli("SISMEMBER", "lost:nodes", "node-a") == "(integer) 0"
        assert redis.cli("GET", "lost:lost:node-a") == "1"  # the tombstone a stalled node-a would find
        survivors = (b, c)
        assert sum(_metric(node, "bridge_cluster_lost_nodes_total") for node in survivors) == 1
        assert sum(_metric(node, "bridge_cluster_lost_calls_total") for node in survivors) == 2
        wait_until(lambda: _metric(b, "bridge_cluster_nodes") == 2, 3, "two nodes left in the metrics")
        assert _post(b, "k-1", "k1", nginx, sip_domain, account)[0] == 200  # the callId and stream are free
        b.wait_state("k-1", {"ESTABLISHED"})
    finally:
        for node in (a, b, c):
            node.stop()


def test_redis_restarted_mid_call_the_call_goes_on_and_new_calls_wait_for_it(
    tmp_path: Path, redis: RedisServer, webhooks: WebhookReceiver, nginx: NginxRtmp, far_end: Baresip,
    sip_domain: Kamailio, account: SipAccount,
) -> None:  # fmt: skip
    a = _node(tmp_path, "node-a", redis, webhooks, "outage")
    try:
        assert _post(a, "r-1", "rstream", nginx, sip_domain, account)[0] == 200
        a.wait_state("r-1", {"ESTABLISHED"})
        wait_until(lambda: nginx.stream_stat("rstream") is not None, 10, "published")
        pulled: list[object] = []
        puller = threading.Thread(target=lambda: pulled.append(pull_audio(f"{nginx.url}/rstream", 8.0)))
        puller.start()
        time.sleep(1.5)
        redis.stop()
        stopped = time.monotonic()
        status, reply = _post(a, "r-2", "rstream2", nginx, sip_domain, account)
        assert status == 503 and reply["error"]["code"] == "registry_unavailable", reply
        assert "Redis" in reply["error"]["message"] and "retry later" in reply["error"]["message"]
        wait_until(lambda: _metric(a, "bridge_cluster_registry_up") == 0, 3, "registry down in the metrics")
        time.sleep(1.0)
        redis.start()
        wait_until(lambda: _post(a, "r-2", "rstream2", nginx, sip_domain, account)[0] == 200, 10, "new call accepted")
        print(f"\nRedis down {time.monotonic() - stopped:.1f} s; a new call was accepted once it returned")
        puller.join(20)
        audio = pulled[0]
        assert audio.max_timestamp_gap_ms <= 30, audio.max_timestamp_gap_ms  # type: ignore[attr-defined]
        assert abs(dominant_frequency(audio.segment(4.0, 7.0), audio.sample_rate) - 440) < 5  # type: ignore[attr-defined]
        assert a.call("r-1")["state"] == "ESTABLISHED"  # type: ignore[index]
        wait_until(lambda: redis.cli("HGET", "outage:call:r-1", "node") == "node-a", 5, "r-1 claimed again")
        assert _metric(a, "bridge_cluster_registry_up") == 1
        redis.cli("FLUSHALL")  # Redis loses its data without a failed command (a restart between two heartbeats)
        wait_until(lambda: redis.cli("HGET", "outage:call:r-1", "node") == "node-a", 3, "r-1 claimed after FLUSHALL")
        assert "r-1" in [redis.cli("GET", key) for key in redis.keys("outage:stream:*")]  # its stream held again too
    finally:
        a.stop()


def test_an_ingest_call_live_on_one_node_is_refused_on_another(
    tmp_path: Path, redis: RedisServer, webhooks: WebhookReceiver, nginx: NginxRtmp
) -> None:
    token = "cluster-twilio-auth-token-0a1b2c3d4e"
    route = f'\n[ingest.routes.desk]\nprotocol = "twilio"\nsecret = "{token}"\nrtmp_url = "{nginx.url}"\n'
    route += 'stream = "desk-{callId}"\n'
    a, b = (cluster_node(tmp_path, node, redis, "ingest", extra=route) for node in ("node-a", "node-b"))
    call_sid = "CA" + "c1u57e" * 5 + "01"
    try:
        first = Sender("twilio", f"ws://127.0.0.1:{a.rest_port}/ingest/desk", token, Script(seconds=8), call_sid)
        first.start()
        wait_until(lambda: redis.cli("HGET", f"ingest:call:{call_sid}", "node") == "node-a", 10, "claimed on node-a")
        second = Sender("twilio", f"ws://127.0.0.1:{b.rest_port}/ingest/desk", token, Script(seconds=3), call_sid)
        refused = second.start().join(15)
        assert refused.close_code == 1008 and "node-a" in refused.close_reason, refused
        assert first.join(20).close_code == 1000  # the first stream ran to its end undisturbed
        wait_until(lambda: not redis.keys(f"ingest:call:{call_sid}"), 5, "released after the stream")
    finally:
        for node in (a, b):
            node.stop()
