"""A real ``redis-server`` (Debian's) on a free port on 127.0.0.1, without persistence.

``redis-cli`` reads what the bridges wrote, so our code never judges its own keys.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.ports import free_port
from tests.support.process import PeerProcess


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._starts = 0
        self.process: PeerProcess | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._starts += 1
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--daemonize", "no", "--dir", str(self.dir)]
        self.process = PeerProcess("redis-server", argv, self.dir / f"redis{self._starts}.log")
        self.process.wait_for(lambda: self.cli("PING") == "PONG", 15, "redis-server answering PING")

    def cli(self, *command: str) -> str:
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-raw", *command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return result.stdout.strip().strip('"') if result.returncode == 0 else ""

    def keys(self, pattern: str = "*") -> list[str]:
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--raw", "KEYS", pattern]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
        return sorted(line for line in result.stdout.splitlines() if line)

    def members(self, key: str) -> list[str]:
        """SMEMBERS, sorted."""
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--raw", "SMEMBERS", key]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
        return sorted(line for line in result.stdout.splitlines() if line)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
