"""Running a peer as a child process that a fixture owns (own process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class PeerProcess:
    """A child process with its output in a log file, stopped with its whole group."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_text()[-3000:]}")
            if predicate():
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.name}: {what} not seen in {timeout}s:\n{self.log_text()[-3000:]}")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        self.wait_for(lambda: text in self.log_text(), timeout, repr(text))

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (twice, as baresip needs during a call), then SIGKILL."""
        for signum in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        return self.proc.returncode
