"""Per-stage cost of the media path, in microseconds per call-second, under the capacity bench's load.

The media workers run with the stage profiler (``BRIDGE_STAGE_PROFILE=1``,
bridge/media/stage_profile.py: perf_counter wrappers, exclusive time per stage). The table
shows each stage's CPU per call and second of call, how often it ran, and what is left:
"loop, timers, wake-ups" is the workers' CPU time minus every stage; "daemon process" is
the main process (REST, SIP, supervision, the workers' stats). The wrappers' own cost (about
1.5 µs per call of a stage, measured on each worker at start by stage_profile.StageClock.calibrate)
is taken off the stages it lands in and shown on a row of its own.

    python -m bench.stages --calls 100 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from bench.capacity import Settings, run_bridge
from bench.report import fmt, table
from bridge.media.stage_profile import ENV, PARENT, STAGES
from bridge.model import OutputSpec
from tests.support.daemon import BridgeDaemon

_SAMPLE = re.compile(r"^(?P<name>bridge_media_\w+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def read_profile(daemon: BridgeDaemon) -> dict[str, float]:
    """Summed over workers: '<stage>.seconds', '<stage>.calls', 'worker.cpu'; the wrappers' measured
    cost per call ('profiler.inside_ns', 'profiler.outside_ns') summed too, with 'profiler.workers'."""
    totals: dict[str, float] = {}
    for line in daemon.raw("GET", "/metrics").splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', sample["labels"]))
        if sample["name"] == "bridge_media_stage":
            key = f"{labels['stage']}.{labels['unit']}"
            if key == "profiler.inside_ns":
                totals["profiler.workers"] = totals.get("profiler.workers", 0.0) + 1
        elif sample["name"] == "bridge_media_worker_cpu_seconds":
            key = "worker.cpu"
        else:
            continue
        totals[key] = totals.get(key, 0.0) + float(sample["value"])
    return totals


def net_of_profiler(per: dict[str, float], after: dict[str, float]) -> tuple[dict[str, float], float]:
    """Each stage's seconds less the wrappers' own cost (measured on each worker at start): a wrapper's
    part between its clock reads comes off its stage, its part outside them off the stage that calls
    it (stage_profile.PARENT). Returns the net seconds and the wrappers' cost in all."""
    workers = max(after.get("profiler.workers", 0.0), 1.0)
    inside = after.get("profiler.inside_ns", 0.0) / workers * 1e-9
    outside = after.get("profiler.outside_ns", 0.0) / workers * 1e-9
    net = {stage: per.get(f"{stage}.seconds", 0.0) for stage in STAGES}
    overhead = 0.0
    for stage in STAGES:
        calls = per.get(f"{stage}.calls", 0.0)
        net[stage] -= inside * calls
        parent = PARENT.get(stage)
        if parent is not None:
            net[parent] -= outside * calls
        overhead += (inside + outside) * calls
    return net, overhead


def stage_table(result: dict[str, Any], calls: int, seconds: float) -> list[list[str]]:
    before, after = result["probe"]
    call_seconds = calls * seconds
    per = {key: (after.get(key, 0.0) - before.get(key, 0.0)) for key in after}
    net, overhead = net_of_profiler(per, after)
    rows, covered = [], 0.0
    for stage in STAGES:
        covered += net[stage]
        rows.append(
            [stage, fmt(net[stage] / call_seconds * 1e6, 1), fmt(per.get(f"{stage}.calls", 0.0) / call_seconds, 1)]
        )
    worker_cpu = per.get("worker.cpu", 0.0) - overhead
    total_cpu = result["cpuCores"] * seconds - overhead
    rows.append(
        ["loop, timers, wake-ups (worker CPU - stages)", fmt((worker_cpu - covered) / call_seconds * 1e6, 1), ""]
    )
    rows.append(["daemon process (REST, SIP, stats in)", fmt((total_cpu - worker_cpu) / call_seconds * 1e6, 1), ""])
    rows.append(["total", fmt(total_cpu / call_seconds * 1e6, 1), ""])
    rows.append(["the profiler's wrappers (measured, taken off above)", fmt(overhead / call_seconds * 1e6, 1), ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--bitrate", type=int, default=32000)
    parser.add_argument("--coder", default="fast")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settings = Settings(args.seconds, OutputSpec("aac", args.rate, args.bitrate, args.coder), 2, args.workers)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-stages-"))
    result = run_bridge(args.calls, settings, workdir, env={ENV: "1"}, probe=read_profile)
    rows = stage_table(result, args.calls, args.seconds)
    print(f"\n{args.calls} calls, {args.seconds:g} s window: CPU per call-second by stage (stage profiler)")
    print(table(["stage", "µs per call-second", "calls per call-second"], rows), flush=True)
    print(f"CPU per call: {result['cpuPercentPerCall']:.3f} % of a core (measured with the profiler's wrappers)")
    if args.json:
        args.json.write_text(json.dumps({"result": result, "table": rows}, indent=1))


if __name__ == "__main__":
    main()
