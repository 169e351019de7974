"""The history store: lifecycle rows, recovery after an unclean stop, retention."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bridge.history import RESTARTED, HistoryStore


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
    store = HistoryStore(tmp_path / "h.sqlite3", retention_days=36500)
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
    store = HistoryStore(tmp_path / "h.sqlite3", retention_days=36500)
    store.started(view("c2", "PENDING"))
    store.state_changed("c2", "ESTABLISHED", "200 OK")
    store.flush()
    store.close()  # like kill -9: the call never ended
    reopened = HistoryStore(tmp_path / "h.sqlite3", retention_days=36500)
    assert reopened.recovered == 1
    found = reopened.find("c2")
    assert found is not None and found["state"] == "FAILED" and found["reason"] == RESTARTED
    reopened.close()


def test_retention_removes_old_calls(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path, retention_days=30)
    store.started(view("old", "PENDING", created="2020-01-01T00:00:00+00:00"))
    store.ended(view("old", "FINISH", created="2020-01-01T00:00:00+00:00"))
    store.flush()
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1
    HistoryStore(path, retention_days=30).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 0
    assert json.loads("[]") == []


def test_search_by_day_uses_since_and_until(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3", retention_days=36500)
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
