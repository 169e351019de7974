"""The call history: a store with one writer thread over SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from bridge.history.database import Backend, HistoryUnavailable, SqliteBackend, make_private
from bridge.history.store import FINAL_STATES, RESTARTED, HistoryStore

__all__ = [
    "FINAL_STATES",
    "RESTARTED",
    "Backend",
    "HistoryStore",
    "HistoryUnavailable",
    "history_backend",
    "make_private",
]


def history_backend(url: str, path: Path) -> Backend:
    """PostgreSQL when ``history.url`` is set, else the SQLite file ``path``."""
    if url:
        from bridge.history.postgres import PostgresBackend

        return PostgresBackend(url)
    return SqliteBackend(path)
