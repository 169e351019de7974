"""Secrets the tests hand to the bridge, and the bridge's outputs to search for them afterwards.

At the end of every test run (tests/conftest.py) each registered secret is looked for in
every file a bridge daemon wrote (logs, call history); the run fails if one is found.
"""

from __future__ import annotations

from pathlib import Path

SECRETS: set[str] = set()
OUTPUT_DIRS: set[Path] = set()
NOT_OUTPUT = {"bridge.toml"}  # the config the test wrote; it holds secrets on purpose


def register_secret(*values: str) -> None:
    SECRETS.update(value for value in values if value)


def register_output_dir(directory: Path) -> None:
    OUTPUT_DIRS.add(directory)


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
