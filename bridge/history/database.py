"""The databases the history can live in, behind one small interface used by its writer and readers.

Statements are written once, with ``?`` parameters (SQLite's style); the PostgreSQL connection
translates them for psycopg. A :class:`Backend` opens connections and says which errors are worth
retrying (a full disk, a lost connection) and which are final; :func:`migrate` brings a database to
the latest schema (:mod:`bridge.history.schema`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bridge.history.schema import ADVISORY_LOCK, LATEST, MIGRATIONS, POSTGRES, SQLITE

Row = tuple[Any, ...]


class HistoryUnavailable(RuntimeError):
    """The history database cannot be opened; the message names it and what to do."""


class Connection(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; the rows it returns (none for most writes)."""
        ...

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Everything inside is committed together, or rolled back on an exception."""
        ...

    @property
    def usable(self) -> bool:
        """False once the connection is lost: the writer then opens a new one before retrying."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    dialect: str
    label: str  # how logs name the database: a file path, or a URL without its password
    shared: bool  # other nodes write to it too: recovery touches this node's rows only
    corruption: str  # why a corrupt database was moved aside at start-up ("" if none was)

    def connect(self) -> Connection: ...

    def prepare(self) -> Path | None:
        """Check and migrate at start-up; a corrupt file moved aside is returned (SQLite)."""
        ...

    def transient(self, exc: BaseException) -> bool:
        """A database error that may go away (full disk, lost connection): retry the write later."""
        ...

    def database_error(self, exc: BaseException) -> bool: ...


def migrate(connection: Connection, dialect: str) -> int:
    """Apply the migrations this database lacks, in one transaction; the version it was at."""
    with connection.transaction():
        if dialect == POSTGRES:
            connection.execute("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = connection.execute("SELECT version FROM schema_version")
        current = int(rows[0][0]) if rows else 0
        for statements in MIGRATIONS[dialect][current:]:
            for statement in statements:
                connection.execute(statement)
        if not rows:
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST,))
        elif current < LATEST:
            connection.execute("UPDATE schema_version SET version = ?", (LATEST,))
    return current


def make_private(path: Path) -> None:
    """The database readable by the service alone: its directory 0700 if we create it, the file 0600
    (SQLite gives its journal files the database file's permissions)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    os.chmod(path, 0o600)


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


class SqliteConnection:
    def __init__(self, path: Path, timeout: float) -> None:
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return self._db.execute(sql, tuple(args)).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")  # may fail too (a full disk): then rolled back below
        except BaseException:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    @property
    def usable(self) -> bool:
        return True

    def close(self) -> None:
        self._db.close()


class SqliteBackend:
    """One file, written by this daemon alone (a second daemon on the same file is refused)."""

    dialect = SQLITE
    shared = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.corruption = ""  # why a corrupt file was moved aside at start-up

    def connect(self) -> Connection:
        return SqliteConnection(self.path, timeout=5)

    def prepare(self) -> Path | None:
        make_private(self.path)
        try:
            self._check_and_migrate()
            return None
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise HistoryUnavailable(
                    f"the call history {self.path} is locked by another process "
                    "(another sip-rtmp-bridge with the same history.path?)"
                ) from None
            self.corruption = str(exc)
            moved = _move_aside(self.path)
            make_private(self.path)
            self._check_and_migrate()
            return moved

    def _check_and_migrate(self) -> None:
        connection = SqliteConnection(self.path, timeout=2)
        try:
            connection.execute("PRAGMA quick_check")
            migrate(connection, SQLITE)
        finally:
            connection.close()

    def transient(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError)  # full, I/O error, locked

    def database_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)
