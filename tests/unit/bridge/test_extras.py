"""A configured optional part without its extra stops start-up with one line naming the extra and
the pip command, not a traceback (review finding 13). Run as the operator would: the command, with
the package made unimportable by a module of the same name ahead of it on the path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = {
    "cluster": '[cluster]\nredis_url = "redis://127.0.0.1:6379/0"\nadvertise_url = "http://127.0.0.1:9091"\n',
    "postgres": '[history]\nurl = "postgresql://bridge@127.0.0.1/bridge"\n',
    "azure": '[recording.upload]\nkind = "azure"\nazure_container_url = "https://a.blob.core.windows.net/c?sv=x"\n',
}
SHADOWS = {"cluster": "redis", "postgres": "psycopg", "azure": "azure"}


@pytest.mark.parametrize("extra", sorted(CONFIGS))
def test_missing_extra_is_one_line_with_the_pip_command(tmp_path: Path, extra: str) -> None:
    shadows = tmp_path / "shadows"
    shadows.mkdir()
    (shadows / f"{SHADOWS[extra]}.py").write_text(f"raise ImportError('No module named {SHADOWS[extra]}')\n")
    config = tmp_path / "bridge.toml"
    config.write_text(CONFIGS[extra])
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "check-config", str(config)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{shadows}:{Path(__file__).resolve().parents[3]}", "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"pip install 'sip-rtmp-bridge[{extra}]'" in done.stderr


def test_installed_extras_pass(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("".join(CONFIGS.values()))
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
