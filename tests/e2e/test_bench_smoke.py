"""The capacity bench's harness works end to end (20 calls, short window): numbers, not speed."""

from __future__ import annotations

from pathlib import Path

from bench.capacity import Settings, passes, run_bridge, run_ffmpeg
from bridge.model import OutputSpec

CALLS = 20


def test_capacity_bench_measures_bridge_and_ffmpeg_with_the_same_input(tmp_path: Path) -> None:
    settings = Settings(seconds=8.0, output=OutputSpec("aac", 16000, 32000, "fast"), samples=2, workers=2)
    bridge = run_bridge(CALLS, settings, tmp_path / "bridge")
    print(f"\nbridge smoke: {bridge}")
    assert bridge["calls"] == CALLS and bridge["cpuPercentPerCall"] > 0 and bridge["pssMiBPerCall"] > 0
    assert bridge["packets"]["sent"] > CALLS * 50 * 8  # every stream sent at real time for the window
    assert bridge["packets"]["processedFraction"] > 0.99
    assert bridge["continuity"]["recordings"] == CALLS and bridge["continuity"]["recordingErrors"] == 0
    assert bridge["sampled"]["streams"] == 2 and bridge["sampled"]["latencyMs"]["n"] >= 2  # clicks were found
    assert 100 < bridge["sampled"]["latencyMs"]["p50"] < 1000
    assert bridge["postToPublishMs"]["n"] == CALLS
    assert set(bridge["loopLagMs"]["workers"]) == {"0", "1"} and "p99" in bridge["loopLagMs"]["main"]
    assert isinstance(passes(bridge), bool)

    ffmpeg = run_ffmpeg(CALLS, settings, tmp_path / "ffmpeg")
    print(f"ffmpeg smoke: {ffmpeg}")
    assert ffmpeg["calls"] == CALLS and ffmpeg["cpuPercentPerCall"] > 0
    assert ffmpeg["continuity"]["recordings"] == CALLS
    assert ffmpeg["sampled"]["latencyMs"]["n"] >= 2
