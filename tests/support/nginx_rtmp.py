"""nginx with libnginx-mod-rtmp on 127.0.0.1: the RTMP server the bridge publishes to (plain and TLS)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from tests.support.certificates import make_certificate
from tests.support.ports import free_port
from tests.support.process import PeerProcess
from tests.support.waiting import tcp_open

NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


NGINX_CONF = """
load_module {module};
load_module {stream_module};
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            notify_method get;
            on_publish_done http://127.0.0.1:{http_port}/publish_done;
        }}
        application rec {{
            live on;
            record all;
            record_path {dir}/rec;
            record_unique off;
        }}
        application guarded {{
            live on;
            on_publish http://127.0.0.1:{http_port}/deny;
        }}
    }}
}}
stream {{
    server {{
        listen 127.0.0.1:{rtmps_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        proxy_pass 127.0.0.1:{rtmp_port};
    }}
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{http_port};
        location /stat {{ rtmp_stat all; }}
        location /deny {{ return 403; }}
        location /publish_done {{ access_log {dir}/publish_done.log; return 200; }}
    }}
}}
"""


class NginxRtmp:
    """nginx with libnginx-mod-rtmp, application ``live``, and rtmp_stat over HTTP."""

    def __init__(self, workdir: Path, name: str = "nginx", host: str = "127.0.0.1", netns: str = "") -> None:
        """``host``/``netns``: listen on ``host`` inside the network namespace ``netns`` (tests/support/netns.py)."""
        self.host, self.netns = host, netns
        self.dir = workdir / name
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.rtmp_port = free_port()
        self.http_port = free_port()
        self.rtmps_port = free_port()
        key, self.certificate = make_certificate(self.dir)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                module=NGINX_RTMP_MODULE,
                stream_module=NGINX_STREAM_MODULE,
                dir=self.dir,
                rtmp_port=self.rtmp_port,
                http_port=self.http_port,
                rtmps_port=self.rtmps_port,
                cert=self.certificate,
                key=key,
            )
        )
        if host != "127.0.0.1":
            conf.write_text(conf.read_text().replace("listen 127.0.0.1:", f"listen {host}:"))
        (self.dir / "rec").mkdir(exist_ok=True)
        self._conf = conf
        self.start()

    def start(self) -> None:
        argv = ["nginx", "-p", str(self.dir), "-c", str(self._conf), "-e", str(self.dir / "error.log")]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.process = PeerProcess("nginx", argv, self.dir / "stdout.log")
        self.process.wait_for(lambda: tcp_open(self.rtmp_port, self.host), 10, "RTMP listener")

    def recording(self, stream: str) -> Path:
        """The FLV nginx recorded for ``stream`` in application ``rec``."""
        return self.dir / "rec" / f"{stream}.flv"

    @property
    def url(self) -> str:
        return f"rtmp://{self.host}:{self.rtmp_port}/live"

    def stat(self) -> str:
        with urllib.request.urlopen(f"http://{self.host}:{self.http_port}/stat", timeout=2) as reply:
            return str(reply.read().decode())

    def stream_stat(self, name: str) -> str | None:
        """The <stream> element of ``name`` in rtmp_stat, or None if not published."""
        for block in re.findall(r"<stream>.*?</stream>", self.stat(), re.S):
            if f"<name>{name}</name>" in block:
                return str(block)
        return None

    def bytes_in(self, name: str) -> int:
        """What nginx-rtmp received of ``name`` so far (its <bytes_in>), 0 if not published."""
        stat = self.stream_stat(name)
        found = re.search(r"<bytes_in>(\d+)</bytes_in>", stat or "")
        return int(found.group(1)) if found else 0

    def unpublished(self) -> list[str]:
        """Stream names nginx reported as unpublished (on_publish_done), oldest first."""
        log = self.dir / "publish_done.log"
        text = log.read_text() if log.exists() else ""
        return re.findall(r"[?&]name=([^&\s]+)", text)

    def stop(self) -> None:
        self.process.stop()
