"""Where a media worker's CPU goes, stage by stage, for ``python -m bench.stages``.

Off unless the worker starts with ``BRIDGE_STAGE_PROFILE=1`` in its environment: then
:func:`install` wraps the functions that make up each stage with ``time.thread_time``
(CPU time of the worker's thread, so a worker that the kernel puts aside for another
process is not billed for it). Stages nest (the encode stage runs inside the resample stage's caller), so each
wrapper adds only its *exclusive* time: a stage's total never counts a stage inside it.
The totals travel in the worker's once-a-second stats; what no stage covers (the event
loop, timers, task steps, wake-ups) is the worker's CPU time minus the stages' sum.

Each wrapper costs two clock reads (about a microsecond in all); the bench reports how many
calls each stage had, so that overhead can be told apart from the stage itself.
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
        ("bridge.media.sources", "RtpSource", "receive_datagram"),
        ("bridge.media.sources", "FeedSource", "push"),
    ],
    "playout": [("rtp.playout", "PlayoutBuffer", "pull")],
    "resample": [("bridge.media.upsample", "IntegerUpsampler", "process")],
    "frames": [("bridge.media.encoder", "AacEncoder", "_encode_upsampled")],
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


class StageClock:
    """Exclusive seconds and call counts per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.calls: dict[str, int] = dict.fromkeys(STAGES, 0)
        self._children: list[float] = []  # time spent in nested stages, per open frame

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
        return totals


PROFILE: StageClock | None = None


def install() -> StageClock | None:
    """Wrap every stage's functions, if the environment asks for it; idempotent."""
    global PROFILE
    if PROFILE is not None or os.environ.get(ENV) != "1":
        return PROFILE
    import importlib

    PROFILE = StageClock()
    for stage, places in STAGES.items():
        for module_name, class_name, attribute in places:
            owner = getattr(importlib.import_module(module_name), class_name)
            setattr(owner, attribute, PROFILE.wrap(stage, getattr(owner, attribute)))
    return PROFILE


def report() -> dict[str, float]:
    return PROFILE.report() if PROFILE is not None else {}
