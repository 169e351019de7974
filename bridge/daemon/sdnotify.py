"""systemd's notification protocol (sd_notify(3)) without a library: datagrams to $NOTIFY_SOCKET.

READY=1 once SIP, RTP and REST are up; STATUS= with the number of active calls;
WATCHDOG=1 from the event loop at half of $WATCHDOG_USEC (a stuck loop stops the
pings and systemd restarts the service); STOPPING=1 when shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("bridge.systemd")


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self._address = address
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *fields: str) -> None:
        """Send ``KEY=value`` lines; a missing or full socket is logged, never fatal."""
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)

    async def watchdog(self, status: Callable[[], str]) -> None:
        """Ping WATCHDOG=1 (with the current STATUS=) at half the watchdog timeout, from the loop."""
        if self.watchdog_interval is None:
            return
        while True:
            self.notify("WATCHDOG=1", f"STATUS={status()}")
            await asyncio.sleep(self.watchdog_interval)

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
