"""The usual way: one ffmpeg process per call, reading the call's RTP and publishing RTMP.

Same input (the load generator's PCMU streams) and the same output settings as the
bridge (AAC-LC, sample rate, bitrate, coder). Only the media part is measured: the
SIP server (Asterisk/FreeSWITCH) that would sit in front of it is not counted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bridge.model import OutputSpec
from tests.support.udp_peer import sdp_body


def ffmpeg_command(sdp: Path, output: OutputSpec, url: str) -> list[str]:
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp"]
    command += ["-i", str(sdp), "-c:a", "aac", "-ar", str(output.sample_rate), "-ac", "1"]
    command += ["-b:a", str(output.bitrate)]
    if output.aac_coder:
        command += ["-aac_coder", output.aac_coder]
    return [*command, "-f", "flv", url]


class FfmpegPerCall:
    """N ffmpeg processes; stream i listens for RTP on ``first_port + 2 i``."""

    def __init__(self, workdir: Path, calls: int, first_port: int, output: OutputSpec, rtmp_url: str) -> None:
        self.dir = workdir / "ffmpeg"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports = [first_port + 2 * i for i in range(calls)]
        self.names = [f"ff{i}" for i in range(calls)]
        self.processes: list[subprocess.Popen[bytes]] = []
        for name, port in zip(self.names, self.ports, strict=True):
            sdp = self.dir / f"{name}.sdp"
            sdp.write_text(sdp_body(port, "RTP/AVP 0", "rtpmap:0 PCMU/8000", "recvonly"))
            log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 (the process owns it)
            self.processes.append(
                subprocess.Popen(ffmpeg_command(sdp, output, f"{rtmp_url}/{name}"), stdout=log, stderr=log)
            )

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
