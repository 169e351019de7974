"""The history in PostgreSQL (``history.url``), shared by every node of a cluster.

psycopg 3 is imported only when this is configured. The writer thread keeps one connection and
opens a new one after losing it; readers open short-lived connections. Statements arrive in
SQLite's ``?`` style and are translated to psycopg's ``%s`` here, at one place.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bridge.history.database import Connection, HistoryUnavailable, Row, migrate
from bridge.history.schema import POSTGRES

CONNECT_TIMEOUT = 5  # seconds (libpq connect_timeout)


def qmark_to_format(sql: str) -> str:
    """``?`` parameters as psycopg's ``%s`` (and a literal ``%`` doubled); our statements hold no ``?``
    inside quotes."""
    return sql.replace("%", "%%").replace("?", "%s")


def url_label(url: str) -> str:
    """The URL as logs may show it: the password replaced, the query (it may carry one) dropped."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urllib.parse.urlunsplit((parts.scheme, f"{user}{host}", parts.path, "", ""))


class PostgresConnection:
    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self._db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        cursor = self._db.execute(qmark_to_format(sql), tuple(args))
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    @property
    def usable(self) -> bool:
        return not self._db.closed and not self._db.broken

    def close(self) -> None:
        self._db.close()


class PostgresBackend:
    dialect = POSTGRES
    shared = True

    def __init__(self, url: str) -> None:
        self._url = url
        self.label = url_label(url)
        self.corruption = ""

    def connect(self) -> Connection:
        return PostgresConnection(self._url)

    def prepare(self) -> Path | None:
        try:
            connection = self.connect()
        except Exception as exc:
            raise HistoryUnavailable(
                f"history.url: cannot connect to {self.label}: {_first_line(exc)} "
                "(is PostgreSQL running there, and may this user connect?)"
            ) from None
        try:
            migrate(connection, POSTGRES)
        finally:
            connection.close()
        return None

    def transient(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError)  # connection lost, server shutting down, disk full

    def database_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
