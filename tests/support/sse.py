"""A Server-Sent Events client of our own for tests, written from the WHATWG HTML "server-sent
events" parsing rules (fields ``event``, ``data``, ``id``; a blank line dispatches), not from the
daemon's code. It runs on a thread and keeps every event it received."""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any

from tests.support.daemon import BridgeDaemon


@dataclass(frozen=True)
class ServerEvent:
    event: str
    id: str
    data: dict[str, Any]


class SseCollector:
    def __init__(self, daemon: BridgeDaemon, path: str) -> None:
        headers = {"Authorization": f"Bearer {daemon.token}"} if daemon.token else {}
        self._request = urllib.request.Request(daemon.base_url + path, headers=headers)
        self.events: list[ServerEvent] = []
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.connected.wait(10)

    def _read(self) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        with urllib.request.urlopen(self._request, timeout=30) as stream:
            self.connected.set()
            for raw in stream:
                if self._stopping.is_set():
                    return
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if data:
                        payload = json.loads("\n".join(data))
                        self.events.append(ServerEvent(fields.get("event", "message"), fields.get("id", ""), payload))
                    fields, data = {}, []
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        data.append(value)
                    else:
                        fields[name] = value

    def of(self, kind: str, call_id: str | None = None) -> list[ServerEvent]:
        wanted = [e for e in list(self.events) if e.event == kind]
        return [e for e in wanted if call_id is None or e.data.get("callId") == call_id]

    def stats_of(self, call_id: str) -> list[dict[str, Any]]:
        """Every ``calls.stats`` entry of ``call_id`` received so far."""
        return [c for e in self.of("calls.stats") for c in e.data["calls"] if c.get("callId") == call_id]

    def stop(self) -> None:
        self._stopping.set()
