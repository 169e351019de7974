"""Call history in an embedded SQLite database that survives restarts.

Every call is stored when it starts, updated on each state change and completed
with its final view (parameters without secrets, timeline, SIP ladder, final stats)
when it ends. All database work happens on one writer thread fed by a queue: the
event loop never waits for the disk. After an unclean stop, calls still marked
active are closed as FAILED "bridge restarted" at the next start.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    app_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ended_at TEXT,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_call_id ON calls (call_id, id);
CREATE INDEX IF NOT EXISTS calls_by_created ON calls (created_at);
"""
FINAL_STATES = ("FINISH", "FAILED", "BUSY")
log = logging.getLogger("bridge.history")
RESTARTED = "bridge restarted"


def make_private(path: Path) -> None:
    """The database readable by the service alone: its directory 0700 if we create it, the file 0600
    (SQLite gives its journal files the database file's permissions)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    os.chmod(path, 0o600)


class HistoryUnavailable(RuntimeError):
    """The history database cannot be opened; the message names the file and what to do."""


RETRY_SECONDS = 1.0
MAX_HELD_BACK = 100_000  # writes kept while the database refuses them (a few hundred bytes each)


def _move_aside(path: Path) -> Path:
    """Rename a corrupt database (and its journal files) to ``<name>.corrupt-<UTC time>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(target)
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


def _now() -> str:
    return datetime.now(UTC).isoformat()


class HistoryStore:
    """The writer thread owns the connection; readers use their own short-lived connections."""

    def __init__(self, path: Path, retention_days: float) -> None:
        self.path = path
        self._jobs: queue.Queue[Callable[[sqlite3.Connection], None] | None] = queue.Queue()
        self._retention = retention_days
        self._rows: dict[str, int] = {}  # active call_id -> row id
        self.recovered = 0
        self.moved_aside: Path | None = None  # a corrupt database found at start-up, renamed
        self.failures = 0  # write attempts that failed (disk full, I/O error, locked)
        self.held_back = 0  # writes waiting for the database to take them again
        make_private(path)
        try:
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise HistoryUnavailable(
                    f"the call history {path} is locked by another process "
                    "(another sip-rtmp-bridge with the same history.path?)"
                ) from None
            self.moved_aside = _move_aside(path)
            log.error("the call history %s is unreadable (%s); moved aside to %s, a new one is started",
                      path, exc, self.moved_aside)  # fmt: skip
            make_private(path)
            self._open_schema()
        self._thread = threading.Thread(target=self._work, name="history-writer", daemon=True)
        self._thread.start()

    def _open_schema(self) -> None:
        with sqlite3.connect(self.path, timeout=2) as db:
            db.execute("PRAGMA quick_check").fetchall()
            db.executescript(SCHEMA)
            self.recovered = self._recover(db)
            self._expire(db)

    # -- writes (queued) ----------------------------------------------------------------

    def started(self, view: dict[str, Any]) -> None:
        call_id = view["callId"]

        def insert(db: sqlite3.Connection) -> None:
            cursor = db.execute(
                "INSERT INTO calls (call_id, app_key, created_at, state, reason, view) VALUES (?, ?, ?, ?, ?, ?)",
                (call_id, view["appKey"], view["createdAt"], view["state"], view["reason"], json.dumps(view)),
            )
            self._rows[call_id] = int(cursor.lastrowid or 0)

        self._jobs.put(insert)

    def state_changed(self, call_id: str, state: str, reason: str) -> None:
        def update(db: sqlite3.Connection) -> None:
            row = self._rows.get(call_id)
            if row is not None:
                db.execute("UPDATE calls SET state = ?, reason = ? WHERE id = ?", (state, reason, row))

        self._jobs.put(update)

    def ended(self, view: dict[str, Any]) -> None:
        call_id = view["callId"]

        def finish(db: sqlite3.Connection) -> None:
            row = self._rows.pop(call_id, None)
            if row is not None:
                db.execute(
                    "UPDATE calls SET state = ?, reason = ?, ended_at = ?, view = ? WHERE id = ?",
                    (view["state"], view["reason"], _now(), json.dumps(view), row),
                )

        self._jobs.put(finish)

    def submit(self, job: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``job`` on the writer thread, in a transaction, after what is queued already."""
        self._jobs.put(job)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until what is queued now has been written (off the loop: tests, start-up)."""
        done = threading.Event()
        self._jobs.put(lambda _db: done.set())
        done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        """Write every job in order. A write the database cannot take now (disk full, I/O error, a
        lock) is held back with everything after it and retried every RETRY_SECONDS, so calls go on
        and the history catches up when space returns; the problem is logged once, not per write."""
        db = sqlite3.connect(self.path, timeout=5)
        pending: deque[Callable[[sqlite3.Connection], None]] = deque()
        failing = False
        closing = False
        try:
            while not (closing and not pending):
                if not pending or failing:
                    closing = self._take(pending, RETRY_SECONDS if failing else None) or closing
                if not pending:
                    continue
                failing = self._write(db, pending, failing)
                if failing and closing:
                    break  # shutting down with the disk still full: what is held back is lost
        finally:
            db.close()

    def _take(self, pending: deque[Callable[[sqlite3.Connection], None]], timeout: float | None) -> bool:
        """Move queued jobs into ``pending`` (waiting up to ``timeout`` for the first); True on close."""
        try:
            job = self._jobs.get(timeout=timeout)
            while True:
                if job is None:
                    return True
                pending.append(job)
                job = self._jobs.get_nowait()
        except queue.Empty:
            return False
        finally:
            while len(pending) > MAX_HELD_BACK:
                pending.popleft()
                log.error(
                    "the call history %s: over %d writes held back; the oldest is dropped", self.path, MAX_HELD_BACK
                )
            self.held_back = len(pending)

    def _write(
        self, db: sqlite3.Connection, pending: deque[Callable[[sqlite3.Connection], None]], failing: bool
    ) -> bool:
        """Write ``pending`` in order; True while the database refuses writes."""
        while pending:
            try:
                with db:
                    pending[0](db)
            except sqlite3.OperationalError as exc:  # full, I/O error, locked: try again later
                self.failures += 1
                if not failing:
                    log.error("the call history %s cannot be written (%s); calls go on, %d write(s) held back "
                              "and retried every %g s", self.path, exc, len(pending), RETRY_SECONDS)  # fmt: skip
                self.held_back = len(pending)
                return True
            except sqlite3.Error as exc:  # a write that can never succeed: dropped, said once
                log.error("the call history %s: a write was dropped: %s", self.path, exc)
            pending.popleft()
            if failing:
                log.warning("the call history %s is written again; the held-back writes caught up", self.path)
                failing = False
        self.held_back = 0
        return False

    # -- maintenance ----------------------------------------------------------------------

    def _recover(self, db: sqlite3.Connection) -> int:
        """Calls left active by an unclean stop end as FAILED 'bridge restarted'."""
        placeholders = ",".join("?" * len(FINAL_STATES))
        rows = db.execute(f"SELECT id, view FROM calls WHERE state NOT IN ({placeholders})", FINAL_STATES).fetchall()
        for row_id, text in rows:
            view = json.loads(text)
            view.update(state="FAILED", reason=RESTARTED, active=False)
            db.execute(
                "UPDATE calls SET state = 'FAILED', reason = ?, ended_at = ?, view = ? WHERE id = ?",
                (RESTARTED, _now(), json.dumps(view), row_id),
            )
        return len(rows)

    def _expire(self, db: sqlite3.Connection) -> None:
        cutoff = (datetime.now(UTC) - timedelta(days=self._retention)).isoformat()
        db.execute("DELETE FROM calls WHERE created_at < ?", (cutoff,))

    # -- reads (run them off the loop: asyncio.to_thread) ----------------------------------

    def find(self, call_id: str) -> dict[str, Any] | None:
        with sqlite3.connect(self.path, timeout=5) as db:
            row = db.execute("SELECT view FROM calls WHERE call_id = ? ORDER BY id DESC LIMIT 1", (call_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def search(
        self, state: str | None, since: str | None, limit: int, offset: int, until: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """Calls newest first; ``since``/``until``: created at or after / before these ISO times."""
        where, args = ["1 = 1"], []
        if state:
            where.append("state = ?")
            args.append(state)
        if since:
            where.append("created_at >= ?")
            args.append(since)
        if until:
            where.append("created_at < ?")
            args.append(until)
        clause = " AND ".join(where)
        with sqlite3.connect(self.path, timeout=5) as db:
            total = db.execute(f"SELECT COUNT(*) FROM calls WHERE {clause}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT view FROM calls WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return int(total), [json.loads(row[0]) for row in rows]

    def flush(self, timeout: float = 5.0) -> None:
        """Block (in a thread) until every queued write is done — for tests and shutdown."""
        done = threading.Event()
        self._jobs.put(lambda db: done.set())
        done.wait(timeout)
