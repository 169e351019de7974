"""What a video call and a wideband call cost next to a G.711 audio call, same far end, same run.

baresip (fake camera, H.264 from libx264 at 640x360, 25 fps, and a 440 Hz tone) through
kamailio; the bridge publishes to nginx-rtmp. Rounds alternate a G.711 call (`codecs =
["pcmu"]`), a G.722 call (`["g722"]`: 16 kHz decoded with PyAV), an Opus call (`["opus"]`:
48 kHz decoded with libopus) and a video call (`["pcmu", "h264"]`: the far end's H.264 passed
through, not transcoded); each is measured over the window after it publishes, as CPU of
all the daemon's processes minus their idle CPU. Prints a table and a JSON line.

    python -m bench.video_call --seconds 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.one_call import time_to_audio
from bench.procstat import total_cpu, tree
from bench.report import fmt, table
from tests.support.call_bodies import call_body
from tests.support.daemon import BridgeDaemon
from tests.support.kamailio import SipAccount, domain_in_front_of
from tests.support.nginx_rtmp import NginxRtmp

SIZE, FPS = (640, 360), 25
KINDS = (  # (name, baresip account, codecs we offer)
    ("audio", "uas", ["pcmu"]),
    ("g722", "g722", ["g722"]),
    ("opus", "opus", ["opus"]),
    ("video", "uas", ["pcmu", "h264"]),
)


def _cpu_over(pids: list[int], seconds: float) -> float:
    start, wall = total_cpu(pids), time.monotonic()
    time.sleep(seconds)
    return (total_cpu(pids) - start) / (time.monotonic() - wall)


def _one_call(
    daemon: BridgeDaemon, nginx: NginxRtmp, body: dict[str, Any], pids: list[int], seconds: float
) -> dict[str, Any]:
    time_to_audio(daemon, nginx, body)
    time.sleep(1.0)
    cpu = _cpu_over(pids, seconds)
    served = nginx.stream_stat(body["rtmpStream"]) or ""  # what the RTMP server measured, not our counters
    call = daemon.call(body["callId"]) or {}
    daemon.request("POST", "/RESTCall/terminate", {"callId": body["callId"]})
    daemon.wait_gone(body["callId"])
    video = re.search(r"<video>(.*?)</video>", served, re.S)  # parsed by nginx from the AVC sequence header
    track = video[1] if video else ""
    size = re.search(r"<width>(\d+)</width><height>(\d+)</height>", track)
    codec = re.search(r"<codec>(\w+)</codec>", track)
    codecs = [entry.get("codec") for entry in call.get("timeline", []) if entry.get("event") == "codec"]
    return {
        "cpu": cpu,
        "codec": codecs[-1] if codecs else "",
        "videoFrames": call.get("counters", {}).get("videoFramesPublished", 0),
        "serverVideo": f"{codec[1]} {size[1]}x{size[2]}" if codec and size else "",
    }


def run(seconds: float, rounds: int, workdir: Path) -> dict[str, Any]:
    account = SipAccount()
    nginx = NginxRtmp(workdir)
    with domain_in_front_of(workdir, account, video=(*SIZE, FPS)) as domain:
        daemon = BridgeDaemon(workdir / "bridge", level="warning")
        try:
            pids = tree(daemon.process.proc.pid)
            idle = _cpu_over(pids, 3.0)
            measured: dict[str, list[dict[str, Any]]] = {kind: [] for kind, _, _ in KINDS}
            for n in range(rounds):
                for kind, callee, codecs in KINDS:
                    body = call_body(f"{kind}-{n}", f"{kind}{n}", nginx, domain, account)
                    body["callee"], body["connection"]["codecs"] = callee, codecs
                    measured[kind].append(_one_call(daemon, nginx, body, pids, seconds))
        finally:
            daemon.stop()
            nginx.stop()
    return {
        kind: {
            "cpuPercentPerCall": round(statistics.median(r["cpu"] for r in results) * 100 - idle * 100, 3),
            "videoFramesPublished": min(r["videoFrames"] for r in results),
            "serverVideo": results[0]["serverVideo"],
            "codec": results[0]["codec"],
        }
        for kind, results in measured.items()
    } | {"idleCpuPercent": round(idle * 100, 3), "seconds": seconds, "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = run(args.seconds, args.rounds, Path(tempfile.mkdtemp(prefix="bridge-video-")))
    base = result["audio"]["cpuPercentPerCall"]
    cpu = [result[kind]["cpuPercentPerCall"] for kind, _, _ in KINDS]
    rows = [
        ["CPU % of a core per call (daemon, minus idle)", *(fmt(value, 3) for value in cpu)],
        ["against the G.711 call", *(fmt(value / base, 2) + " x" if base > 0 else "-" for value in cpu)],
        ["video frames published (fewest in a round)", *(str(result[k]["videoFramesPublished"]) for k, _, _ in KINDS)],
    ]
    video_size = f"{SIZE[0]}x{SIZE[1]} at {FPS} fps"
    print(f"\none call at a time, median of {args.rounds} rounds of {args.seconds:g} s; video {video_size}")
    print(table(["", "G.711 (PCMU)", "G.722", "Opus", "video (PCMU + H.264)"], rows))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
