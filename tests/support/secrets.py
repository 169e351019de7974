"""Secrets the tests hand to the bridge, and the bridge's outputs to search for them afterwards.

At the end of every test run (tests/conftest.py) each registered secret is looked for in
every file a bridge daemon wrote (logs, the call history database) and in everything the
tests received from a bridge (API responses, webhook bodies, Server-Sent Events: each is
captured to a file as it arrives); the run fails if one is found. Registered secrets:
SIP passwords, API tokens, RTMP stream keys, userinfo passwords and query tokens, and the
digest ``response``/``cnonce`` values the SIP domain saw (read from its log at teardown).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

SECRETS: set[str] = set()
OUTPUT_DIRS: set[Path] = set()
NOT_OUTPUT = {"bridge.toml"}  # the config the test wrote; it holds secrets on purpose
_CAPTURES: list[Path] = []


def register_secret(*values: str) -> None:
    SECRETS.update(value for value in values if value)


def register_output_dir(directory: Path) -> None:
    OUTPUT_DIRS.add(directory)


def capture(kind: str, data: bytes) -> None:
    """Keep something a bridge sent to a test (an API answer, a webhook body, an SSE event) for the scan."""
    if not _CAPTURES:
        _CAPTURES.append(Path(tempfile.mkdtemp(prefix="bridge-captures-")))
        register_output_dir(_CAPTURES[0])
    with (_CAPTURES[0] / f"{kind}.log").open("ab") as out:
        out.write(data + b"\n")


def leaks() -> list[str]:
    """``file: secret`` for every registered secret found in a daemon's output files."""
    found = []
    for directory in sorted(OUTPUT_DIRS):
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name not in NOT_OUTPUT):
            data = path.read_bytes()
            found.extend(f"{path}: {secret!r}" for secret in sorted(SECRETS) if secret.encode() in data)
    return found


def scanned_files() -> int:
    return sum(1 for d in OUTPUT_DIRS for p in d.rglob("*") if p.is_file() and p.name not in NOT_OUTPUT)
