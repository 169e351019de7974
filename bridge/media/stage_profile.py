"""Where a media worker's CPU goes, stage by stage, for ``python -m bench.stages``.

Off unless the worker starts with ``BRIDGE_STAGE_PROFILE=1`` in its environment: then
:func:`install` wraps the functions that make up each stage with ``time.thread_time``
(CPU time of the worker's thread, so a worker that the kernel puts aside for another
process is not billed for it). Stages nest (the encode stage runs inside the resample stage's caller), so each
wrapper adds only its *exclusive* time: a stage's total never counts a stage inside it.
The totals travel in the worker's once-a-second stats; what no stage covers (the event
loop, timers, task steps, wake-ups) is the worker's CPU time minus the stages' sum.

Each wrapper costs two clock reads and some bookkeeping (about a microsecond in all): part of it
falls between its clock reads (billed to the stage itself), the rest before and after them (billed
to the stage around it, :data:`PARENT`). :meth:`StageClock.calibrate` measures both parts on the
worker at start, and the bench subtracts them, per call, from the stages they land in.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

ENV = "BRIDGE_STAGE_PROFILE"

# stage -> the functions it is made of, as (module, class or "", attribute)
STAGES: dict[str, list[tuple[str, str, str]]] = {
    "receive": [
        ("bridge.media.call_media", "CallMedia", "_read_rtp"),  # the compiled path, and the Python one inside
        ("bridge.media.sources", "RtpSource", "receive_datagram"),
        ("bridge.media.sources", "FeedSource", "push"),
    ],
    "playout": [("rtp.playout", "PlayoutBuffer", "pull")],
    "resample": [
        ("bridge.media.upsample", "IntegerUpsampler", "process"),
        ("bridge.media.upsample", "IntegerUpsampler", "process_into"),
    ],
    "frames": [
        ("bridge.media.encoder", "AacEncoder", "_encode_upsampled"),
        ("bridge.media.encoder", "AacEncoder", "_encode_plane"),
    ],
    "encode": [("bridge.media.encoder", "AacEncoder", "_encode_frame")],
    "mux": [("bridge.media.muxer", "FlvMuxer", "mux")],
    "chunking": [("bridge.rtmp.client", "RtmpClientCore", "send_media")],
    "socket": [("bridge.rtmp.publisher", "RtmpPublisher", "_flush")],
    "rtp send": [("bridge.media.call_media", "CallMedia", "_send_due")],
    "stats": [("bridge.media.worker", "MediaWorker", "stats_message")],
    # the glue around the stages above, each net of the stages it calls
    "pipeline glue": [("bridge.media.pipeline", "MediaPipeline", "tick")],
    "publisher glue": [("bridge.media.stream", "StreamPublisher", "send")],
    "tick glue": [("bridge.media.call_media", "CallMedia", "tick")],
    "ticker": [("bridge.media.ticker", "Ticker", "_fire")],
}


# the stage each stage is called from (where its wrapper's cost outside its clock reads lands)
PARENT: dict[str, str] = {
    "receive": "tick glue",
    "playout": "pipeline glue",
    "resample": "pipeline glue",
    "frames": "pipeline glue",
    "encode": "frames",
    "mux": "tick glue",
    "publisher glue": "tick glue",
    "chunking": "publisher glue",
    "socket": "publisher glue",
    "pipeline glue": "tick glue",
    "tick glue": "ticker",
}
CALIBRATION_CALLS = 20000


class StageClock:
    """Exclusive seconds and call counts per stage."""

    def __init__(self, stages: list[str] | None = None) -> None:
        names = list(STAGES) if stages is None else stages
        self.seconds: dict[str, float] = dict.fromkeys(names, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(names, 0)
        self._children: list[float] = []  # time spent in nested stages, per open frame
        self.inside_ns = 0.0  # a wrapper's own cost per call between its clock reads (calibrate)
        self.outside_ns = 0.0  # and before and after them, billed to the caller's stage

    def calibrate(self, runs: int = CALIBRATION_CALLS) -> None:
        """Measure the wrappers' own cost: a wrapped no-op called ``runs`` times from a wrapped loop,
        against the same loop and no-op unwrapped (best of five)."""
        inside, outside = [], []
        for _ in range(5):
            probe = StageClock(["inner", "outer"])
            nothing = _nothing
            inner = probe.wrap("inner", nothing)
            probe.wrap("outer", _call_times)(inner, runs)
            started = time.thread_time()
            _call_times(nothing, runs)
            bare = time.thread_time() - started
            inside.append(probe.seconds["inner"] / runs)
            outside.append((probe.seconds["outer"] - bare) / runs)
        self.inside_ns, self.outside_ns = min(inside) * 1e9, max(min(outside) * 1e9, 0.0)

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        clock, seconds, calls, children = time.thread_time, self.seconds, self.calls, self._children

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            children.append(0.0)
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = clock() - started
                inner = children.pop()
                seconds[stage] += elapsed - inner
                calls[stage] += 1
                if children:
                    children[-1] += elapsed

        return timed

    def report(self) -> dict[str, float]:
        totals = {f"{stage}.seconds": round(value, 6) for stage, value in self.seconds.items()}
        totals.update({f"{stage}.calls": float(value) for stage, value in self.calls.items()})
        totals.update(
            {"profiler.inside_ns": round(self.inside_ns, 1), "profiler.outside_ns": round(self.outside_ns, 1)}
        )
        return totals


def _nothing() -> None:
    return None


def _call_times(function: Callable[[], None], runs: int) -> None:
    for _ in range(runs):
        function()


PROFILE: StageClock | None = None


def install() -> StageClock | None:
    """Wrap every stage's functions, if the environment asks for it; idempotent."""
    global PROFILE
    if PROFILE is not None or os.environ.get(ENV) != "1":
        return PROFILE
    import importlib

    PROFILE = StageClock()
    PROFILE.calibrate()
    for stage, places in STAGES.items():
        for module_name, class_name, attribute in places:
            owner = getattr(importlib.import_module(module_name), class_name)
            setattr(owner, attribute, PROFILE.wrap(stage, getattr(owner, attribute)))
    return PROFILE


def report() -> dict[str, float]:
    return PROFILE.report() if PROFILE is not None else {}
