"""The shipped alert rules, checked by Prometheus's own promtool (Debian's prometheus package):
syntax, and each alert firing (and not firing) on series written by hand in the test file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[3] / "conf" / "prometheus"


def _promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package (make test does)")
    return subprocess.run([promtool, *arguments], capture_output=True, text=True, timeout=60, cwd=RULES, check=False)


def test_the_rules_parse() -> None:
    result = _promtool("check", "rules", "bridge-alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_not_before() -> None:
    result = _promtool("test", "rules", "bridge-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
