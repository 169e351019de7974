"""Capacity bench: N concurrent calls through the bridge, and ffmpeg-per-call with the same input.

Peers: the load generator (bench.loadgen: answers the bridge's INVITEs and sends one PCMU
tone stream per call at real time, with marker clicks), nginx-rtmp recording every
stream, and a few live players (bench.player) pulling sampled streams. For each level
it reports CPU seconds per call-second of all the daemon's processes, PSS per call,
RTP packets processed vs sent, output continuity (every recording's timeline, sampled
live pulls), event-loop lag of the daemon and of each media worker, bridge-added latency
(click sent -> click in the pulled audio) and POST -> publish start at the RTMP server.

    python -m bench.capacity --calls 100 --seconds 60           # one level, bridge and ffmpeg
    python -m bench.capacity --ramp 100,200,300,400,500         # largest N meeting the criteria
    python -m bench.capacity --calls 20 --seconds 10 --json out.json

The ramp's pass criteria: >= 99.9 % packets processed, no timeline gap > 100 ms in any
recording, event-loop lag p99 < 50 ms in every process (the admission's own limit,
``limits.max_worker_lag_ms``: beyond it a worker takes no new call).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.baseline import FfmpegPerCall
from bench.loadgen import run_generator
from bench.player import analyse_recording, click_latencies, pull
from bench.procstat import machine_idle_seconds, total_cpu, total_pss, tree
from bench.report import encoder_floor, print_ramp, print_side_by_side
from bench.rtmp_server import BenchRtmpServer
from bridge.model import OutputSpec, VideoSpec
from tests.support.call_bodies import direct_call_body
from tests.support.daemon import BridgeDaemon
from tests.support.ports import free_even_range, free_port

SPAWN = multiprocessing.get_context("spawn")
WARMUP_SECONDS = 5.0
POST_RATE = 40.0  # calls per second while ramping up
MiB = 1024 * 1024
LAG_P99_LIMIT_MS = 50.0  # as limits.max_worker_lag_ms, the admission's limit


@dataclass(frozen=True)
class Settings:
    seconds: float
    output: OutputSpec
    samples: int  # live-pulled streams per level
    workers: int  # 0 = one per CPU
    frames_per_batch: int = 1
    video: VideoSpec | None = None  # a slate video track on every destination
    destinations: int = 1  # RTMP destinations per call (all on the bench's nginx)
    sendrecv: bool = False  # hasAudio: the bridge sends 20 ms keep-alive RTP back for every call

    def stream_names(self, call: str) -> list[str]:
        """The RTMP stream names of one call: its name, then name-1, name-2, ... for more destinations."""
        return [call] + [f"{call}-{index}" for index in range(1, self.destinations)]

    @property
    def frame_ms(self) -> float:
        return 1024 * 1000 / self.output.sample_rate


class Generator:
    """The load generator's process and its control pipe."""

    def __init__(self) -> None:
        self.sip_port = free_port()
        self.rtp_port = free_even_range(2)[0]
        self.conn, child = SPAWN.Pipe()
        self.process = SPAWN.Process(target=run_generator, args=(child, self.sip_port, self.rtp_port), daemon=True)
        self.process.start()
        if not self.conn.poll(30) or self.conn.recv() != "ready":
            raise RuntimeError("load generator did not start")

    def command(self, *command: Any) -> None:
        self.conn.send(command)

    def report(self) -> dict[str, Any]:
        self.command("report")
        if not self.conn.poll(30):
            raise RuntimeError("load generator did not report")
        result: dict[str, Any] = self.conn.recv()
        return result

    def stop(self) -> None:
        self.command("quit")
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


class Players:
    """Live pulls of sampled streams, each in its own process."""

    def __init__(self, base_url: str, names: list[str], seconds: float) -> None:
        self.names = names
        self.pipes: list[Connection] = []
        self.processes = []
        for name in names:
            receiver, sender = SPAWN.Pipe(duplex=False)
            process = SPAWN.Process(target=pull, args=(f"{base_url}/{name}", seconds, sender), daemon=True)
            process.start()
            self.pipes.append(receiver)
            self.processes.append(process)

    def results(self, timeout: float) -> dict[str, dict[str, Any]]:
        found = {}
        deadline = time.monotonic() + timeout
        for name, pipe, process in zip(self.names, self.pipes, self.processes, strict=True):
            if pipe.poll(max(0.1, deadline - time.monotonic())):
                found[name] = pipe.recv()
            process.join(5)
            if process.is_alive():
                process.kill()
        return found


def _wait_published(server: BenchRtmpServer, names: list[str], timeout: float) -> list[str]:
    """Wait for every stream's publish; returns the streams that never published."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(name in server.hook.published for name in names):
            break
        time.sleep(0.1)
    missing = [name for name in names if name not in server.hook.published]
    if missing:
        print(f"{len(missing)} of {len(names)} streams never published, e.g. {missing[:3]}", flush=True)
    return missing


def _why_unpublished(daemon: BridgeDaemon, streams: list[str]) -> list[dict[str, Any]]:
    """For each stream that never published: its call's final state and reasons (from the API)."""
    found = []
    for stream in streams:
        call_id = stream.rsplit("-", 1)[0] if stream.rpartition("-")[2].isdigit() else stream
        status, call = daemon.request("GET", f"/RESTCall/calls/{call_id}")
        if status != 200:
            found.append({"stream": stream, "callId": call_id, "state": f"HTTP {status}"})
            continue
        history = call.get("streamHistory") or []
        found.append(
            {
                "stream": stream,
                "callId": call_id,
                "state": call["state"],
                "reason": call["reason"],
                "streamState": call["streamState"],
                "streamReason": history[-1]["reason"] if history else "",
            }
        )
    for row in found:
        print(f"  never published: {row}", flush=True)
    return found


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
        "n": len(ordered),
    }


def _continuity(server: BenchRtmpServer, names: list[str], settings: Settings) -> dict[str, Any]:
    """Every recording: the largest timeline gap beyond one AAC frame."""
    gaps, errors, lengths, video_frames, key_gaps = [], 0, [], [], []
    for name in names:
        found = analyse_recording(server.recording(name))
        if "error" in found:
            errors += 1
            continue
        gaps.append(max(0.0, found["maxStepMs"] - settings.frame_ms))
        lengths.append(found["seconds"])
        video_frames.append(found["videoFrames"])
        key_gaps.append(found["maxKeyframeGapSeconds"] or 0.0)
    return {
        "recordings": len(names) - errors,
        "recordingErrors": errors,
        "maxTimelineGapMs": round(max(gaps), 1) if gaps else None,
        "shortestRecordingSeconds": min(lengths) if lengths else None,
        "fewestVideoFrames": min(video_frames) if video_frames else None,
        "maxKeyframeGapSeconds": round(max(key_gaps), 3) if key_gaps else None,
    }


def _sampled(pulled: dict[str, dict[str, Any]], sent: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    for name, result in pulled.items():
        latencies += click_latencies(result.get("clickArrivals", []), sent.get(name, {}).get("clicks", []))
    ok = [r for r in pulled.values() if not r.get("error")]
    return {
        "streams": len(ok),
        "errors": [r["error"] for r in pulled.values() if r.get("error")],
        "maxArrivalGapMs": max((r["maxArrivalGapMs"] or 0 for r in ok), default=None),
        "maxSilentFraction": max((r["silentFraction"] or 0 for r in ok), default=None),
        "latencyMs": _percentiles(latencies),
    }


def _measure_window(pids: list[int], seconds: float, calls: int) -> dict[str, Any]:
    """CPU and memory of the daemon's process tree over ``seconds``; ``pids[0]`` is the daemon."""
    cpu_start, daemon_start, wall_start = total_cpu(pids), total_cpu(pids[:1]), time.monotonic()
    idle_start, machine_start = machine_idle_seconds()
    time.sleep(seconds)
    cpu = total_cpu(pids) - cpu_start
    daemon = total_cpu(pids[:1]) - daemon_start
    idle_end, machine_end = machine_idle_seconds()
    wall = time.monotonic() - wall_start
    pss = total_pss(pids)
    return {
        "cpuCores": round(cpu / wall, 3),
        "cpuPercentPerCall": round(cpu / wall / calls * 100, 4),
        "daemonCpuPercentPerCall": round(daemon / wall / calls * 100, 4),  # the rest: media workers'
        "workerCpuPercentPerCall": round((cpu - daemon) / wall / calls * 100, 4),
        # every core's idle share, load generator and RTMP server included: near 0, the host is saturated
        "machineIdleFraction": round((idle_end - idle_start) / max(machine_end - machine_start, 1e-9), 3),
        "pssMiBTotal": round(pss / MiB, 1),
        "pssMiBPerCall": round(pss / MiB / calls, 2),
    }


def _lag_from_metrics(text: str) -> dict[str, Any]:
    """Loop lag quantiles of the daemon and of each media worker, read with prometheus_client's parser."""
    main: dict[str, float] = {}
    workers: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bridge_event_loop_lag_ms":
                main[sample.labels["quantile"]] = sample.value
            elif sample.name == "bridge_media_worker_loop_lag_ms":
                workers.setdefault(sample.labels["worker"], {})[sample.labels["quantile"]] = sample.value
    p99 = max([main.get("p99", 0.0)] + [w.get("p99", 0.0) for w in workers.values()])
    return {"main": main, "workers": workers, "p99Max": p99}


Probe = Callable[[BridgeDaemon], Any]


def run_bridge(
    calls: int, settings: Settings, workdir: Path, env: dict[str, str] | None = None, probe: Probe | None = None
) -> dict[str, Any]:
    """N calls through the daemon (SIP to the generator, RTMP to nginx).

    ``probe`` is called on the daemon at the start and at the end of the measured window;
    its two results are in ``result["probe"]`` (bench.stages reads the stage profile so).
    """
    server, generator = BenchRtmpServer(workdir), Generator()
    output = settings.output
    extra = (
        f'\n[media]\ncodec = "{output.codec}"\naac_sample_rate = {output.sample_rate}\naac_bitrate = {output.bitrate}\n'
        f'aac_coder = "{output.aac_coder}"\nworkers = {settings.workers}\n'
        f"frames_per_batch = {settings.frames_per_batch}\n[limits]\nmax_calls = {calls + 10}\n"
    )
    daemon = BridgeDaemon(workdir, level="warning", extra_config=extra, rtp_ports=2 * calls + 40, env=env)
    try:
        pids = tree(daemon.process.proc.pid)
        idle_pss = total_pss(pids)
        names = [f"load{i}" for i in range(calls)]
        posted, refused = _post_calls(daemon, server, generator, names, settings)
        names = [name for name in names if name in posted]  # what follows is about admitted calls
        streams = [stream for name in names for stream in settings.stream_names(name)]
        missing = _wait_published(server, streams, 30 + calls / 10)
        unpublished = _why_unpublished(daemon, missing)
        published = len(streams) - len(missing)
        players = Players(
            server.url,
            names[:: max(1, calls // settings.samples)][: settings.samples],
            WARMUP_SECONDS + settings.seconds,
        )
        time.sleep(WARMUP_SECONDS)
        before = probe(daemon) if probe is not None else None
        result = _measure_window(pids, settings.seconds, len(names))
        result["probe"] = [before, probe(daemon)] if probe is not None else None
        result["pssMiBPerCallMarginal"] = round((total_pss(pids) - idle_pss) / MiB / calls, 2)
        result["loopLagMs"] = _lag_from_metrics(daemon.raw("GET", "/metrics"))
        result["playout"] = _playout(daemon)
        pulled = players.results(timeout=30)
        generator.command("pause")
        time.sleep(2.5)  # the workers report counters once a second
        report = generator.report()
        result["packets"] = _packets(daemon, report)
        result["postToPublishMs"] = _percentiles(
            [(server.hook.published[n] - posted[n]) * 1000 for n in names if n in server.hook.published]
        )
        _hang_up(daemon, names)
    finally:
        daemon.stop()
        generator.stop()
        server.stop()
    result.update(mode="bridge", calls=calls, published=published, generatorLateTicks=report["lateTicks"])
    result["admitted"], result["refused"] = len(names), len(refused)
    result["refusal"] = next(iter(refused.values()), "")
    result["streams"] = len(streams)
    result["unpublished"] = unpublished
    result["continuity"] = _continuity(server, streams, settings)
    result["sampled"] = _sampled(pulled, report["streams"])
    return result


def _post_calls(
    daemon: BridgeDaemon, server: BenchRtmpServer, generator: Generator, names: list[str], settings: Settings
) -> tuple[dict[str, float], dict[str, str]]:
    """POST every call at POST_RATE; returns when each was posted, and the ones refused (503) with why."""
    posted: dict[str, float] = {}
    refused: dict[str, str] = {}
    started = time.monotonic()
    for index, name in enumerate(names):
        time.sleep(max(0.0, started + index / POST_RATE - time.monotonic()))
        path, body = _call_request(name, server.url, generator.sip_port, settings)
        at = time.time()
        status, reply = daemon.request("POST", path, body)
        if status == 503:
            refused[name] = reply["error"]["message"]
        elif status in (200, 201):
            posted[name] = at
        else:
            raise RuntimeError(f"POST {name}: {status} {reply}")
    if refused:
        first = next(iter(refused))
        print(f"admission refused {len(refused)} of {len(names)} calls, from {first}: {refused[first]}", flush=True)
    return posted, refused


def _call_request(name: str, url: str, sip_port: int, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The original contract for audio-only single-destination calls, /api/v1 with outputs otherwise."""
    has_audio = "true" if settings.sendrecv else "false"
    body = direct_call_body(name, name, url, sip_port, name, hasAudio=has_audio, hasVideo="false")
    if settings.video is None and settings.destinations == 1:
        return "/RESTCall/call", body
    video = settings.video
    if video is not None:
        body["output"] = {
            "video": {
                "mode": "slate",
                "width": video.width,
                "height": video.height,
                "fps": video.fps,
                "keyframeSeconds": video.keyframe_seconds,
            }
        }
    if settings.destinations > 1:
        del body["rtmpUrl"], body["rtmpStream"]
        body["outputs"] = [{"rtmpUrl": url, "rtmpStream": stream} for stream in settings.stream_names(name)]
    return "/api/v1/calls", body


def _packets(daemon: BridgeDaemon, report: dict[str, Any]) -> dict[str, Any]:
    status, listing = daemon.request("GET", "/RESTCall/calls")
    assert status == 200, listing
    processed = sum(call["counters"].get("packets", 0) for call in listing["calls"])
    sent = sum(stream["sent"] for stream in report["streams"].values())
    return {"sent": sent, "processed": processed, "processedFraction": round(processed / sent, 5) if sent else None}


def _playout(daemon: BridgeDaemon) -> dict[str, Any]:
    """The bridge's own view of its playout at the end of the window, to read the latency by
    (a diagnostic beside the click latency measured in the pulled streams, not a criterion)."""
    status, listing = daemon.request("GET", "/RESTCall/calls")
    assert status == 200, listing
    counters = [call["counters"] for call in listing["calls"]]
    return {
        "delayEstimateMs": _percentiles([float(c.get("delayEstimateMs", 0)) for c in counters]),
        "jitterMs": _percentiles([float(c.get("jitterMs", 0.0)) for c in counters]),
        "latePackets": sum(c.get("latePackets", 0) for c in counters),
        "concealedMs": sum(c.get("concealedMs", 0) for c in counters),
    }


def _hang_up(daemon: BridgeDaemon, names: list[str]) -> None:
    for name in names:
        daemon.request("POST", "/RESTCall/terminate", {"callId": name})
    deadline = time.monotonic() + 30
    while daemon.active_ids() and time.monotonic() < deadline:
        time.sleep(0.2)


def run_ffmpeg(calls: int, settings: Settings, workdir: Path) -> dict[str, Any]:
    """N ffmpeg processes fed by the same generator, publishing to the same nginx."""
    server, generator = BenchRtmpServer(workdir), Generator()
    first_port = free_even_range(2 * calls)[0]
    spawned = time.time()
    ffmpeg = FfmpegPerCall(
        workdir, calls, first_port, settings.output, server.url, settings.video, settings.destinations
    )
    try:
        time.sleep(1.0)  # ffmpeg binds its RTP socket after start-up
        for name, port in zip(ffmpeg.names, ffmpeg.ports, strict=True):
            generator.command("media", name, "127.0.0.1", port)
        streams = [stream for name in ffmpeg.names for stream in settings.stream_names(name)]
        _wait_published(server, streams, 60 + calls / 5)  # ffmpeg has no API to ask why
        players = Players(
            server.url,
            ffmpeg.names[:: max(1, calls // settings.samples)][: settings.samples],
            WARMUP_SECONDS + settings.seconds,
        )
        time.sleep(WARMUP_SECONDS)
        result = _measure_window(ffmpeg.pids, settings.seconds, calls)
        pulled = players.results(timeout=30)
        report = generator.report()
        published = server.hook.published
        result["spawnToPublishMs"] = _percentiles([(published[n] - spawned) * 1000 for n in streams if n in published])
        result["published"] = sum(1 for n in streams if n in published)
    finally:
        ffmpeg.stop()
        generator.stop()
        server.stop()
    result.update(mode="ffmpeg-per-call", calls=calls, generatorLateTicks=report["lateTicks"])
    result["streams"] = len(streams)
    result["continuity"] = _continuity(server, streams, settings)
    result["sampled"] = _sampled(pulled, report["streams"])
    return result


def passes(result: dict[str, Any]) -> bool:
    """The ramp's criteria: packets processed, timeline gaps, loop lag."""
    packets, continuity = result["packets"], result["continuity"]
    return bool(
        result["published"] == result.get("streams", result["calls"])
        and (packets["processedFraction"] or 0) >= 0.999
        and continuity["recordingErrors"] == 0
        and (continuity["maxTimelineGapMs"] or 0) <= 100
        and result["loopLagMs"]["p99Max"] < LAG_P99_LIMIT_MS
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--ramp", default="", help="comma-separated call counts, e.g. 100,200,300,400")
    parser.add_argument(
        "--baseline-calls", default="", help="ffmpeg-per-call at these N, e.g. 100,200 (default: --calls)"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per level")
    parser.add_argument("--codec", choices=["aac", "pcmu"], default="aac", help="pcmu: passthrough, no encoder")
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--bitrate", type=int, default=32000)
    parser.add_argument("--coder", default="fast")
    parser.add_argument("--samples", type=int, default=3, help="streams pulled live per level")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--frames-per-batch", type=int, default=1, help="media.frames_per_batch")
    parser.add_argument("--sendrecv", action="store_true", help="hasAudio=true: 20 ms RTP sent back per call")
    parser.add_argument("--slate", action="store_true", help="a slate video track (1280x720, 25 fps) per call")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    settings = Settings(
        args.seconds,
        OutputSpec(args.codec, args.rate, args.bitrate, args.coder),
        args.samples,
        args.workers,
        args.frames_per_batch,
        video=VideoSpec("slate", "", 1280, 720, 25, 2.0) if args.slate else None,
        sendrecv=args.sendrecv,
    )
    results: dict[str, Any] = {
        "settings": vars(args) | {"json": str(args.json)},
        "encoderFloor": encoder_floor(settings.output),
    }
    workdir = Path(tempfile.mkdtemp(prefix="bridge-capacity-"))
    levels = [int(n) for n in args.ramp.split(",")] if args.ramp else [args.calls]
    results["levels"] = []
    for n in levels:
        level = run_bridge(n, settings, workdir / f"bridge-{n}")
        level["pass"] = passes(level)
        results["levels"].append(level)
        print_ramp(results["levels"], results["encoderFloor"])
        if args.ramp and not level["pass"]:
            break
    passing = [level["calls"] for level in results["levels"] if level["pass"]]
    results["largestPassingCalls"] = max(passing) if passing else None
    if not args.no_baseline:
        counts = [int(n) for n in str(args.baseline_calls).split(",")] if args.baseline_calls else []
        results["baselines"] = []
        for n in counts or [levels[0] if args.ramp else args.calls]:
            bridge = next((lvl for lvl in results["levels"] if lvl["calls"] == n), None) or run_bridge(
                n, settings, workdir / f"bridge-{n}b"
            )
            baseline = run_ffmpeg(n, settings, workdir / f"ffmpeg-{n}")
            results["baselines"].append(baseline)
            print_side_by_side(bridge, baseline, results["encoderFloor"])
        results["baseline"] = results["baselines"][0]  # the first, as before (other tools read it)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
