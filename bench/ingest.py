"""What an ingest call (a Twilio Media Stream over WebSocket) costs, beside a SIP/RTP call, same run.

N concurrent Twilio streams (tests/support/ingest_senders.py: real WebSockets, one 20 ms
µ-law message per call every 20 ms, signed with the twilio package) into ``/ingest/<route>``,
then N SIP calls from the capacity bench's load generator, each published to nginx-rtmp;
rounds alternate the two kinds. CPU is every daemon process (the daemon parses the JSON and
base64, the workers play out and encode) over the measured window, per call, and split into
the daemon's share and the workers'; "host idle" is every core's idle share in the window
(the senders and the RTMP server included: near 0 the host is saturated, and loop lag then
measures the scheduler, not the bridge); continuity is every recording's largest timeline step.

    python -m bench.ingest --calls 100 --seconds 30 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.capacity import (
    SPAWN,
    WARMUP_SECONDS,
    Settings,
    _continuity,
    _lag_from_metrics,
    _measure_window,
    _wait_published,
    run_bridge,
)
from bench.procstat import tree
from bench.report import fmt, lag_by_process, table
from bench.rtmp_server import BenchRtmpServer
from bridge.model import OutputSpec
from tests.support.daemon import BridgeDaemon
from tests.support.ingest_senders import Script, Sender

TOKEN = "bench-auth-token-0123456789abcdef"


def call_sid(index: int) -> str:
    return f"CA{index:032d}"


def _send_streams(url: str, calls: int, seconds: float, spread: float) -> None:
    """In its own process: ``calls`` streams, started ``spread`` seconds apart, for ``seconds`` each."""

    async def one(index: int) -> None:
        await asyncio.sleep(index * spread)
        await Sender("twilio", url, TOKEN, Script(seconds=seconds), call_sid(index)).run()

    async def every() -> None:
        await asyncio.gather(*(one(index) for index in range(calls)))

    asyncio.run(every())


def run_ingest(calls: int, settings: Settings, workdir: Path) -> dict[str, Any]:
    server = BenchRtmpServer(workdir)
    output = settings.output
    extra = (
        f'\n[media]\ncodec = "{output.codec}"\naac_sample_rate = {output.sample_rate}\naac_bitrate = {output.bitrate}\n'
        f'aac_coder = "{output.aac_coder}"\nworkers = {settings.workers}\n[limits]\nmax_calls = {calls + 10}\n'
        f'[ingest.routes.bench]\nprotocol = "twilio"\nsecret = "{TOKEN}"\nrtmp_url = "{server.url}"\n'
        'stream = "{callId}"\n'
    )
    daemon = BridgeDaemon(workdir, level="warning", extra_config=extra, rtp_ports=2 * calls + 40)
    names = [call_sid(index) for index in range(calls)]
    spread = 1 / 40  # as the capacity bench posts: 40 calls a second
    length = calls * spread + 30 + WARMUP_SECONDS + settings.seconds + 2
    sender = SPAWN.Process(
        target=_send_streams, args=(f"ws://127.0.0.1:{daemon.rest_port}/ingest/bench", calls, length, spread)
    )
    try:
        pids = tree(daemon.process.proc.pid)
        sender.start()
        missing = _wait_published(server, names, 30 + calls / 10)
        time.sleep(WARMUP_SECONDS)
        result = _measure_window(pids, settings.seconds, calls)
        result["loopLagMs"] = _lag_from_metrics(daemon.raw("GET", "/metrics"))
        result["counters"] = _counters(daemon, names)
    finally:
        if sender.is_alive():
            sender.terminate()
            sender.join(10)
        daemon.stop()
        server.stop()
    result.update(mode="ingest", calls=calls, streams=calls, published=calls - len(missing))
    result["continuity"] = _continuity(server, names, settings)
    return result


def _counters(daemon: BridgeDaemon, names: list[str]) -> dict[str, Any]:
    """The calls' receive counters summed (the bridge's own view: reported, not judged on)."""
    status, body = daemon.request("GET", "/api/v1/calls?limit=1000")
    calls = [c for c in body.get("calls", []) if c["callId"] in names] if status == 200 else []
    return {
        "active": sum(1 for c in calls if c["state"] == "ESTABLISHED"),
        "packets": sum(c["counters"].get("packets", 0) for c in calls),
        "late": sum(c["counters"].get("latePackets", 0) for c in calls),
    }


def run(calls: int, settings: Settings, workdir: Path, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"ingest": [], "sip": []}
    for round_number in range(rounds):
        runs["ingest"].append(run_ingest(calls, settings, workdir / f"ingest-{round_number}"))
        runs["sip"].append(run_bridge(calls, settings, workdir / f"sip-{round_number}"))
    results: dict[str, Any] = {"calls": calls, "rounds": rounds}
    for kind, levels in runs.items():
        cpu = [level["cpuPercentPerCall"] for level in levels]
        chosen = dict(sorted(levels, key=lambda level: float(level["cpuPercentPerCall"]))[(len(levels) - 1) // 2])
        chosen["cpuRounds"] = cpu
        chosen["cpuMedian"] = statistics.median(cpu)
        results[kind] = chosen
    return results


def print_summary(results: dict[str, Any]) -> None:
    sip = results["sip"]["cpuPercentPerCall"]
    rows = []
    for kind in ("ingest", "sip"):
        level = results[kind]
        rows.append(
            [
                "ingest (Twilio WebSocket)" if kind == "ingest" else "SIP/RTP",
                fmt(level["cpuPercentPerCall"], 3),
                fmt(level["cpuPercentPerCall"] / sip if sip else None, 2),
                " ".join(fmt(value, 3) for value in level["cpuRounds"]),
                fmt(level["daemonCpuPercentPerCall"], 3),
                fmt(level["workerCpuPercentPerCall"], 3),
                fmt(level["machineIdleFraction"] * 100, 0),
                fmt(level["pssMiBPerCall"], 2),
                f"{level['published']}/{level['streams']}",
                fmt(level["continuity"]["maxTimelineGapMs"], 1),
                lag_by_process(level["loopLagMs"]),
            ]
        )
    headers = ["call", "CPU %/call", "x SIP", "rounds", "daemon", "workers", "host idle %"]
    headers += ["PSS MiB/call", "published", "max gap ms", "lag p99 ms (daemon / workers)"]
    print(f"\n{results['calls']} concurrent calls, same run, median of {results['rounds']} round(s)")
    print(table(headers, rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings(args.seconds, OutputSpec("aac", 16000, 32000, "fast"), 1, args.workers)
    results = run(args.calls, settings, Path(tempfile.mkdtemp(prefix="bridge-ingest-")), args.rounds)
    print_summary(results)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
