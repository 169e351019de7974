"""The history's tables, as numbered migrations per database (SQLite, PostgreSQL).

Version 1 is the schema every SQLite history had before versions were kept, so an older file is
brought up to date in place. Versions are applied in order, in one transaction, and recorded in
``schema_version``; PostgreSQL takes an advisory lock first, so nodes starting together migrate once.
"""

from __future__ import annotations

SQLITE = "sqlite"
POSTGRES = "postgres"
ADVISORY_LOCK = 0x5154_4D42  # pg_advisory_xact_lock key for migrations: any constant shared by all nodes

SQLITE_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS calls (id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, app_key TEXT NOT NULL,"
        " created_at TEXT NOT NULL, ended_at TEXT, state TEXT NOT NULL, reason TEXT NOT NULL, view TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS calls_by_call_id ON calls (call_id, id)",
        "CREATE INDEX IF NOT EXISTS calls_by_created ON calls (created_at)",
        "CREATE TABLE IF NOT EXISTS recordings (id INTEGER PRIMARY KEY, call_id TEXT NOT NULL,"
        " call_created TEXT NOT NULL, app_key TEXT NOT NULL DEFAULT '', path TEXT NOT NULL UNIQUE,"
        " name TEXT NOT NULL, format TEXT NOT NULL, track TEXT NOT NULL, state TEXT NOT NULL,"
        " reason TEXT NOT NULL DEFAULT '', bytes INTEGER NOT NULL DEFAULT 0, duration REAL NOT NULL DEFAULT 0,"
        " upload TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS recordings_by_call ON recordings (call_id, call_created)",
        "CREATE INDEX IF NOT EXISTS recordings_by_state ON recordings (state)",
    ],
    [
        "ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS calls_by_node_state ON calls (node, state)",
    ],
]

POSTGRES_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS calls (id BIGSERIAL PRIMARY KEY, call_id TEXT NOT NULL, app_key TEXT NOT NULL,"
        " created_at TEXT NOT NULL, ended_at TEXT, state TEXT NOT NULL, reason TEXT NOT NULL, view TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS calls_by_call_id ON calls (call_id, id)",
        "CREATE INDEX IF NOT EXISTS calls_by_created ON calls (created_at)",
        "CREATE TABLE IF NOT EXISTS recordings (id BIGSERIAL PRIMARY KEY, call_id TEXT NOT NULL,"
        " call_created TEXT NOT NULL, app_key TEXT NOT NULL DEFAULT '', path TEXT NOT NULL UNIQUE,"
        " name TEXT NOT NULL, format TEXT NOT NULL, track TEXT NOT NULL, state TEXT NOT NULL,"
        " reason TEXT NOT NULL DEFAULT '', bytes BIGINT NOT NULL DEFAULT 0,"
        " duration DOUBLE PRECISION NOT NULL DEFAULT 0, upload TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS recordings_by_call ON recordings (call_id, call_created)",
        "CREATE INDEX IF NOT EXISTS recordings_by_state ON recordings (state)",
    ],
    [
        "ALTER TABLE calls ADD COLUMN IF NOT EXISTS node TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE recordings ADD COLUMN IF NOT EXISTS node TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS calls_by_node_state ON calls (node, state)",
    ],
]

MIGRATIONS = {SQLITE: SQLITE_MIGRATIONS, POSTGRES: POSTGRES_MIGRATIONS}
LATEST = len(SQLITE_MIGRATIONS)
assert len(POSTGRES_MIGRATIONS) == LATEST, "both databases are kept at the same schema version"
