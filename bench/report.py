"""The encoder floor and the bench's tables."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.loadgen import tone_with_noise
from bridge.media.encoder import AacEncoder, aac_settings
from bridge.model import OutputSpec


def encoder_floor(output: OutputSpec, seconds: int = 120) -> dict[str, float]:
    """CPU of the AAC encoder alone (PyAV, same settings, same signal), per call, as % of one core.

    Measured through the bridge's AacEncoder (8 kHz in, resampled, whole AAC frames).
    """
    encoder = AacEncoder(aac_settings(output))
    pcm = np.tile(tone_with_noise(8000), seconds)  # the load generator's signal
    batch = encoder.input_batch
    started = time.process_time()
    for offset in range(0, len(pcm) - batch, batch):
        encoder.encode(pcm[offset : offset + batch])
    cpu = time.process_time() - started
    return {"cpuPercentPerCall": round(cpu / seconds * 100, 4), "audioSeconds": seconds}


def fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


RAMP_COLUMNS = (
    ("calls", "N"),
    ("admitted", "admitted"),
    ("cpu", "CPU %/call"),
    ("floor", "x floor"),
    ("pss", "PSS MiB/call"),
    ("processed", "processed %"),
    ("gap", "max gap ms"),
    ("lag", "lag p99 ms (daemon / workers)"),
    ("latency", "latency p95 ms"),
    ("setup", "POST->publish p95 ms"),
    ("pass", "pass"),
)


def _ramp_row(level: dict[str, Any], floor: float) -> dict[str, str]:
    fraction = level["packets"]["processedFraction"]
    return {
        "calls": str(level["calls"]),
        "admitted": str(level.get("admitted", level["calls"])),
        "cpu": fmt(level["cpuPercentPerCall"], 3),
        "floor": fmt(level["cpuPercentPerCall"] / floor if floor else None),
        "pss": fmt(level["pssMiBPerCall"]),
        "processed": fmt(fraction * 100 if fraction is not None else None, 3),
        "gap": fmt(level["continuity"]["maxTimelineGapMs"], 1),
        "lag": lag_by_process(level["loopLagMs"]),
        "latency": fmt(level["sampled"]["latencyMs"]["p95"], 0),
        "setup": fmt(level["postToPublishMs"]["p95"], 0),
        "pass": "yes" if level["pass"] else "NO",
    }


def lag_by_process(lag: dict[str, Any]) -> str:
    """Loop lag p99 of the daemon, then of each media worker: which process lags, not only the worst."""
    workers = [lag["workers"][index].get("p99") for index in sorted(lag.get("workers", {}), key=int)]
    return " / ".join(fmt(value, 1) for value in [lag.get("main", {}).get("p99"), *workers])


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("| " + " | ".join("-" * w for w in widths) + " |")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


def print_ramp(levels: list[dict[str, Any]], floor: dict[str, float]) -> None:
    rows = [_ramp_row(level, floor["cpuPercentPerCall"]) for level in levels]
    print(f"\nbridge ramp (encoder floor {floor['cpuPercentPerCall']:.3f} % of a core per call)")
    print(
        table([title for _, title in RAMP_COLUMNS], [[row[key] for key, _ in RAMP_COLUMNS] for row in rows]),
        flush=True,
    )


def print_side_by_side(bridge: dict[str, Any], ffmpeg: dict[str, Any], floor: dict[str, float]) -> None:
    def both(getter: Any, digits: int = 2) -> list[str]:
        return [fmt(getter(bridge), digits), fmt(getter(ffmpeg), digits)]

    rows = [
        ["calls", *both(lambda r: r["calls"])],
        ["CPU % of a core per call", *both(lambda r: r["cpuPercentPerCall"], 3)],
        ["CPU cores in total", *both(lambda r: r["cpuCores"], 3)],
        ["PSS MiB per call", *both(lambda r: r["pssMiBPerCall"])],
        ["PSS MiB in total", *both(lambda r: r["pssMiBTotal"], 1)],
        ["max timeline gap ms (all recordings)", *both(lambda r: r["continuity"]["maxTimelineGapMs"], 1)],
        ["max arrival gap ms (sampled pulls)", *both(lambda r: r["sampled"]["maxArrivalGapMs"], 1)],
        ["silent fraction (sampled, max)", *both(lambda r: r["sampled"]["maxSilentFraction"], 4)],
        ["click latency p50 ms", *both(lambda r: r["sampled"]["latencyMs"]["p50"], 0)],
        ["click latency p95 ms", *both(lambda r: r["sampled"]["latencyMs"]["p95"], 0)],
    ]
    print(f"\nbridge vs ffmpeg-per-call (encoder floor {floor['cpuPercentPerCall']:.3f} % per call)")
    print(table(["", "bridge", "ffmpeg-per-call"], rows), flush=True)
