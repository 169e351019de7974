"""The capacity bench's harness works end to end (20 calls, short window): numbers, not speed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.capacity import Settings, passes, run_bridge, run_ffmpeg
from bench.cluster_redis import run as run_cluster_redis
from bench.ingest import run_ingest
from bench.outputs import run as run_outputs
from bench.outputs import summary_rows
from bench.report import lag_by_process
from bench.stages import read_profile, stage_table
from bench.tick import run as run_tick
from bench.video_call import run as run_video_call
from bridge.media.stage_profile import ENV as STAGE_ENV
from bridge.media.stage_profile import STAGES
from bridge.model import OutputSpec, VideoSpec

pytestmark = pytest.mark.e2e
CALLS = 20


def test_capacity_bench_measures_bridge_and_ffmpeg_with_the_same_input(tmp_path: Path) -> None:
    settings = Settings(seconds=5.0, output=OutputSpec("aac", 16000, 32000, "fast"), samples=2, workers=2)
    bridge = run_bridge(CALLS, settings, tmp_path / "bridge")
    print(f"\nbridge smoke: {bridge}")
    assert bridge["calls"] == CALLS and bridge["cpuPercentPerCall"] > 0 and bridge["pssMiBPerCall"] > 0
    assert bridge["packets"]["sent"] > CALLS * 50 * settings.seconds  # every stream sent at real time for the window
    assert bridge["packets"]["processedFraction"] > 0.99
    assert bridge["continuity"]["recordings"] == CALLS and bridge["continuity"]["recordingErrors"] == 0
    assert bridge["sampled"]["streams"] == 2 and bridge["sampled"]["latencyMs"]["n"] >= 2  # clicks were found
    assert 100 < bridge["sampled"]["latencyMs"]["p50"] < 1000
    assert bridge["postToPublishMs"]["n"] == CALLS
    assert set(bridge["loopLagMs"]["workers"]) == {"0", "1"} and "p99" in bridge["loopLagMs"]["main"]
    assert len(lag_by_process(bridge["loopLagMs"]).split(" / ")) == 3  # the daemon and each worker, not only the worst
    criteria = (
        bridge["published"] == CALLS
        and bridge["packets"]["processedFraction"] >= 0.999
        and bridge["continuity"]["maxTimelineGapMs"] <= 100
        and bridge["loopLagMs"]["p99Max"] < 50
    )
    assert passes(bridge) is criteria
    assert passes(dict(bridge, published=CALLS - 1)) is False  # one unpublished stream fails the level

    ffmpeg = run_ffmpeg(CALLS, settings, tmp_path / "ffmpeg")
    print(f"ffmpeg smoke: {ffmpeg}")
    assert ffmpeg["calls"] == CALLS and ffmpeg["cpuPercentPerCall"] > 0
    assert ffmpeg["continuity"]["recordings"] == CALLS
    assert ffmpeg["sampled"]["latencyMs"]["n"] >= 2


def test_outputs_bench_measures_slate_and_a_second_destination(tmp_path: Path) -> None:
    base = Settings(seconds=2.5, output=OutputSpec("aac", 16000, 32000, "fast"), samples=1, workers=1)
    video = VideoSpec("slate", "", 640, 360, 10, 2.0)
    results = run_outputs(4, base, video, tmp_path, baseline=("slate",))  # the full comparison is make bench
    print("\n" + "\n".join(" | ".join(row) for row in summary_rows(results)))
    audio, slate, two = (results["bridge"][name] for name in ("audio only", "slate", "two destinations"))
    assert audio["streams"] == slate["streams"] == 4 and two["streams"] == 8
    assert audio["published"] == slate["published"] == 4 and two["published"] == 8
    assert two["continuity"]["recordings"] == 8 and two["continuity"]["recordingErrors"] == 0
    assert audio["continuity"]["fewestVideoFrames"] == 0  # audio only: no video track
    for mode in ("bridge", "ffmpeg"):
        slate = results[mode]["slate"]
        assert slate["published"] == 4 and slate["continuity"]["recordingErrors"] == 0, mode
        assert slate["continuity"]["fewestVideoFrames"] >= 10 * 4, mode  # 10 fps for at least the window
        assert 0 < slate["continuity"]["maxKeyframeGapSeconds"] <= 2.05, mode
    assert replace(base, destinations=2).stream_names("c") == ["c", "c-1"]


def test_stages_bench_splits_the_workers_cpu_by_stage(tmp_path: Path) -> None:
    seconds = 6.0
    settings = Settings(seconds=seconds, output=OutputSpec("aac", 16000, 32000, "fast"), samples=1, workers=1)
    result = run_bridge(CALLS, settings, tmp_path / "stages", env={STAGE_ENV: "1"}, probe=read_profile)
    rows = {row[0]: row for row in stage_table(result, CALLS, seconds)}
    print(f"\nstages smoke: {rows}")
    assert set(STAGES) <= set(rows)
    for stage in ("receive", "encode"):
        assert float(rows[stage][1]) > 0 and float(rows[stage][2]) > 0, f"stage {stage} not measured: {rows[stage]}"
    measured = sum(float(rows[stage][1]) for stage in STAGES)
    assert 0 < measured < float(rows["total"][1])
    wrappers = float(rows["the profiler's wrappers (measured, taken off above)"][1])
    assert 0 < wrappers < float(rows["total"][1])  # measured on the worker, then subtracted


def test_video_call_bench_measures_both_kinds_of_call(tmp_path: Path) -> None:
    result = run_video_call(3.0, 1, tmp_path)
    print(f"\nvideo call smoke: {result}")
    # nginx-rtmp's own view of the streams (from the AVC sequence header it received): H.264 at the
    # far end's size for the video call, no video for the audio-only one.
    assert result["video"]["serverVideo"] == "H264 640x360"
    assert result["audio"]["serverVideo"] == ""
    assert result["g722"]["serverVideo"] == result["opus"]["serverVideo"] == ""
    # each kind of call really was that kind: the codec the far end chose, and frames on the video call
    kinds = ("audio", "g722", "opus", "video")
    assert [result[kind]["codec"] for kind in kinds] == ["pcmu", "g722", "opus", "pcmu"]
    assert result["video"]["videoFramesPublished"] > 0 and result["audio"]["videoFramesPublished"] == 0


def test_ingest_bench_measures_websocket_calls(tmp_path: Path) -> None:
    seconds = 3.0
    settings = Settings(seconds=seconds, output=OutputSpec("aac", 16000, 32000, "fast"), samples=1, workers=1)
    result = run_ingest(CALLS, settings, tmp_path / "ingest")
    print(f"\ningest smoke: {result}")
    # what nginx-rtmp received: every stream published and recorded, continuous, at least the window long
    continuity = result["continuity"]
    assert result["published"] == CALLS and continuity["recordings"] == CALLS and continuity["recordingErrors"] == 0
    assert continuity["maxTimelineGapMs"] <= 100
    assert continuity["shortestRecordingSeconds"] >= seconds
    assert result["cpuPercentPerCall"] > 0


def test_cluster_redis_bench_reads_redis_counters_per_phase(tmp_path: Path) -> None:
    rows = {row["phase"]: row for row in run_cluster_redis(2, 4, 2.0, tmp_path)}
    print(f"\ncluster Redis smoke: {rows}")
    assert list(rows) == ["2 nodes idle", "4 calls placed", "4 calls up", "4 calls up, 1 console", "4 calls hung up"]
    assert rows["2 nodes idle"]["commands"] > 1
    assert rows["4 calls placed"]["byCommand"]["evalsha"] >= 1  # the claim script, once a call
    assert rows["4 calls up, 1 console"]["kibOut"] > rows["4 calls up"]["kibOut"]  # counters published when watched


def test_tick_bench_times_both_paths() -> None:
    compiled_total, compiled_encoder = run_tick(16000, 60, compiled=True)
    reference_total, reference_encoder = run_tick(16000, 60, compiled=False)
    assert 0 < compiled_encoder < compiled_total and 0 < reference_encoder < reference_total
