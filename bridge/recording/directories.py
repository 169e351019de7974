"""Recording directories: private to the service user (0700), made by the daemon at start-up and
by a media worker for a call's files."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def make_private_directory(directory: Path) -> None:
    """Create ``directory`` and its missing parents as 0700 (an existing one is left as it is)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        os.chmod(path, 0o700)
