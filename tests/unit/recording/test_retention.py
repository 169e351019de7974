"""Retention: by age, then the oldest first until the total fits; files in use are never deleted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from bridge.ops.bus import EventBus
from bridge.recording.config import RecordingConfig
from bridge.recording.retention import DAY, StoredFile, plan
from bridge.recording.service import Recordings

NOW = 1_800_000_000.0


def files(*specs: tuple[str, int, float]) -> list[StoredFile]:
    return [StoredFile(name, size, NOW - age_days * DAY) for name, size, age_days in specs]


def test_age_first_then_the_oldest_until_the_total_fits() -> None:
    found = files(("a", 100, 40), ("b", 100, 20), ("c", 100, 10), ("d", 100, 1))
    deletions = plan(found, NOW, max_age_days=30, max_total_bytes=150, keep=set())
    assert [(f.relative, reason.split(" ")[0]) for f, reason in deletions] == [
        ("a", "older"),
        ("b", "recordings"),
        ("c", "recordings"),
    ]


def test_files_in_use_are_kept_and_still_count_towards_the_total() -> None:
    found = files(("old-but-uploading", 500, 90), ("x", 100, 5), ("y", 100, 2))
    deletions = plan(found, NOW, max_age_days=30, max_total_bytes=600, keep={"old-but-uploading"})
    assert [f.relative for f, _ in deletions] == ["x"]


def test_no_limits_delete_nothing() -> None:
    assert plan(files(("a", 10**9, 999)), NOW, 0, 0, set()) == []


def test_a_pass_deletes_files_and_empty_directories_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.recording")
    config = RecordingConfig(directory=str(tmp_path), max_age_days=7, max_total_mb=0.001)  # 1000 bytes
    recordings = Recordings(config, None, EventBus())
    for relative, size, age_days in [
        ("2026-01-01/a_mix.wav", 300, 30),
        ("2026-12-05/b_mix.wav", 600, 1),
        ("2026-12-06/c_mix.wav", 600, 0),
    ]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(size))
        os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    deleted = recordings.retention_pass(keep=set(), now=NOW)
    assert [name for name, _ in deleted] == ["2026-01-01/a_mix.wav", "2026-12-05/b_mix.wav"]
    assert not (tmp_path / "2026-01-01").exists() and not (tmp_path / "2026-12-05").exists()
    assert (tmp_path / "2026-12-06" / "c_mix.wav").exists()
    assert "recording 2026-01-01/a_mix.wav deleted: older than 7 days" in caplog.text
    assert "recording 2026-12-05/b_mix.wav deleted: recordings over 0.001 MB in total" in caplog.text
