"""One call's pipeline tick alone (no other calls, no sockets): receive, pull, upsample, encode.

What a 64 ms tick costs in isolation, split into FFmpeg's AAC encoder and the rest, on the
compiled path (rtp._fast) and on the Python reference path in the same run. Beside
``python -m bench.stages`` (every stage in place, under 100 calls' load) it tells the cost of
the code from the cost of running beside other calls (caches, the kernel).

    python -m bench.tick --rate 16000 --ticks 3000
"""

from __future__ import annotations

import argparse
import struct
import time
from typing import Any

import numpy as np
import numpy.typing as npt

import bridge.media.encoder as encoder_module
import bridge.media.upsample as upsample_module
import rtp.playout as playout_module
from bench.report import table
from bridge.media.encoder import new_encoder
from bridge.media.pipeline import MediaPipeline, PlayoutClock
from bridge.model import OutputSpec
from rtp import fast
from rtp.g711 import encode_ulaw
from rtp.playout import PlayoutBuffer
from rtp.receiver import RtpReceiver

FAR = ("192.0.2.1", 4000)


class _Source:
    def __init__(self) -> None:
        self.receiver = RtpReceiver(FAR, playout=PlayoutBuffer(encoding="pcmu"))

    def pull(self, n: int, now: float) -> npt.NDArray[np.int16]:
        return self.receiver.buffer.pull(n, now)


def run(rate: int, ticks: int, compiled: bool) -> tuple[float, float]:
    """Microseconds per tick: all of it, and the AAC encoder's part."""
    saved = playout_module.FAST, upsample_module.FAST
    playout_module.FAST = upsample_module.FAST = fast.FAST if compiled else None
    try:
        return _ticks(rate, ticks)
    finally:
        playout_module.FAST, upsample_module.FAST = saved


def _ticks(rate: int, ticks: int) -> tuple[float, float]:
    source = _Source()
    bitrate = 32000 if rate == 16000 else 64000
    pipeline = MediaPipeline(source, [new_encoder(OutputSpec("aac", rate, bitrate, "fast"))], PlayoutClock(0.0, 0.064))
    tone = (np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    payload = encode_ulaw(tone)
    encoder_seconds = [0.0]
    original = encoder_module.AacEncoder._encode_frame

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = original(self, *args, **kwargs)
        encoder_seconds[0] += time.perf_counter() - started
        return result

    encoder_module.AacEncoder._encode_frame = timed  # type: ignore[method-assign]
    try:
        total, sequence = 0.0, 0
        for tick in range(ticks):
            now = (tick + 1) * 0.064
            started = time.perf_counter()
            for _ in range(4 if tick % 5 == 0 else 3):  # 50 packets a second
                header = struct.pack("!BBHII", 0x80, 0, sequence & 0xFFFF, (sequence * 160) & 0xFFFFFFFF, 5)
                source.receiver.datagram_received(header + payload, FAR, now - 0.001)
                sequence += 1
            pipeline.tick(now)
            total += time.perf_counter() - started
    finally:
        encoder_module.AacEncoder._encode_frame = original  # type: ignore[method-assign]
    return total / ticks * 1e6, encoder_seconds[0] / ticks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--ticks", type=int, default=3000)
    args = parser.parse_args()
    if fast.FAST is None:
        print(f"the compiled path is not available: {fast.describe()}")
    rows = []
    for name, compiled in (("compiled (rtp._fast)", True), ("Python reference", False)):
        if compiled and fast.FAST is None:
            continue
        total, encoder = run(args.rate, args.ticks, compiled)
        rows.append([name, f"{total:.1f}", f"{encoder:.1f}", f"{total - encoder:.1f}"])
    print(f"one call's 64 ms tick alone, AAC at {args.rate} Hz ({args.ticks} ticks; packets pushed in Python)")
    print(table(["path", "µs per tick", "of which AAC encoder", "the rest"], rows))


if __name__ == "__main__":
    main()
