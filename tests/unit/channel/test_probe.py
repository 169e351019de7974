"""The encoder probe process that /readyz relies on: its exit status is the answer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bridge.channel.probe import parse_arguments, probe_arguments
from bridge.model import OutputSpec


@pytest.mark.parametrize(
    "output", [OutputSpec(), OutputSpec("aac", 48000, 96000, "fast"), OutputSpec("pcmu", 8000, 64000)]
)
def test_arguments_round_trip(output: OutputSpec) -> None:
    assert parse_arguments(probe_arguments(output)) == output


def _probe(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bridge.media.probe", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_working_encoder_exits_zero() -> None:
    assert _probe(*probe_arguments(OutputSpec())).returncode == 0


def test_an_encoder_ffmpeg_refuses_exits_one_with_the_reason() -> None:
    result = _probe("aac", "16000", "32000", "no-such-coder")
    assert result.returncode == 1
    assert "encoder could not be opened" in result.stderr and "aac_coder" in result.stderr


def test_the_daemon_imports_no_pyav() -> None:
    imports = "import sys, bridge.daemon.cli, bridge.daemon.run"
    code = imports + "; print(sorted(m for m in sys.modules if m.split('.')[0] == 'av'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
