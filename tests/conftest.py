"""Run-wide checks: no secret given to the bridge may appear in anything the bridge wrote.

Under pytest-xdist each worker scans what its own tests' bridges wrote (with the secrets its tests
registered) and leaves its verdict in a folder the controller made; the controller adds them up,
prints one line and fails the run on any leak.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.support.secrets import OUTPUT_DIRS, SECRETS, leaks, scanned_files

SCAN_DIR = "BRIDGE_TEST_SECRET_SCAN_DIR"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and SCAN_DIR not in os.environ:
        os.environ[SCAN_DIR] = tempfile.mkdtemp(prefix="secret-scan-")  # inherited by the workers


def _own_scan() -> dict[str, object]:
    return {"secrets": len(SECRETS), "files": scanned_files(), "found": leaks()} if OUTPUT_DIRS else {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder = Path(os.environ.get(SCAN_DIR, tempfile.gettempdir()))
    worker = getattr(session.config, "workerinput", {}).get("workerid")
    if worker is not None:
        (folder / f"{worker}.json").write_text(json.dumps(_own_scan()))
        return
    scans = [_own_scan(), *(json.loads(path.read_text()) for path in sorted(folder.glob("*.json")))]
    scans = [scan for scan in scans if scan]
    if not scans:
        return
    found = [line for scan in scans for line in scan["found"]]  # type: ignore[attr-defined]
    secrets = max(int(scan["secrets"]) for scan in scans)  # type: ignore[call-overload]
    files = sum(int(scan["files"]) for scan in scans)  # type: ignore[call-overload]
    summary = f"secret scan: {secrets} secrets in {files} bridge output files"
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        summary += ": LEAKED\n" + "\n".join(found)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(summary + ("" if found else ": none found"))
