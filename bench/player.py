"""What a player gets: live pulls (arrival times, clicks) and recordings (timeline gaps, silence).

A live pull runs in its own process (PyAV holds the GIL while it connects): it reads
the stream for a while, notes the wall-clock arrival of every packet, decodes it, and
reports the arrival time of each marker click, the largest gap between arrivals, the
largest gap in the timeline and the share of silent 20 ms windows.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import numpy as np

CLICK_LEVEL = 0.5  # the tone peaks at 0.09 of full scale, the click near 0.9
SILENT_DBFS = -45.0
SETTLE_SECONDS = 3.0  # packets read while the player probes arrive late: not timed


def _silent_windows(samples: np.ndarray, rate: int) -> tuple[int, int]:
    window = rate // 50
    whole = len(samples) // window * window
    if whole == 0:
        return 0, 0
    frames = samples[:whole].reshape(-1, window).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    silent = int(np.count_nonzero(20 * np.log10(np.maximum(rms, 1e-9)) < SILENT_DBFS))
    return silent, len(rms)


def pull(url: str, seconds: float, conn: Connection) -> None:
    """Process entry: pull ``url`` for ``seconds`` and send the findings over ``conn``."""
    result: dict[str, Any] = {"url": url, "clickArrivals": [], "error": ""}
    try:
        result.update(_pull(url, seconds))
    except (av.error.FFmpegError, OSError) as exc:
        result["error"] = str(exc)
    conn.send(result)


def _pull(url: str, seconds: float) -> dict[str, Any]:
    container = av.open(url, options={"fflags": "nobuffer", "analyzeduration": "500000"}, timeout=15)
    stream = container.streams.audio[0]
    started = time.time()
    clicks: list[float] = []
    timestamps: list[float] = []
    arrivals: list[float] = []
    silent = windows = 0
    for packet in container.demux(stream):
        now = time.time()
        if packet.pts is None:
            continue
        timestamps.append(float(packet.pts * packet.time_base))
        arrivals.append(now)
        for frame in packet.decode():
            samples = frame.to_ndarray()[0]
            found = _silent_windows(samples, frame.sample_rate)
            silent, windows = silent + found[0], windows + found[1]
            settled = now - started > SETTLE_SECONDS
            if settled and np.max(np.abs(samples)) > CLICK_LEVEL and (not clicks or now - clicks[-1] > 0.5):
                clicks.append(now)
        if now - started > seconds:
            break
    container.close()
    steady = [t for t in arrivals if t - started > SETTLE_SECONDS]
    return {
        "clickArrivals": clicks,
        "maxArrivalGapMs": round(float(np.max(np.diff(steady))) * 1000, 1) if len(steady) > 1 else None,
        "maxTimestampStepMs": round(float(np.max(np.diff(timestamps))) * 1000, 1) if len(timestamps) > 1 else None,
        "silentFraction": round(silent / windows, 4) if windows else None,
        "packets": len(timestamps),
    }


def analyse_recording(path: Path) -> dict[str, Any]:
    """Timeline of one recorded stream: length, the largest step between audio packets, video key frames."""
    try:
        with av.open(str(path)) as container:
            audio = container.streams.audio[0]
            video = container.streams.video[0] if container.streams.video else None
            timestamps, keyframes, frames = [], [], 0
            for packet in container.demux(*(s for s in (audio, video) if s is not None)):
                if packet.pts is None:
                    continue
                if packet.stream.type == "audio":
                    timestamps.append(float(packet.pts * packet.time_base))
                else:
                    frames += 1
                    if packet.is_keyframe:
                        keyframes.append(float(packet.pts * packet.time_base))
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        return {"error": str(exc)}
    if len(timestamps) < 2:
        return {"error": "fewer than two audio packets"}
    steps = np.diff(np.array(timestamps))
    key_gap = float(np.diff(keyframes).max()) if len(keyframes) > 1 else None
    return {
        "seconds": round(timestamps[-1] - timestamps[0], 3),
        "maxStepMs": round(float(steps.max()) * 1000, 1),
        "videoFrames": frames,
        "maxKeyframeGapSeconds": key_gap,
    }


def click_latencies(arrivals: list[float], sent: list[float]) -> list[float]:
    """Milliseconds from each click's send to its arrival at the player (matched within 1.5 s)."""
    latencies = []
    for arrival in arrivals:
        candidates = [s for s in sent if 0 < arrival - s < 1.5]
        if candidates:
            latencies.append(round((arrival - max(candidates)) * 1000, 1))
    return latencies
