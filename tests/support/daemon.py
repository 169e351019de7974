"""The daemon under test, started as a subprocess with its own config and free ports."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.ports import free_even_range, free_port, free_udp_tcp_pair
from tests.support.process import PeerProcess
from tests.support.secrets import capture, register_output_dir, register_secret

CONFIG = """
[rest]
listen = "127.0.0.1:{rest_port}"

[sip]
listen = "127.0.0.1:{sip_port}"
public_address = ""
answer_timeout = 20

[rtp]
port_range = "{rtp_first}-{rtp_last}"
timeout = {rtp_timeout}

[log]
level = "{level}"

[history]
path = "{history}"
url = "{history_url}"
"""


class BridgeDaemon:
    """``python -m bridge`` with a config written for this test run."""

    def __init__(
        self,
        workdir: Path,
        rtp_timeout: float = 30,
        level: str = "debug",
        env: dict[str, str] | None = None,
        token: str = "",
        extra_config: str = "",
        rtp_ports: int = 40,
        history_url: str = "",
        start: bool = True,
        open_files: int = 0,
    ) -> None:
        self.token = token
        register_secret(token)
        self.last_headers: dict[str, str] = {}
        self.dir = workdir / "bridge"
        self.dir.mkdir(parents=True, exist_ok=True)
        register_output_dir(self.dir)
        self.rest_port = free_port()
        self.sip_port = free_udp_tcp_pair()
        first, last = free_even_range(rtp_ports)
        self.rtp_range = f"{first}-{last}"
        self.config_path = self.dir / "bridge.toml"
        self.config_path.write_text(
            CONFIG.format(
                rest_port=self.rest_port,
                sip_port=self.sip_port,
                rtp_first=first,
                rtp_last=last,
                rtp_timeout=rtp_timeout,
                level=level,
                history=self.dir / "history.sqlite3",
                history_url=history_url,
            )
            + extra_config
        )
        self._env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self._prefix = ["prlimit", f"--nofile={open_files}:{open_files}"] if open_files else []
        self._starts = 0
        if start:
            self.start()

    def start(self) -> None:
        self._starts += 1
        self.process = PeerProcess(
            "sip-rtmp-bridge",
            [*self._prefix, sys.executable, "-m", "bridge", "--config", str(self.config_path)],
            self.dir / f"daemon{'' if self._starts == 1 else self._starts}.log",
            env=self._env,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.process.wait_for(self._answers, timeout=20, what="REST API")

    def kill(self) -> None:
        """SIGKILL: an unclean stop, nothing is flushed or hung up."""
        self.process.signal(signal.SIGKILL)
        self.process.proc.wait(5)

    def _answers(self) -> bool:
        try:
            return self.request("GET", "/RESTCall/health")[0] in (200, 401)
        except OSError:
            return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        token = self.token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as reply:
                self.last_headers = dict(reply.headers)
                answer = reply.read()
                capture("api-responses", answer)
                return reply.status, json.loads(answer or b"null")
        except urllib.error.HTTPError as exc:
            self.last_headers = dict(exc.headers)
            answer = exc.read()
            capture("api-responses", answer)
            return exc.code, json.loads(answer or b"null")

    def raw(self, method: str, path: str) -> str:
        """A non-JSON resource (e.g. /metrics) as text."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(self.base_url + path, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=5) as reply:
            answer = reply.read()
            capture("api-responses", answer)
            return str(answer.decode())

    def call(self, call_id: str) -> dict[str, Any] | None:
        status, body = self.request("GET", f"/RESTCall/calls/{call_id}")
        return body if status == 200 else None

    def wait_state(self, call_id: str, states: set[str], timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.call(call_id)
            if last is not None and last["state"] in states:
                return last
            time.sleep(0.05)
        raise TimeoutError(
            f"call {call_id} never reached {states}; last seen {last}\n{self.process.log_text()[-4000:]}"
        )

    def active_ids(self) -> list[str]:
        """callIds in GET /RESTCall/calls (active calls only)."""
        status, body = self.request("GET", "/RESTCall/calls")
        assert status == 200, body
        return [call["callId"] for call in body["calls"]]

    def wait_gone(self, call_id: str, timeout: float = 20) -> None:
        """Until the call has left the active list."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if call_id not in self.active_ids():
                return
            time.sleep(0.05)
        raise TimeoutError(f"call {call_id} still active after {timeout}s")

    def log(self) -> str:
        return self.process.log_text()

    def stop(self) -> int | None:
        return self.process.stop(timeout=15)
