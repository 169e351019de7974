"""What a slate video track and a second destination cost per call, bridge and ffmpeg-per-call, same run.

Three scenarios at the same number of calls and the same input (the capacity bench's load
generator and nginx-rtmp): audio only, audio + slate video, audio to two destinations. The
bridge encodes the slate once per worker and replays it; ffmpeg-per-call encodes the still
picture in every call (``-re -loop 1 -i picture -tune stillimage``) and writes two
destinations with its tee muxer.

    python -m bench.outputs --calls 50 --seconds 30 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.capacity import Settings, run_bridge, run_ffmpeg
from bench.report import fmt, table
from bridge.model import OutputSpec, VideoSpec

SCENARIOS = ("audio only", "slate", "two destinations")


def scenario_settings(base: Settings, video: VideoSpec) -> dict[str, Settings]:
    return {
        "audio only": base,
        "slate": replace(base, video=video),
        "two destinations": replace(base, destinations=2),
    }


def run(
    calls: int,
    base: Settings,
    video: VideoSpec,
    workdir: Path,
    baseline: tuple[str, ...] = SCENARIOS,
    rounds: int = 1,
) -> dict[str, Any]:
    """Every scenario through the bridge and the ``baseline`` ones through ffmpeg-per-call, ``rounds`` times.

    Rounds interleave the scenarios (a noisy minute hits all of them alike); each scenario
    reports its round with the median CPU, and ``cpuRounds`` lists them all.
    """
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"bridge": {}, "ffmpeg": {}}
    for round_number in range(rounds):
        for name, settings in scenario_settings(base, video).items():
            slug = f"{name.replace(' ', '-')}-{round_number}"
            runs["bridge"].setdefault(name, []).append(run_bridge(calls, settings, workdir / f"bridge-{slug}"))
            if name in baseline:
                runs["ffmpeg"].setdefault(name, []).append(run_ffmpeg(calls, settings, workdir / f"ffmpeg-{slug}"))
    results: dict[str, Any] = {"calls": calls, "rounds": rounds}
    for mode, scenarios in runs.items():
        results[mode] = {name: _median_round(levels) for name, levels in scenarios.items()}
    return results


def _median_round(levels: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(levels, key=lambda level: float(level["cpuPercentPerCall"]))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["cpuRounds"] = [level["cpuPercentPerCall"] for level in levels]
    return chosen


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for mode in ("bridge", "ffmpeg"):
        levels = results[mode]
        if not levels:
            continue
        audio = levels["audio only"]["cpuPercentPerCall"] if "audio only" in levels else None
        for name in [name for name in SCENARIOS if name in levels]:
            level = levels[name]
            cpu = level["cpuPercentPerCall"]
            rows.append(
                [
                    mode if mode == "bridge" else "ffmpeg-per-call",
                    name,
                    fmt(cpu, 3),
                    fmt(cpu / audio if audio else None, 2),
                    fmt(cpu - audio if audio is not None else None, 3),
                    fmt(level["pssMiBPerCall"], 2),
                    f"{level.get('published', level['streams'])}/{level['streams']}",
                    fmt(level["continuity"]["maxTimelineGapMs"], 1),
                ]
            )
    return rows


def print_summary(results: dict[str, Any]) -> None:
    headers = ["", "scenario", "CPU %/call", "x audio only", "+ CPU %/call", "PSS MiB/call", "published", "max gap ms"]
    print(f"\n{results['calls']} calls, same run")
    print(table(headers, summary_rows(results)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--bitrate", type=int, default=32000)
    parser.add_argument("--coder", default="fast")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--keyframe-seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the scenarios, interleaved; report medians")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = Settings(args.seconds, OutputSpec("aac", args.rate, args.bitrate, args.coder), 2, args.workers)
    video = VideoSpec("slate", "", args.width, args.height, args.fps, args.keyframe_seconds)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-outputs-"))
    results = run(args.calls, base, video, workdir, () if args.no_baseline else SCENARIOS, args.rounds)
    results["settings"] = vars(args) | {"json": str(args.json)}
    print_summary(results)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
