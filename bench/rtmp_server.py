"""nginx-rtmp for the benches: many connections, every stream recorded (``rec``) or not (``live``),
publishes and unpublishes noted.

nginx calls ``on_publish`` before it accepts a publish and ``on_publish_done`` when its publisher
goes; a small HTTP server in the bench answers 200 and notes the wall-clock time per stream name,
which gives "POST to publish start" as the RTMP server saw it, and how often each stream was
published and unpublished.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.nginx_rtmp import NGINX_RTMP_MODULE
from tests.support.ports import free_port
from tests.support.process import PeerProcess
from tests.support.waiting import tcp_open

CONF = """
load_module {module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 16384;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 8192; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application rec {{
            live on;
            record all;
            record_path {dir}/rec;
            record_unique off;
            notify_method get;
            on_publish http://127.0.0.1:{hook_port}/publish;
            on_publish_done http://127.0.0.1:{hook_port}/publish_done;
        }}
        application live {{
            live on;
            notify_method get;
            on_publish http://127.0.0.1:{hook_port}/publish;
            on_publish_done http://127.0.0.1:{hook_port}/publish_done;
        }}
    }}
}}
"""


class PublishHook(ThreadingHTTPServer):
    """Answers nginx's on_publish with 200 and keeps {stream name: first publish time}."""

    request_queue_size = 1024  # hundreds of publishes arrive together; a refused hook refuses the publish

    def __init__(self) -> None:
        self.published: dict[str, float] = {}
        self.publishes: dict[str, int] = {}  # name -> how many times it was published
        self.unpublishes: dict[str, int] = {}  # name -> how many times its publisher went away
        super().__init__(("127.0.0.1", free_port()), _HookHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()


class _HookHandler(BaseHTTPRequestHandler):
    server: PublishHook

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        name = parse_qs(url.query).get("name", [""])[0]
        if url.path == "/publish_done":
            self.server.unpublishes[name] = self.server.unpublishes.get(name, 0) + 1
        else:
            self.server.published.setdefault(name, time.time())
            self.server.publishes[name] = self.server.publishes.get(name, 0) + 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class BenchRtmpServer:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "nginx"
        (self.dir / "rec").mkdir(parents=True, exist_ok=True)
        self.hook = PublishHook()
        self.rtmp_port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(
            CONF.format(
                module=NGINX_RTMP_MODULE, dir=self.dir, rtmp_port=self.rtmp_port, hook_port=self.hook.server_port
            )
        )
        self.process = PeerProcess(
            "nginx",
            ["nginx", "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")],
            self.dir / "stdout.log",
        )
        self.process.wait_for(lambda: tcp_open(self.rtmp_port), 10, "RTMP listener")

    @property
    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/rec"

    @property
    def live_url(self) -> str:
        """The same server without recording (a soak's hundreds of streams would fill the disk)."""
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    def recording(self, name: str) -> Path:
        return self.dir / "rec" / f"{name}.flv"

    def stop(self) -> None:
        self.process.stop()
        self.hook.shutdown()
        self.hook.server_close()
