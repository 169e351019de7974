"""baresip as the far end: answers, plays a tone, a file or H.264 video, and is driven over ctrl_tcp."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from tests.support.ports import free_even_range, free_port, free_udp_tcp_pair
from tests.support.process import PeerProcess
from tests.support.waiting import tcp_open

BARESIP_MODULES = "/usr/lib/baresip/modules"


BARESIP_CONFIG = """
poll_method epoll
sip_listen {sip_host}:{port}
call_max_calls {max_calls}
net_interface {host}
rtp_ports {rtp_first}-{rtp_last}
audio_player aubridge,nil
audio_source {source}
ausrc_srate 48000
ausrc_channels 2
module_path {modules}
module g711.so
module g722.so
module opus.so
module ausine.so
module aufile.so
module aubridge.so
module srtp.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""


BARESIP_VIDEO_CONFIG = """
module avcodec.so
module fakevideo.so
video_source fakevideo,nil
video_size {width}x{height}
video_bitrate 800000
video_fps {fps}
"""


class Baresip:
    """The far end: auto-answers ``sip:uas@...`` with PCMU and plays a tone (or a WAV file)."""

    def __init__(
        self,
        workdir: Path,
        source: str = "ausine,440",
        user: str = "uas",
        host: str = "127.0.0.1",
        video: tuple[int, int, int] | None = None,
        max_calls: int = 16,
    ) -> None:
        """``video`` = (width, height, fps): also send H.264 from baresip's fake camera (avcodec, libx264);
        ``max_calls``: calls at once (each has RTP ports of its own)."""
        self.host = host
        uri_host = f"[{host}]" if ":" in host else host
        self.dir = workdir / ("baresip" if host == "127.0.0.1" else "baresip6")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_tcp_pair()
        self.ctrl_port = free_port()
        self.user = user
        first, last = free_even_range(20 if max_calls <= 16 else 4 * max_calls)  # RTP and RTCP, to spare
        (self.dir / "config").write_text(
            BARESIP_CONFIG.format(
                max_calls=max_calls,
                port=self.port,
                rtp_first=first,
                rtp_last=last,
                source=source,
                modules=BARESIP_MODULES,
                ctrl_port=self.ctrl_port,
                host=host,
                sip_host=uri_host,
            )
            + (BARESIP_VIDEO_CONFIG.format(width=video[0], height=video[1], fps=video[2]) if video else "")
        )
        (self.dir / "accounts").write_text(
            f"<sip:{user}@{uri_host}:{self.port};transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU\n"
            f"<sip:ringer@{uri_host}:{self.port};transport=udp>;regint=0;answermode=manual;audio_codecs=PCMU\n"
            f"<sip:secure@{uri_host}:{self.port};transport=udp>;regint=0;answermode=auto;audio_codecs=PCMU;"
            "mediaenc=srtp-mand\n"
            + "".join(
                f"<sip:{name}@{uri_host}:{self.port};transport=udp>;regint=0;answermode=auto;audio_codecs={codec}\n"
                for name, codec in (("pcma", "PCMA"), ("g722", "G722"), ("opus", "opus"))
            )
        )
        (self.dir / "contacts").write_text("")
        self.process = PeerProcess("baresip", ["baresip", "-f", str(self.dir)], self.dir / "baresip.log")
        self.process.wait_for(lambda: tcp_open(self.ctrl_port), 10, "ctrl_tcp listener")

    def command(self, command: str, params: str = "") -> None:
        """Send a ctrl_tcp command (netstring-framed JSON)."""
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=2) as sock:
            sock.sendall(str(len(body)).encode() + b":" + body + b",")
            time.sleep(0.1)

    def hangup(self) -> None:
        self.command("hangup")

    def log(self) -> str:
        return self.process.log_text()

    def stop(self) -> None:
        self.process.stop()
