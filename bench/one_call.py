"""One bridged call on local peers: setup latency, daemon CPU and memory, loop lag.

Prints a table and a JSON line. Usage: ``make bench`` or
``python -m bench.one_call [--seconds 30] [--calls 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procstat import rss_mib, total_cpu, tree
from tests.support.baresip import Baresip
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import Kamailio, SipAccount
from tests.support.nginx_rtmp import NginxRtmp


def time_to_audio(daemon: BridgeDaemon, nginx: NginxRtmp, body: dict[str, Any]) -> float:
    """Seconds from POST to the stream carrying AAC audio on nginx-rtmp (rtmp_stat, polled every 2 ms)."""
    start = time.monotonic()
    status, reply = daemon.request("POST", "/RESTCall/call", body)
    assert status == 200, reply
    while time.monotonic() - start < 15:
        block = nginx.stream_stat(body["rtmpStream"])
        if block and "<codec>AAC</codec>" in block:
            return time.monotonic() - start
        time.sleep(0.002)
    raise TimeoutError("no audio on the RTMP server")


def run(seconds: float, setups: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    account = SipAccount()
    nginx, far_end = NginxRtmp(workdir), Baresip(workdir)
    domain = Kamailio(workdir, far_end.port, account)
    daemon = BridgeDaemon(workdir, level="warning")
    try:
        pid = daemon.process.proc.pid
        pids = tree(pid)  # the daemon and its media workers
        latencies = []
        for n in range(setups):
            body = call_body(f"setup-{n}", f"setup{n}", nginx, domain, account)
            latencies.append(time_to_audio(daemon, nginx, body) * 1000)
            daemon.request("POST", "/RESTCall/terminate", {"callId": body["callId"]})
            daemon.wait_gone(body["callId"])
        idle_cpu_start, idle_start = total_cpu(pids), time.monotonic()
        time.sleep(5)
        idle_cpu = (total_cpu(pids) - idle_cpu_start) / (time.monotonic() - idle_start)
        body = call_body("load-1", "load1", nginx, domain, account)
        time_to_audio(daemon, nginx, body)
        time.sleep(1)
        cpu_start, wall_start = total_cpu(pids), time.monotonic()
        time.sleep(seconds)
        busy_cpu = (total_cpu(pids) - cpu_start) / (time.monotonic() - wall_start)
        _, health = daemon.request("GET", "/RESTCall/health")
        call = daemon.call("load-1") or {}
        return {
            "post_to_first_audio_ms": {
                "median": round(statistics.median(latencies), 1),
                "min": round(min(latencies), 1),
                "max": round(max(latencies), 1),
                "samples": len(latencies),
            },
            "daemon_cpu_percent_idle": round(idle_cpu * 100, 3),
            "daemon_cpu_percent_one_call": round(busy_cpu * 100, 3),
            "daemon_rss_mib": round(rss_mib(pid), 1),
            "event_loop_lag_ms": health["eventLoopLagMs"],
            "measured_seconds": seconds,
            "call_counters": call.get("counters"),
        }
    finally:
        for peer in (daemon, domain, far_end, nginx):
            peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=5, help="call setups to time")
    args = parser.parse_args()
    result = run(args.seconds, args.calls)
    latency = result["post_to_first_audio_ms"]
    print(
        f"POST -> first AAC audio on nginx-rtmp: median {latency['median']} ms "
        f"(min {latency['min']}, max {latency['max']}, n={latency['samples']})"
    )
    print(
        f"daemon CPU: idle {result['daemon_cpu_percent_idle']} %, "
        f"one call {result['daemon_cpu_percent_one_call']} % of one core over {args.seconds:g} s"
    )
    print(f"daemon RSS: {result['daemon_rss_mib']} MiB; event-loop lag ms: {result['event_loop_lag_ms']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
