"""The systemd unit as systemd itself reads it (systemd-analyze verify)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UNIT = REPO / "systemd" / "sip-rtmp-bridge.service"
INSTALLED_EXECUTABLE = "/opt/sip-rtmp-bridge/.venv/bin/sip-rtmp-bridge"


def _service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_systemd_analyze_verify_reports_nothing(tmp_path: Path) -> None:
    """verify exits 0 even on unknown keys or bad values, so any output at all is a failure."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: apt-get install systemd (make test installs it)")
    executable = Path(sys.executable).parent / "sip-rtmp-bridge"
    assert executable.exists(), f"{executable} missing: pip install -e . first"
    unit = tmp_path / UNIT.name  # same unit, with the executable where this checkout installed it
    unit.write_text(UNIT.read_text().replace(INSTALLED_EXECUTABLE, str(executable)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_unit_is_notify_with_watchdog_and_hardening() -> None:
    service = _service_section()
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "Restart": "on-failure",
        "User": "sip-rtmp-bridge",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "SystemCallFilter": "@system-service",
        "StateDirectory": "sip-rtmp-bridge",
        "StateDirectoryMode": "0700",
        "UMask": "0077",
        "ConfigurationDirectory": "sip-rtmp-bridge",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert int(service["WatchdogSec"]) >= 10
    assert int(service["LimitNOFILE"]) >= 2 * 10000  # two sockets per RTP port pair, default range
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_systemd_analyze_security_finds_files_private() -> None:
    """systemd's own assessment: files the service creates are not world-readable (UMask=)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: apt-get install systemd (make test installs it)")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line[:1] in "✓✗" and len(line.split()) > 1}
    assert lines["UMask="].startswith("✓"), lines["UMask="]
