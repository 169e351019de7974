"""Drain: a node leaves for an upgrade without cutting a call.

Two nodes on one Redis. ``sip-rtmp-bridge drain`` on node-a: its record says draining at once, new
calls POSTed to it are placed on node-b, its own call keeps publishing to the end, and when that
call is hung up (through node-b) node-a exits 0 by itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rest.cluster_forward import FORWARDED
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.cluster import cluster_node
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_a_drained_node_takes_no_new_calls_keeps_its_own_and_exits_0_when_they_end(
    tmp_path: Path, redis: RedisServer, nginx: NginxRtmp, far_end: Baresip, sip_domain: Kamailio,
    account: SipAccount,
) -> None:  # fmt: skip
    a = cluster_node(tmp_path, "node-a", redis, "drain")  # 10 calls: it would be chosen, were it not draining
    b = cluster_node(tmp_path, "node-b", redis, "drain", env={"BRIDGE_LIMITS__MAX_CALLS": "2"})
    try:
        body = call_body("dr-1", "dr1", nginx, sip_domain, account)
        assert a.request("POST", "/RESTCall/call", body, headers={FORWARDED: "test"})[0] == 200
        a.wait_state("dr-1", {"ESTABLISHED"})
        wait_until(lambda: nginx.bytes_in("dr1") > 0, 10, "dr-1 publishing")
        drain = [sys.executable, "-m", "bridge", "drain", "--url", a.base_url, "--timeout", "120"]
        result = subprocess.run(drain, capture_output=True, text=True, timeout=30, env=dict(os.environ), check=False)
        print(f"\n{result.stdout.strip()}")
        assert result.returncode == 0 and "node-a: draining, 1 call(s) left" in result.stdout, result
        assert redis.cli("HGET", "drain:node:node-a", "draining") == "1"
        status, reply = a.request("POST", "/RESTCall/call", call_body("dr-2", "dr2", nginx, sip_domain, account))
        assert status == 200, reply
        assert redis.cli("HGET", "drain:call:dr-2", "node") == "node-b"  # placed on the other node
        before = nginx.bytes_in("dr1")
        time.sleep(3)
        assert nginx.bytes_in("dr1") > before and a.call("dr-1")["state"] == "ESTABLISHED"  # type: ignore[index]
        assert b.request("DELETE", "/api/v1/calls/dr-1")[0] == 202  # forwarded to node-a
        hung_up = time.monotonic()
        exit_code = a.process.proc.wait(20)
        print(f"node-a exited {exit_code} {time.monotonic() - hung_up:.1f} s after its last call was hung up")
        assert exit_code == 0
        assert "drained: no calls left; stopping" in a.log()
        assert b.call("dr-2")["state"] == "ESTABLISHED"  # type: ignore[index]
    finally:
        for node in (a, b):
            node.stop()
