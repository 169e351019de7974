"""Soak: a steady number of concurrent calls, each replaced when it ends, for a long time, through
a bad network; what leaks, and whether anything was lost.

    python -m bench.soak --calls 50 --call-seconds 120 --minutes 30      # make soak (about 750 calls)
    python -m bench.soak --calls 20 --call-seconds 30 --minutes 2        # the CI smoke

The load generator answers the bridge's INVITEs and sends one PCMU stream per call through the
impairment model (2 % lost, 1 % duplicated, up to 40 ms of jitter); nginx-rtmp takes every stream
and notes each publish and unpublish. Every ``--sample-seconds`` the harness reads, from /proc, the
resident memory and open files of the daemon and its media workers and, from /metrics, the loop
lag and the tasks alive. At the end: the slope of memory and open files (least squares over the
second half, when the call count is steady), the UDP sockets still bound in the RTP range (the
kernel's /proc/net/udp), the tasks alive against the idle daemon's, every call's row in the
history database (read with sqlite3), and every stream's publish and unpublish at nginx.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.capacity import Generator
from bench.procstat import tree
from bench.rtmp_server import BenchRtmpServer
from tests.support.call_bodies import direct_call_body
from tests.support.daemon import BridgeDaemon

IMPAIRMENT = (0.02, 0.01, 0.040)  # loss, duplicate, jitter seconds


@dataclass
class Sample:
    at: float  # minutes since the start
    calls: int
    rss_mib: float  # the daemon and its media workers
    daemon_rss_mib: float
    open_files: int
    lag_p99_ms: float
    tasks: int


@dataclass
class Soak:
    calls: int
    call_seconds: float
    minutes: float
    sample_seconds: float
    started: dict[str, float] = field(default_factory=dict)  # call -> monotonic start
    ended: list[str] = field(default_factory=list)
    refused: int = 0
    samples: list[Sample] = field(default_factory=list)


def rss_and_files(pids: list[int]) -> tuple[float, int]:
    rss, files = 0.0, 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss += int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024
            files += len(list(Path(f"/proc/{pid}/fd").iterdir()))
        except (OSError, StopIteration):
            continue
    return rss, files


def metrics(daemon: BridgeDaemon) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(daemon.raw("GET", "/metrics")):
        for sample in family.samples:
            key = sample.name + "".join(f"|{v}" for _k, v in sorted(sample.labels.items()))
            values[key] = sample.value
    return values


def lag_and_tasks(values: dict[str, float]) -> tuple[float, int]:
    """The worst loop lag p99 (daemon and workers) and the asyncio tasks alive in all of them."""
    lags = [v for k, v in values.items() if k.startswith("bridge_event_loop_lag_ms|p99")]
    lags += [v for k, v in values.items() if k.startswith("bridge_media_worker_loop_lag_ms") and k.endswith("|p99")]
    tasks = values.get("bridge_tasks", 0) + sum(
        v for k, v in values.items() if k.startswith("bridge_media_worker_tasks")
    )
    return max(lags or [0.0]), int(tasks)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per minute) of ``points`` (minutes, value)."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / denominator if denominator else 0.0


def bound_in_range(first: int, last: int) -> int:
    """UDP sockets bound to a port in [first, last] on this host (the kernel's view)."""
    count = 0
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        port = int(line.split()[1].rsplit(":", 1)[1], 16)
        count += first <= port <= last
    return count


def run(soak: Soak, workdir: Path) -> dict[str, Any]:
    server, generator = BenchRtmpServer(workdir), Generator()
    generator.command("impair", *IMPAIRMENT)
    rtp_ports = 4 * soak.calls + 40
    extra = f"\n[limits]\nmax_calls = {soak.calls + 10}\n"
    daemon = BridgeDaemon(workdir, level="warning", extra_config=extra, rtp_ports=rtp_ports)
    first_port, last_port = (int(p) for p in daemon.rtp_range.split("-"))
    try:
        time.sleep(2.5)  # the media workers' first reports
        idle = lag_and_tasks(metrics(daemon))[1]
        _drive(soak, daemon, server, generator)
        _hang_up_all(soak, daemon)
        time.sleep(3.0)  # the workers' last reports
        end_tasks = lag_and_tasks(metrics(daemon))[1]
        still_bound = bound_in_range(first_port, last_port)
        report = generator.report()
    finally:
        daemon.stop()
        generator.stop()
        server.stop()
    return _results(soak, idle, end_tasks, still_bound, report, server, daemon.dir / "history.sqlite3")


def _drive(soak: Soak, daemon: BridgeDaemon, server: BenchRtmpServer, generator: Generator) -> None:
    """Keep ``calls`` calls up, each for ``call_seconds`` (the first ones staggered), for ``minutes``."""
    began = time.monotonic()
    end = began + soak.minutes * 60
    next_sample, serial = began, 0
    while time.monotonic() < end:
        now = time.monotonic()
        for name, started in list(soak.started.items()):
            if now - started >= soak.call_seconds:
                daemon.request("POST", "/RESTCall/terminate", {"callId": name})
                soak.ended.append(name)
                del soak.started[name]
        while len(soak.started) < soak.calls and now < end - 5:
            serial += 1
            name = f"soak{serial}"
            status, _ = daemon.request("POST", "/RESTCall/call", _body(name, server, generator))
            if status == 200:
                # the first calls end at staggered times, so that replacements come steadily
                stagger = soak.call_seconds * (1 - len(soak.started) / soak.calls) if serial <= soak.calls else 0.0
                soak.started[name] = now - stagger
            else:
                soak.refused += 1
                break
        if now >= next_sample:
            rss, files = rss_and_files(tree(daemon.process.proc.pid))
            daemon_rss, _ = rss_and_files([daemon.process.proc.pid])
            lag, tasks = lag_and_tasks(metrics(daemon))
            at = round((now - began) / 60, 3)
            soak.samples.append(Sample(at, len(soak.started), rss, daemon_rss, files, lag, tasks))
            next_sample = now + soak.sample_seconds
        time.sleep(0.2)


def _body(name: str, server: BenchRtmpServer, generator: Generator) -> dict[str, Any]:
    return direct_call_body(name, name, server.live_url, generator.sip_port, name, hasAudio="false", hasVideo="false")


def _hang_up_all(soak: Soak, daemon: BridgeDaemon) -> None:
    for name in list(soak.started):
        daemon.request("POST", "/RESTCall/terminate", {"callId": name})
        soak.ended.append(name)
    soak.started.clear()
    deadline = time.monotonic() + 60
    while daemon.active_ids() and time.monotonic() < deadline:
        time.sleep(0.5)


def _results(
    soak: Soak,
    idle_tasks: int,
    end_tasks: int,
    still_bound: int,
    report: dict[str, Any],
    server: BenchRtmpServer,
    history: Path,
) -> dict[str, Any]:
    names = soak.ended
    with sqlite3.connect(history) as db:
        rows = dict(db.execute("SELECT call_id, state FROM calls WHERE ended_at IS NOT NULL").fetchall())
    hook = server.hook
    return {
        "calls": len(names),
        "concurrent": soak.calls,
        "callSeconds": soak.call_seconds,
        "minutes": soak.minutes,
        "refused": soak.refused,
        "impairment": {"loss": IMPAIRMENT[0], "duplicate": IMPAIRMENT[1], "jitterMs": IMPAIRMENT[2] * 1000},
        "generator": {"lost": report["lost"], "duplicated": report["duplicated"], "invites": report["invites"]},
        **_trends(soak),
        "tasks": {"idle": idle_tasks, "end": end_tasks},
        "rtpSocketsStillBound": still_bound,
        "historyComplete": sum(rows.get(n) == "FINISH" for n in names),
        "historyMissing": [n for n in names if rows.get(n) != "FINISH"][:10],
        "published": sum(hook.publishes.get(n, 0) >= 1 for n in names),
        "unpublished": sum(hook.unpublishes.get(n, 0) >= 1 for n in names),
        "republished": sum(hook.publishes.get(n, 0) > 1 for n in names),
        "samples": [s.__dict__ for s in soak.samples],
    }


def _trends(soak: Soak) -> dict[str, Any]:
    """Memory, open files and loop lag over the run; slopes over the steady second half."""
    samples = soak.samples
    steady = [s for s in samples if s.at >= soak.minutes / 2] or samples
    return {
        "rssMiB": {
            "first": samples[0].rss_mib,
            "last": samples[-1].rss_mib,
            "max": max(s.rss_mib for s in samples),
            "slopeMiBPerMinute": round(slope([(s.at, s.rss_mib) for s in steady]), 4),
        },
        "openFiles": {
            "first": samples[0].open_files,
            "last": samples[-1].open_files,
            "slopePerMinute": round(slope([(s.at, s.open_files) for s in steady]), 4),
        },
        "loopLagP99Ms": {
            "max": max(s.lag_p99_ms for s in samples),
            "median": statistics.median(s.lag_p99_ms for s in samples),
        },
    }


def passes(result: dict[str, Any], slopes: bool = True) -> bool:
    """Nothing lost, nothing left behind, nothing growing (``slopes``: judged only on runs long enough
    for a steady second half; a two-minute smoke is still warming up)."""
    calls = result["calls"]
    kept = (
        calls > 0
        and result["historyComplete"] == calls
        and result["published"] == calls
        and result["unpublished"] == calls
        and result["rtpSocketsStillBound"] == 0
        and result["tasks"]["end"] <= result["tasks"]["idle"]
    )
    steady = result["rssMiB"]["slopeMiBPerMinute"] < 0.5 and abs(result["openFiles"]["slopePerMinute"]) < 0.5
    return kept and (steady or not slopes)


def print_summary(result: dict[str, Any], slopes: bool = True) -> None:
    rss, files, lag, tasks = result["rssMiB"], result["openFiles"], result["loopLagP99Ms"], result["tasks"]
    generator = result["generator"]
    length = f"{result['concurrent']} x {result['callSeconds']:g} s for {result['minutes']:g} min"
    rows = [
        ("calls made", f"{result['calls']} ({length}; {result['refused']} refused)"),
        ("impairment", f"{result['impairment']}: {generator['lost']} lost, {generator['duplicated']} duplicated"),
        ("history complete", f"{result['historyComplete']} / {result['calls']}"),
        ("published / unpublished", f"{result['published']} / {result['unpublished']} ({result['republished']} again)"),
        ("RSS MiB first/last/max", f"{rss['first']:.1f} / {rss['last']:.1f} / {rss['max']:.1f}"),
        ("RSS slope", f"{rss['slopeMiBPerMinute']:+.4f} MiB per minute"),
        ("open files first/last", f"{files['first']} / {files['last']}, {files['slopePerMinute']:+.4f} per minute"),
        ("loop lag p99 median/max", f"{lag['median']:.1f} / {lag['max']:.1f} ms"),
        ("tasks idle / at the end", f"{tasks['idle']} / {tasks['end']}"),
        ("RTP sockets still bound", str(result["rtpSocketsStillBound"])),
        ("passes", f"{passes(result, slopes)}{'' if slopes else ' (slopes reported, not judged)'}"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--call-seconds", type=float, default=120.0)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-slopes", action="store_true", help="report the slopes without judging them (smoke)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bridge-soak-") as workdir:
        result = run(Soak(args.calls, args.call_seconds, args.minutes, args.sample_seconds), Path(workdir))
    print_summary(result, slopes=not args.no_slopes)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    raise SystemExit(0 if passes(result, slopes=not args.no_slopes) else 1)


if __name__ == "__main__":
    main()
