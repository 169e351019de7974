"""Recordings in the history database: one row per file, from its first byte to its upload.

Writes go through the history's writer thread (the event loop never waits for the disk);
reads open their own short-lived connections (run them with ``asyncio.to_thread``). A row's
``state`` is ``recording`` while the file grows, then ``complete``, ``stopped`` (a full disk, a
slow disk: the file is valid up to that point), ``interrupted`` (the daemon or the media worker
died: repaired and marked so at the next start or at once), or ``deleted`` (retention).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bridge.history import HistoryStore
from bridge.history.database import Connection

COLUMNS = "call_id, call_created, app_key, path, name, format, track, state, reason, bytes, duration, upload"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    names = [name.strip() for name in COLUMNS.split(",")]
    row = dict(zip(names, values, strict=True))
    row["upload"] = json.loads(row["upload"])
    return row


class RecordingStore:
    def __init__(self, history: HistoryStore) -> None:
        self._history = history  # its migrations made the table (bridge/history/schema.py)

    def changed(self, call_id: str, call_created: str, app_key: str, note: dict[str, Any]) -> None:
        """A ``recording`` note from the media worker: insert the file or update its state and size."""
        values = (
            call_id,
            call_created,
            app_key,
            note["path"],
            note["name"],
            note["format"],
            note["track"],
            note["state"],
            note.get("reason", ""),
            int(note.get("bytes", 0)),
            float(note.get("durationSeconds", 0.0)),
            _now(),
            self._history.node,
        )

        def upsert(db: Connection) -> None:
            db.execute(
                "INSERT INTO recordings (call_id, call_created, app_key, path, name, format, track, state, reason,"
                " bytes, duration, updated_at, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(path) DO UPDATE SET name = excluded.name, state = excluded.state,"
                " reason = excluded.reason, duration = excluded.duration, updated_at = excluded.updated_at,"
                " bytes = CASE WHEN excluded.bytes > recordings.bytes THEN excluded.bytes ELSE recordings.bytes END",
                values,
            )

        self._history.submit(upsert)

    def update(self, path: str, **fields: Any) -> None:
        """Set ``state``, ``reason``, ``bytes``, ``duration`` or ``upload`` (a dict) of one file."""
        allowed = {"state", "reason", "bytes", "duration", "upload"}
        assert set(fields) <= allowed, fields
        values = {key: json.dumps(value) if key == "upload" else value for key, value in fields.items()}
        assignments = ", ".join(f"{key} = ?" for key in values)

        def write(db: Connection) -> None:
            db.execute(
                f"UPDATE recordings SET {assignments}, updated_at = ? WHERE path = ?", (*values.values(), _now(), path)
            )

        self._history.submit(write)

    # -- reads (off the loop) -------------------------------------------------------------

    def _select(self, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._history.read(f"SELECT {COLUMNS} FROM recordings WHERE {where} ORDER BY id", args)
        return [_row(row) for row in rows]

    def for_call(self, call_id: str, call_created: str) -> list[dict[str, Any]]:
        return self._select("call_id = ? AND call_created = ?", (call_id, call_created))

    def in_states(self, *states: str) -> list[dict[str, Any]]:
        """This node's files in these states (in a shared history, other nodes' files are theirs)."""
        marks = ",".join("?" * len(states))
        condition, args = self._history.mine
        return self._select(f"state IN ({marks}) AND {condition}", (*states, *args))

    def uploads_pending(self) -> list[dict[str, Any]]:
        """Files whose upload had not finished when the daemon stopped (resumed at start-up)."""
        return [
            row
            for row in self._select(f"upload != '{{}}' AND {self._history.mine[0]}", self._history.mine[1])
            if row["upload"].get("state") in ("pending", "retrying", "uploading")
        ]

    def by_path(self, path: str) -> dict[str, Any] | None:
        rows = self._select("path = ?", (path,))
        return rows[0] if rows else None

    def flush(self) -> None:
        """Wait until every queued write is in the database (tests, shutdown)."""
        self._history.wait_idle()
