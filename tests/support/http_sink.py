"""A plain HTTP server on a loopback address that answers every GET with one body and keeps the
headers of each request it got: a page of another origin, or a place requests must never reach."""

from __future__ import annotations

import http.server
import threading
from typing import Any

from tests.support.ports import free_port


class HttpSink:
    def __init__(self, host: str = "127.0.0.1", body: bytes = b"{}", content_type: str = "application/json") -> None:
        self.requests: list[dict[str, str]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                sink.requests.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer((host, free_port()), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)
