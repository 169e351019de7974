"""A real ``redis-server`` (Debian's) on a free port on 127.0.0.1, without persistence; with a
password (``requirepass``) and/or TLS (``tls-port``, a self-signed certificate) when asked.

``redis-cli`` reads what the bridges wrote, so our code never judges its own keys.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.certificates import make_certificate
from tests.support.ports import free_port
from tests.support.process import PeerProcess
from tests.support.secrets import register_secret


class RedisServer:
    def __init__(self, workdir: Path, password: str = "", tls: bool = False) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password, self.tls = password, tls
        register_secret(password)
        self.key, self.certificate = make_certificate(self.dir) if tls else (None, None)
        self._starts = 0
        self.process: PeerProcess | None = None
        self.start()

    @property
    def url(self) -> str:
        userinfo = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{userinfo}127.0.0.1:{self.port}/0"

    @property
    def cluster_config(self) -> str:
        """What a node's [cluster] section needs beside redis_url (the CA of a TLS Redis)."""
        return f'tls_ca_file = "{self.certificate}"\n' if self.tls else ""

    def start(self) -> None:
        self._starts += 1
        listen = ["--port", "0", "--tls-port", str(self.port)] if self.tls else ["--port", str(self.port)]
        argv = ["redis-server", *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--daemonize", "no", "--dir", str(self.dir)]
        if self.tls:
            argv += ["--tls-cert-file", str(self.certificate), "--tls-key-file", str(self.key)]
            argv += ["--tls-ca-cert-file", str(self.certificate), "--tls-auth-clients", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = PeerProcess("redis-server", argv, self.dir / f"redis{self._starts}.log")
        self.process.wait_for(lambda: self.cli("PING") == "PONG", 15, "redis-server answering PING")

    def _cli(self, *arguments: str) -> list[str]:
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.tls:
            argv += ["--tls", "--cacert", str(self.certificate)]
        if self.password:
            argv += ["-a", self.password]
        return argv + list(arguments)

    def cli(self, *command: str) -> str:
        result = subprocess.run(self._cli("--no-raw", *command), capture_output=True, text=True, timeout=10)
        return result.stdout.strip().strip('"') if result.returncode == 0 else ""

    def keys(self, pattern: str = "*") -> list[str]:
        result = subprocess.run(self._cli("--raw", "KEYS", pattern), capture_output=True, text=True, timeout=10)
        result.check_returncode()
        return sorted(line for line in result.stdout.splitlines() if line)

    def members(self, key: str) -> list[str]:
        """SMEMBERS, sorted."""
        result = subprocess.run(self._cli("--raw", "SMEMBERS", key), capture_output=True, text=True, timeout=10)
        result.check_returncode()
        return sorted(line for line in result.stdout.splitlines() if line)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
