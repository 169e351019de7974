"""A local HTTP server that receives the bridge's webhooks, verifies them and can fail on purpose."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.secrets import capture

SIGNATURE_HEADER = "X-Bridge-Signature"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0) -> bool:
    """The documented scheme, written here from the README (not the bridge's code):
    ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``, fresh within ``tolerance``."""
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    if match is None or abs(time.time() - int(match[1])) > tolerance:
        return False
    expected = hmac.new(secret.encode(), match[1].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match[2])


class WebhookReceiver:
    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.attempts = 0
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                capture("webhook-bodies", body)
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                if not verify(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.events.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
