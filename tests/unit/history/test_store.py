"""The history store: lifecycle rows, recovery after an unclean stop, retention."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from bridge.history import RESTARTED, HistoryStore, HistoryUnavailable
from bridge.history.database import Connection, SqliteBackend
from bridge.history.postgres import qmark_to_format, url_label
from bridge.history.schema import LATEST


def view(call_id: str, state: str, created: str = "2026-11-21T10:00:00+00:00") -> dict[str, object]:
    return {
        "callId": call_id,
        "appKey": "app",
        "createdAt": created,
        "state": state,
        "reason": "r",
        "timeline": [],
        "sipLadder": [{"message": "INVITE sip:x@y"}],
    }


def test_lifecycle_is_stored_and_found(tmp_path: Path) -> None:
    store = HistoryStore(SqliteBackend(tmp_path / "h.sqlite3"), retention_days=36500)
    store.started(view("c1", "PENDING"))
    store.state_changed("c1", "ESTABLISHED", "200 OK")
    store.flush()
    assert store.find("c1")["callId"] == "c1"  # type: ignore[index]
    store.ended(dict(view("c1", "FINISH"), reason="remote hangup", counters={"packets": 5}))
    store.flush()
    found = store.find("c1")
    assert found is not None and found["state"] == "FINISH" and found["counters"] == {"packets": 5}
    total, calls = store.search("FINISH", None, 10, 0)
    assert total == 1 and calls[0]["sipLadder"] == [{"message": "INVITE sip:x@y"}]
    store.close()


def test_calls_left_active_are_failed_at_the_next_start(tmp_path: Path) -> None:
    store = HistoryStore(SqliteBackend(tmp_path / "h.sqlite3"), retention_days=36500)
    store.started(view("c2", "PENDING"))
    store.state_changed("c2", "ESTABLISHED", "200 OK")
    store.flush()
    store.close()  # like kill -9: the call never ended
    reopened = HistoryStore(SqliteBackend(tmp_path / "h.sqlite3"), retention_days=36500)
    assert reopened.recovered == 1
    found = reopened.find("c2")
    assert found is not None and found["state"] == "FAILED" and found["reason"] == RESTARTED
    reopened.close()


def test_retention_removes_old_calls(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(SqliteBackend(path), retention_days=30)
    store.started(view("old", "PENDING", created="2020-01-01T00:00:00+00:00"))
    store.ended(view("old", "FINISH", created="2020-01-01T00:00:00+00:00"))
    store.flush()
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1
    HistoryStore(SqliteBackend(path), retention_days=30).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 0
    assert json.loads("[]") == []


def test_search_by_day_uses_since_and_until(tmp_path: Path) -> None:
    store = HistoryStore(SqliteBackend(tmp_path / "h.sqlite3"), retention_days=36500)
    for call_id, created in (("d20", "2026-11-20T23:59:59+00:00"), ("d21", "2026-11-21T08:00:00+00:00")):
        store.started(view(call_id, "PENDING", created=created))
        store.ended(view(call_id, "FINISH", created=created))
    store.started(view("d22", "PENDING", created="2026-11-22T00:00:00+00:00"))
    store.flush()
    total, calls = store.search(None, "2026-11-21", 10, 0, until="2026-11-22")
    assert total == 1 and [c["callId"] for c in calls] == ["d21"]
    total, calls = store.search("FINISH", "2026-11-20", 10, 0)
    assert total == 2 and [c["callId"] for c in calls] == ["d21", "d20"]
    store.close()


def test_writes_the_database_refuses_are_held_back_and_catch_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk (here: a write that raises as SQLite does when the disk is full) holds writes back in
    order, says so once, and writes them all when the database takes them again."""
    caplog.set_level(logging.INFO, logger="bridge.history")
    store = HistoryStore(SqliteBackend(tmp_path / "h.sqlite3"), 30)
    refusals = iter([True, True, True])

    def full_disk_then_ok(db: Connection) -> None:
        if next(refusals, False):
            raise sqlite3.OperationalError("database or disk is full")
        db.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")

    store.submit(full_disk_then_ok)
    for index in range(5):
        store.started({"callId": f"c{index}", "appKey": "", "createdAt": f"2026-12-0{index + 1}", "state": "PENDING",
                       "reason": "accepted"})  # fmt: skip
    time.sleep(0.2)
    assert store.held_back == 6 and store.failures >= 1
    store.wait_idle(timeout=10)
    assert store.held_back == 0 and store.failures == 3
    total, calls = store.search(None, None, 10, 0)
    assert total == 5 and {c["callId"] for c in calls} == {f"c{i}" for i in range(5)}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "cannot be written (database or disk is full)" in errors[0]
    assert any("written again" in r.getMessage() for r in caplog.records)
    store.close()


def test_a_corrupt_history_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    store = HistoryStore(SqliteBackend(path), 30)
    assert store.moved_aside is not None and store.moved_aside.read_bytes().startswith(b"this is not")
    assert store.moved_aside.name.startswith("history.sqlite3.corrupt-")
    store.started({"callId": "after", "appKey": "", "createdAt": "2026-12-06", "state": "PENDING", "reason": "x"})
    store.wait_idle()
    assert store.find("after") is not None
    assert f"the call history {path} is unreadable" in caplog.text and str(store.moved_aside) in caplog.text
    store.close()


def test_a_history_locked_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    HistoryStore(SqliteBackend(path), 30).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryUnavailable, match=f"the call history {path} is locked by another process"):
            HistoryStore(SqliteBackend(path), 30)
    finally:
        holder.close()


def test_a_history_from_before_schema_versions_is_migrated_in_place(tmp_path: Path) -> None:
    """A file written by an older bridge (no schema_version, no node column) keeps its calls."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE calls (id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, app_key TEXT NOT NULL,"
            " created_at TEXT NOT NULL, ended_at TEXT, state TEXT NOT NULL, reason TEXT NOT NULL, view TEXT NOT NULL);"
        )
        db.execute(
            "INSERT INTO calls (call_id, app_key, created_at, state, reason, view) VALUES (?, ?, ?, ?, ?, ?)",
            ("old-1", "app", "2026-12-01T00:00:00+00:00", "FINISH", "done", json.dumps(view("old-1", "FINISH"))),
        )
    store = HistoryStore(SqliteBackend(path), 36500, "node-x")
    store.started(view("new-1", "PENDING"))
    store.flush()
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(LATEST,)]
        rows = db.execute("SELECT call_id, state, node FROM calls ORDER BY id").fetchall()
    assert rows == [("old-1", "FINISH", ""), ("new-1", "PENDING", "node-x")]


def test_statements_are_translated_for_psycopg_and_urls_lose_their_password() -> None:
    assert qmark_to_format("SELECT a FROM t WHERE b = ? AND c LIKE 'x%'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%'"
    )
    assert url_label("postgresql://bridge:s3cret@db.example.com:5433/calls?sslmode=verify-full&password=p") == (
        "postgresql://bridge@db.example.com:5433/calls"
    )
