"""Retention of recordings: by age, then by total size (the oldest files go first).

:func:`plan` is pure (files, limits, now in, deletions with their reasons out); :func:`scan` and
:func:`delete` touch the disk and run in a thread. Files still being written or uploaded are
never deleted.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class StoredFile:
    relative: str
    size: int
    modified: float  # seconds since the epoch


def plan(
    files: list[StoredFile], now: float, max_age_days: float, max_total_bytes: int, keep: set[str]
) -> list[tuple[StoredFile, str]]:
    """What to delete and why: everything older than ``max_age_days`` (0: no limit), then the oldest
    until the rest fit in ``max_total_bytes`` (0: no limit); never a file in ``keep``."""
    deletions: list[tuple[StoredFile, str]] = []
    remaining = sorted((f for f in files if f.relative not in keep), key=lambda f: (f.modified, f.relative))
    if max_age_days > 0:
        cutoff = now - max_age_days * DAY
        old = [f for f in remaining if f.modified < cutoff]
        deletions += [(f, f"older than {max_age_days:g} days (recording.max_age_days)") for f in old]
        remaining = remaining[len(old) :]
    if max_total_bytes > 0:
        total = sum(f.size for f in remaining) + sum(f.size for f in files if f.relative in keep)
        for file in remaining:
            if total <= max_total_bytes:
                break
            deletions.append((file, f"recordings over {max_total_bytes / 1e6:g} MB in total (recording.max_total_mb)"))
            total -= file.size
    return deletions


def scan(directory: Path) -> list[StoredFile]:
    """Every regular file below ``directory`` (relative paths)."""
    found = []
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                found.append(StoredFile(str(path.relative_to(directory)), info.st_size, info.st_mtime))
    return found


def delete(directory: Path, relative: str) -> None:
    """Remove the file and the directories it leaves empty (up to ``directory``)."""
    path = directory / relative
    path.unlink(missing_ok=True)
    parent = path.parent
    while parent != directory and directory in parent.parents:
        try:
            parent.rmdir()
        except OSError:  # not empty (or gone)
            break
        parent = parent.parent
