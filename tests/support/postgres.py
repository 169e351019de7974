"""A real PostgreSQL server (Debian's) on a free port on 127.0.0.1, in a directory of its own.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user (the
directory is made outside pytest's private temporary tree so that user can reach it). ``psql``
reads what the bridge wrote: our code never judges its own rows.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.support.ports import free_port
from tests.support.process import PeerProcess
from tests.support.secrets import register_secret

BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "pg-Secret-7f3a91c2"  # accepted and ignored (trust): in the URL for the secret scan to look for


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bridge-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.port = free_port()
        self.data = self.dir / "data"
        subprocess.run(
            _as_owner([str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        register_secret(PASSWORD)
        self.process: PeerProcess | None = None
        self.start()

    def start(self) -> None:
        argv = [str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir)]
        argv += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"]
        self.process = PeerProcess("postgres", _as_owner(argv), self.dir / "postgres.log")
        self.process.wait_for(self._ready, 30, "PostgreSQL accepting connections")

    def _ready(self) -> bool:
        probe = [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database (one per test); its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> list[list[str]]:
        """Rows as psql prints them unaligned (``|`` between columns)."""
        argv = [str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
        result = subprocess.run([*argv, "-At", "-F", "\x1f", "-c", sql], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"psql: {result.stderr}")
        return [line.split("\x1f") for line in result.stdout.splitlines() if line]

    def stop(self) -> None:
        """A fast shutdown (SIGINT: clients are disconnected; SIGTERM would wait for them)."""
        if self.process is not None:
            self.process.signal(signal.SIGINT)
            self.process.proc.wait(30)
            self.process.stop()
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
