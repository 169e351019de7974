"""What a cluster costs its Redis: commands and bytes, idle, per call placed, per call up, per call ended.

N nodes (real daemons, ``[cluster]`` on one redis-server) first idle for ``--seconds``, then
``--calls`` calls POSTed to random nodes (placed by headroom; SIP to the bench's load generator,
RTMP to nginx-rtmp), up for ``--seconds`` with nobody watching, then as long again with one console
(an SSE client with ``stats=1`` on the first node: the other nodes then publish their counters),
then hung up. Redis's own counters (``INFO stats``,
``INFO commandstats``) are read between the phases: nothing here counts for itself.

    python -m bench.cluster_redis --nodes 3 --calls 60 --seconds 20
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.capacity import Generator, _wait_published
from bench.report import fmt, table
from bench.rtmp_server import BenchRtmpServer
from tests.support.call_bodies import direct_call_body
from tests.support.cluster import cluster_node
from tests.support.daemon import BridgeDaemon
from tests.support.redis_server import RedisServer
from tests.support.sse import SseCollector


def _info(redis: RedisServer) -> dict[str, int]:
    """Total commands, bytes in and out, and calls per command, as Redis counts them."""
    counters: dict[str, int] = {}
    for section in ("stats", "commandstats"):
        for line in redis.cli("INFO", section).splitlines():
            name, _, value = line.strip().partition(":")
            if name in ("total_commands_processed", "total_net_input_bytes", "total_net_output_bytes"):
                counters[name] = int(value)
            elif name.startswith("cmdstat_"):
                fields = dict(part.split("=", 1) for part in value.split(","))
                counters[name.removeprefix("cmdstat_")] = int(fields["calls"])
    return counters


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0) for name in after}


def _minus(phase: dict[str, int], idle: dict[str, int]) -> dict[str, int]:
    """What a phase as long as the idle one used beyond it."""
    return {name: phase[name] - idle.get(name, 0) for name in phase}


def _row(phase: str, delta: dict[str, int], per: float, unit: str) -> dict[str, Any]:
    counted = {n: v / per for n, v in delta.items() if not n.startswith("total_") and n not in ("info", "ping")}
    by_command = {name: rate for name, rate in counted.items() if rate > 0}
    top = sorted(((n, r) for n, r in by_command.items() if r > 0.05), key=lambda item: -item[1])[:4]
    return {
        "phase": phase,
        "unit": unit,
        "commands": delta["total_commands_processed"] / per,
        "kibIn": delta["total_net_input_bytes"] / per / 1024,
        "kibOut": delta["total_net_output_bytes"] / per / 1024,
        "top": dict(top),
        "byCommand": by_command,
    }


def run(nodes: int, calls: int, seconds: float, workdir: Path | None = None) -> list[dict[str, Any]]:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    redis, server, generator = RedisServer(workdir / "redis"), BenchRtmpServer(workdir), Generator()
    capacity = calls // nodes + 10
    env = {"BRIDGE_LIMITS__MAX_CALLS": str(capacity), "BRIDGE_LOG__LEVEL": "warning"}
    daemons: list[BridgeDaemon] = []
    rows: list[dict[str, Any]] = []
    try:
        for index in range(nodes):
            daemons.append(cluster_node(workdir, f"node-{index}", redis, "bench", env=env, rtp_ports=4 * capacity))
        time.sleep(2)
        before = _info(redis)
        time.sleep(seconds)
        idle = _delta(before, _info(redis))
        rows.append(_row(f"{nodes} nodes idle", idle, seconds * nodes, "per node per s"))
        names = [f"c{index}" for index in range(calls)]
        pick = random.Random(calls)
        before = _info(redis)
        for name in names:
            body = direct_call_body(name, name, server.url, generator.sip_port, name)
            status, reply = pick.choice(daemons).request("POST", "/RESTCall/call", body)
            if status != 200:
                raise RuntimeError(f"POST {name}: {status} {reply}")
        missing = _wait_published(server, names, 30 + calls / 10)
        rows.append(_row(f"{calls} calls placed", _delta(before, _info(redis)), calls, "per call"))
        before = _info(redis)
        time.sleep(seconds)
        up = _delta(before, _info(redis))
        unit = "per call per s, beyond idle"
        rows.append(_row(f"{calls} calls up", _minus(up, idle), seconds * calls, unit))
        watcher = SseCollector(daemons[0], "/api/v1/events?stats=1")
        time.sleep(2)  # the watcher is in node-0's record at its next heartbeat, and the others read it
        before = _info(redis)
        time.sleep(seconds)
        watched = _delta(before, _info(redis))
        watcher.stop()
        rows.append(_row(f"{calls} calls up, 1 console", _minus(watched, idle), seconds * calls, unit))
        before = _info(redis)
        for name in names:
            pick.choice(daemons).request("DELETE", f"/api/v1/calls/{name}")
        time.sleep(3)
        rows.append(_row(f"{calls} calls hung up", _delta(before, _info(redis)), calls, "per call"))
        if missing:
            print(f"warning: {len(missing)} streams never published: {missing[:5]}")
    finally:
        for daemon in daemons:
            daemon.stop()
        generator.stop()
        server.stop()
        redis.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    rows = [
        [row["phase"], row["unit"], fmt(row["commands"], 1), fmt(row["kibIn"], 1), fmt(row["kibOut"], 1),
         ", ".join(f"{name} {count:.1f}" for name, count in row["top"].items())]
        for row in run(args.nodes, args.calls, args.seconds)
    ]  # fmt: skip
    headers = ["phase", "unit", "commands", "KiB in", "KiB out", "most frequent commands"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
