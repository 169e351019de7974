"""sd_notify(3) datagrams and the watchdog interval derived from systemd's environment."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bridge.daemon.sdnotify import Notifier


def test_fields_arrive_as_one_datagram(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"})
        notifier.notify("READY=1", "STATUS=2 active calls")
        assert sock.recv(100) == b"READY=1\nSTATUS=2 active calls"
        assert notifier.watchdog_interval == 15.0
        notifier.close()


def test_abstract_socket_address() -> None:
    name = f"@bridge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name[1:])
        notifier = Notifier({"NOTIFY_SOCKET": name})
        notifier.notify("STOPPING=1")
        assert sock.recv(100) == b"STOPPING=1"
        notifier.close()


def test_no_socket_no_watchdog_and_foreign_watchdog_pid() -> None:
    assert not Notifier({}).enabled
    Notifier({}).notify("READY=1")  # without systemd: a no-op, not an error
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None
    other_pid = str(os.getpid() + 1)
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": other_pid}).watchdog_interval is None


def test_vanished_socket_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    notifier.notify("READY=1")
    assert "sd_notify failed" in caplog.text
    notifier.close()
