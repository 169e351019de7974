"""The usual way: one ffmpeg process per call, reading the call's RTP and publishing RTMP.

Same input (the load generator's PCMU streams) and the same output settings as the
bridge (AAC-LC, sample rate, bitrate, coder). Only the media part is measured: the
SIP server (Asterisk/FreeSWITCH) that would sit in front of it is not counted. With a
slate, each ffmpeg also encodes the still picture the way users do it today
(``-loop 1 -i picture -tune stillimage``); several destinations use FFmpeg's tee muxer
(encoded once, written to each).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bridge.model import OutputSpec, VideoSpec
from bridge.slate_files import BUILT_IN_CARD
from tests.support.udp_peer import sdp_body


def ffmpeg_command(sdp: Path, output: OutputSpec, urls: list[str], video: VideoSpec | None = None) -> list[str]:
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp", "-i", str(sdp)]
    if video is not None:
        command += ["-re", "-loop", "1", "-framerate", str(video.fps), "-i", str(BUILT_IN_CARD)]
    if output.codec == "pcmu":
        command += ["-c:a", "copy"]  # G.711 µ-law passed through into FLV, as the bridge does
    else:
        command += ["-c:a", "aac", "-ar", str(output.sample_rate), "-ac", "1", "-b:a", str(output.bitrate)]
        if output.aac_coder:
            command += ["-aac_coder", output.aac_coder]
    if video is not None:
        gop = str(round(video.fps * video.keyframe_seconds))
        command += ["-map", "0:a", "-map", "1:v", "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage"]
        command += ["-s", f"{video.width}x{video.height}", "-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop]
        command += ["-sc_threshold", "0", "-bf", "0"]
    if len(urls) == 1:
        return [*command, "-f", "flv", urls[0]]
    if video is None:
        command += ["-map", "0:a"]  # the tee muxer maps nothing by itself
    return [*command, "-f", "tee", "|".join(f"[f=flv]{url}" for url in urls)]


class FfmpegPerCall:
    """N ffmpeg processes; stream i listens for RTP on ``first_port + 2 i``."""

    def __init__(
        self,
        workdir: Path,
        calls: int,
        first_port: int,
        output: OutputSpec,
        rtmp_url: str,
        video: VideoSpec | None = None,
        destinations: int = 1,
    ) -> None:
        self.dir = workdir / "ffmpeg"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports = [first_port + 2 * i for i in range(calls)]
        self.names = [f"ff{i}" for i in range(calls)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for name, port in zip(self.names, self.ports, strict=True):
            sdp = self.dir / f"{name}.sdp"
            sdp.write_text(sdp_body(port, "RTP/AVP 0", "rtpmap:0 PCMU/8000", "recvonly"))
            log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 (the process owns it)
            urls = [f"{rtmp_url}/{name}"] + [f"{rtmp_url}/{name}-{i}" for i in range(1, destinations)]
            command = ffmpeg_command(sdp, output, urls, video)
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=log))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
