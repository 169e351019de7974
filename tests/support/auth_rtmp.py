"""The publish-authenticating RTMP server (tests/support/rtmp_auth_server.py) as a fixture's peer."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.process import PeerProcess
from tests.support.secrets import register_secret


class AuthRtmpServer:
    """A Wowza-like ``live`` application that demands ``authmod=adobe`` or ``llnw``."""

    def __init__(self, workdir: Path, user: str, password: str, authmod: str) -> None:
        self.dir = workdir / f"rtmp-auth-{authmod}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user, self.password, self.authmod = user, password, authmod
        register_secret(password)
        argv = [
            sys.executable,
            "-m",
            "tests.support.rtmp_auth_server",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
        ]
        argv += ["--user", user, "--password", password, "--authmod", authmod]
        self.process = PeerProcess("rtmp-auth", argv, self.dir / "server.log", cwd=Path(__file__).resolve().parents[2])
        self.process.wait_for(lambda: any(e["kind"] == "listening" for e in self.events()), 15, "RTMP listener")

    def url(self, password: str | None = None, app: str = "live") -> str:
        return f"rtmp://{self.user}:{password or self.password}@127.0.0.1:{self.port}/{app}"

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.dir / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        events = [json.loads(line) for line in lines]
        return [e for e in events if kind is None or e["kind"] == kind]

    def recording(self, stream: str) -> Path:
        return self.dir / f"{stream}.flv"

    def stop(self) -> None:
        self.process.stop()
