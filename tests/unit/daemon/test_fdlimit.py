"""Open-file headroom at start-up, in child processes so the test runner's limits stay as they are."""

from __future__ import annotations

import subprocess
import sys

from bridge.daemon.fdlimit import calls_within, descriptors_needed

PROBE = """
import logging, resource, sys
from bridge.daemon.fdlimit import ensure_headroom
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
allowed = ensure_headroom({calls})
print("allowed", allowed, "soft", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _probe(soft: int, hard: int, calls: int) -> str:
    code = PROBE.format(soft=soft, hard=hard, calls=calls)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    return result.stdout


def test_soft_limit_is_raised_up_to_what_the_calls_need() -> None:
    output = _probe(soft=300, hard=8192, calls=500)
    assert f"allowed 500 soft {descriptors_needed(500)}" in output
    assert "open-file limit" not in output  # nothing to warn about


def test_too_low_hard_limit_is_logged_with_the_fix_and_caps_calls() -> None:
    output = _probe(soft=300, hard=300, calls=500)
    assert f"allowed {calls_within(300)} soft 300" in output and calls_within(300) == 11
    assert "raise LimitNOFILE= (systemd) or ulimit -n to 2256" in output
