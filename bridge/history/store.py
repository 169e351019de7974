"""Call history that survives restarts, in SQLite (default) or PostgreSQL (``history.url``).

Every call is stored when it starts, updated on each state change and completed
with its final view (parameters without secrets, timeline, SIP ladder, final stats)
when it ends. All database work happens on one writer thread fed by a queue: the
event loop never waits for the disk or the network. After an unclean stop, calls this
node left active are closed as FAILED "bridge restarted" at the next start.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.history.database import Backend, Connection

FINAL_STATES = ("FINISH", "FAILED", "BUSY")
log = logging.getLogger("bridge.history")
RESTARTED = "bridge restarted"
RETRY_SECONDS = 1.0
MAX_HELD_BACK = 100_000  # writes kept while the database refuses them (a few hundred bytes each)

Job = Callable[[Connection], None]


class _Idle:
    """A marker queued by ``wait_idle``: set once everything queued before it is written. It runs
    outside any transaction and is not a write (a marker whose commit failed would count as one)."""

    def __init__(self) -> None:
        self.event = threading.Event()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class HistoryStore:
    """The writer thread owns one connection; readers use their own short-lived connections."""

    def __init__(self, backend: Backend, retention_days: float, node: str = "") -> None:
        self.backend = backend
        self.node = node
        self._jobs: queue.Queue[Job | _Idle | None] = queue.Queue()
        self._retention = retention_days
        self._rows: dict[str, int] = {}  # active call_id -> row id
        self.failures = 0  # write attempts that failed (disk full, I/O error, lost connection)
        self.held_back = 0  # writes waiting for the database to take them again
        self.moved_aside = backend.prepare()  # a corrupt database found at start-up, renamed
        if self.moved_aside is not None:
            log.error("the call history %s is unreadable (%s); moved aside to %s, a new one is started",
                      backend.label, backend.corruption, self.moved_aside)  # fmt: skip
        connection = backend.connect()
        try:
            with connection.transaction():
                self.recovered = self._recover(connection)
                self._expire(connection)
        finally:
            connection.close()
        self._thread = threading.Thread(target=self._work, name="history-writer", daemon=True)
        self._thread.start()

    @property
    def mine(self) -> tuple[str, tuple[str, ...]]:
        """The condition for this node's rows: all rows of a file of our own, ours in a shared database."""
        return ("node = ?", (self.node,)) if self.backend.shared else ("1 = 1", ())

    # -- writes (queued) ----------------------------------------------------------------

    def started(self, view: dict[str, Any]) -> None:
        call_id = view["callId"]
        values = (call_id, view["appKey"], view["createdAt"], view["state"], view["reason"], json.dumps(view))

        def insert(db: Connection) -> None:
            rows = db.execute(
                "INSERT INTO calls (call_id, app_key, created_at, state, reason, view, node)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (*values, self.node),
            )
            self._rows[call_id] = int(rows[0][0])

        self._jobs.put(insert)

    def state_changed(self, call_id: str, state: str, reason: str) -> None:
        def update(db: Connection) -> None:
            row = self._rows.get(call_id)
            if row is not None:
                db.execute("UPDATE calls SET state = ?, reason = ? WHERE id = ?", (state, reason, row))

        self._jobs.put(update)

    def ended(self, view: dict[str, Any]) -> None:
        call_id = view["callId"]

        def finish(db: Connection) -> None:
            row = self._rows.pop(call_id, None)
            if row is not None:
                db.execute(
                    "UPDATE calls SET state = ?, reason = ?, ended_at = ?, view = ? WHERE id = ?",
                    (view["state"], view["reason"], _now(), json.dumps(view), row),
                )

        self._jobs.put(finish)

    def submit(self, job: Job) -> None:
        """Run ``job`` on the writer thread, in a transaction, after what is queued already."""
        self._jobs.put(job)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until what is queued now has been written (off the loop: tests, start-up)."""
        marker = _Idle()
        self._jobs.put(marker)
        marker.event.wait(timeout)

    flush = wait_idle  # the name tests and shutdown use

    def close(self, timeout: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        """Write every job in order. A write the database cannot take now (disk full, I/O error, a
        lost connection) is held back with everything after it and retried every RETRY_SECONDS, so
        calls go on and the history catches up when it can; the problem is logged once, not per write."""
        db: Connection | None = None
        pending: deque[Job | _Idle] = deque()
        failing = False
        closing = False
        try:
            while not (closing and not pending):
                if not pending or failing:
                    closing = self._take(pending, RETRY_SECONDS if failing else None) or closing
                if not pending:
                    continue
                db = self._usable(db)
                failing = db is None or self._write(db, pending, failing)
                if failing and closing:
                    break  # shutting down with the database still refusing: what is held back is lost
        finally:
            if db is not None:
                db.close()

    def _usable(self, db: Connection | None) -> Connection | None:
        """The writer's connection, opened again after it was lost; None while that fails."""
        if db is not None and db.usable:
            return db
        if db is not None:
            db.close()
        try:
            return self.backend.connect()
        except Exception as exc:
            self.failures += 1
            log.debug("the call history %s: cannot connect: %s", self.backend.label, exc)
            return None

    def _take(self, pending: deque[Job | _Idle], timeout: float | None) -> bool:
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
                log.error("the call history %s: over %d writes held back; the oldest is dropped",
                          self.backend.label, MAX_HELD_BACK)  # fmt: skip
            self.held_back = _writes(pending)

    def _write(self, db: Connection, pending: deque[Job | _Idle], failing: bool) -> bool:
        """Write ``pending`` in order; True while the database refuses writes."""
        while pending:
            job = pending[0]
            if isinstance(job, _Idle):
                job.event.set()
                pending.popleft()
                continue
            try:
                with db.transaction():
                    job(db)
            except Exception as exc:
                if self.backend.transient(exc):  # full, I/O error, lost connection: try again later
                    self.failures += 1
                    if not failing:
                        log.error("the call history %s cannot be written (%s); calls go on, %d write(s) held "
                                  "back and retried every %g s", self.backend.label, exc, _writes(pending),
                                  RETRY_SECONDS)  # fmt: skip
                    self.held_back = _writes(pending)
                    return True
                if not self.backend.database_error(exc):
                    raise
                log.error("the call history %s: a write was dropped: %s", self.backend.label, exc)
            pending.popleft()
            if failing:
                log.warning("the call history %s is written again; the held-back writes caught up", self.backend.label)
                failing = False
        self.held_back = 0
        return False

    # -- maintenance ----------------------------------------------------------------------

    def _recover(self, db: Connection) -> int:
        """Calls this node left active by an unclean stop end as FAILED 'bridge restarted'."""
        condition, args = self.mine
        placeholders = ",".join("?" * len(FINAL_STATES))
        rows = db.execute(
            f"SELECT id, view FROM calls WHERE state NOT IN ({placeholders}) AND {condition}", (*FINAL_STATES, *args)
        )
        for row_id, text in rows:
            view = json.loads(text)
            view.update(state="FAILED", reason=RESTARTED, active=False)
            db.execute(
                "UPDATE calls SET state = 'FAILED', reason = ?, ended_at = ?, view = ? WHERE id = ?",
                (RESTARTED, _now(), json.dumps(view), row_id),
            )
        return len(rows)

    def _expire(self, db: Connection) -> None:
        cutoff = (datetime.now(UTC) - timedelta(days=self._retention)).isoformat()
        db.execute("DELETE FROM calls WHERE created_at < ?", (cutoff,))

    # -- reads (run them off the loop: asyncio.to_thread) ----------------------------------

    def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one query on a short-lived connection of its own (off the loop)."""
        db = self.backend.connect()
        try:
            return db.execute(sql, args)
        finally:
            db.close()

    def find(self, call_id: str) -> dict[str, Any] | None:
        rows = self.read("SELECT view FROM calls WHERE call_id = ? ORDER BY id DESC LIMIT 1", (call_id,))
        return json.loads(rows[0][0]) if rows else None

    def search(
        self,
        state: str | None,
        since: str | None,
        limit: int,
        offset: int,
        until: str | None = None,
        apps: frozenset[str] | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Calls newest first; ``since``/``until``: created at or after / before these ISO times;
        ``apps``: only these appKeys' calls (a token bound to apps)."""
        where, args = ["1 = 1"], []
        for condition, value in (("state = ?", state), ("created_at >= ?", since), ("created_at < ?", until)):
            if value:
                where.append(condition)
                args.append(value)
        if apps is not None:
            where.append(f"app_key IN ({', '.join('?' * len(apps)) or 'NULL'})")
            args.extend(sorted(apps))
        clause = " AND ".join(where)
        total = self.read(f"SELECT COUNT(*) FROM calls WHERE {clause}", tuple(args))[0][0]
        rows = self.read(
            f"SELECT view FROM calls WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset)
        )
        return int(total), [json.loads(row[0]) for row in rows]


def _writes(pending: deque[Job | _Idle]) -> int:
    return sum(not isinstance(job, _Idle) for job in pending)
