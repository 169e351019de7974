"""Run-wide checks: no secret given to the bridge may appear in anything the bridge wrote."""

from __future__ import annotations

import pytest

from tests.support.secrets import OUTPUT_DIRS, SECRETS, leaks, scanned_files


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not OUTPUT_DIRS:
        return
    found = leaks()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    summary = f"secret scan: {len(SECRETS)} secrets in {scanned_files()} bridge output files"
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        summary += ": LEAKED\n" + "\n".join(found)
    if reporter is not None:
        reporter.write_line(summary + ("" if found else ": none found"))
