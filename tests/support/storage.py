"""Storage the bridge uploads recordings to: Azurite (Microsoft's Azure Storage emulator, from npm)
and a small HTTP server that takes PUTs (the shape of S3/GCS pre-signed uploads)."""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.process import PeerProcess
from tests.support.waiting import tcp_open

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "tests" / "console" / "node_modules" / ".bin" / "azurite-blob"
# The emulator's well-known development account (published in Azurite's documentation).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """``azurite-blob`` on a free port; :meth:`stop` and :meth:`start` keep its data (``--location``)."""

    def __init__(self, workdir: Path) -> None:
        if not AZURITE.exists() or shutil.which("node") is None:
            pytest.fail(f"azurite is missing: run npm ci in {AZURITE.parents[2]} (make test does it)")
        self.dir = workdir / "azurite"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.starts = 0
        self.start()

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{DEV_ACCOUNT};"
        )

    def start(self) -> None:
        self.starts += 1
        argv = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", str(self.dir)]
        self.process = PeerProcess(
            "azurite", [*argv, "--silent", "--skipApiVersionCheck"], self.dir / f"azurite{self.starts}.log"
        )
        self.process.wait_for(lambda: tcp_open(self.port), 30, "Azurite's blob endpoint")

    def stop(self) -> None:
        self.process.stop()


@dataclass
class Received:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class PutServer:
    """Answers the first ``fail_first`` PUTs with 503, then stores the body and answers 200 with its
    MD5 as the ETag (as S3 does for a single PUT)."""

    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.attempts += 1
                if server.attempts <= server.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                server.received.append(Received(self.path, body, dict(self.headers)))
                self.send_response(200)
                self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
