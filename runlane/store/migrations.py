"""Named, ordered schema migrations for the SQLite store, recorded in the database they changed.

Each migration runs in the same transaction as the row that records it, so a store is never left
half-migrated, and several processes opening a new store at once apply each migration exactly once.
Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
import time
from typing import NamedTuple

from ..errors import StoreError


class Migration(NamedTuple):
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001_core",
        """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            key TEXT NOT NULL UNIQUE,
            next_seq INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            project_id INTEGER NOT NULL REFERENCES projects(id),
            seq INTEGER NOT NULL,
            name TEXT,
            alias TEXT,
            notes TEXT,
            status TEXT NOT NULL,
            status_reason TEXT,
            created_at REAL NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            config TEXT NOT NULL DEFAULT '{}',
            summary TEXT NOT NULL DEFAULT '{}',
            primary_metric TEXT,
            primary_mode TEXT,
            parent_run_id INTEGER REFERENCES runs(id),
            fork_run_id INTEGER REFERENCES runs(id),
            fork_step INTEGER,
            UNIQUE (project_id, seq)
        );
        CREATE INDEX runs_by_project ON runs(project_id, id);
        CREATE INDEX runs_by_fork ON runs(fork_run_id);
        CREATE INDEX runs_by_parent ON runs(parent_run_id);
        CREATE TABLE run_tags (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (run_id, tag)
        );
        CREATE INDEX run_tags_by_tag ON run_tags(tag);
        CREATE TABLE run_writers (
            id TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            pid_started REAL,
            journal TEXT NOT NULL,
            journal_offset INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            last_record_at REAL,
            closed_at REAL,
            close_reason TEXT
        );
        CREATE INDEX run_writers_by_run ON run_writers(run_id);
        CREATE INDEX run_writers_open ON run_writers(closed_at) WHERE closed_at IS NULL;
        CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_step INTEGER NOT NULL,
            last_step INTEGER NOT NULL,
            last_value REAL,
            last_time REAL NOT NULL,
            min_value REAL,
            min_step INTEGER,
            max_value REAL,
            max_step INTEGER,
            small_tail INTEGER NOT NULL DEFAULT 0,
            UNIQUE (run_id, key)
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
            first_step INTEGER NOT NULL,
            last_step INTEGER NOT NULL,
            n INTEGER NOT NULL,
            last_value REAL,
            last_time REAL NOT NULL,
            min_value REAL,
            min_step INTEGER,
            max_value REAL,
            max_step INTEGER,
            steps BLOB NOT NULL,
            vals BLOB NOT NULL,
            times BLOB NOT NULL,
            stage_names TEXT,
            stage_index BLOB
        );
        CREATE UNIQUE INDEX chunks_by_series_step ON chunks(series_id, first_step);
        CREATE TABLE log_lines (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            time REAL NOT NULL,
            stream TEXT NOT NULL,
            text TEXT NOT NULL
        );
        CREATE INDEX log_lines_by_run ON log_lines(run_id, id);
        """,
    ),
    Migration(
        "0002_context",
        # Run context: system metrics, images and run-level files (environment, code snapshot).
        # System metrics are time-indexed and deliberately kept out of `series`/`chunks`: the resume step
        # counter and fork step ranges are computed from `series`, and a monitor sample is not a step.
        # Files and images live in the store's blob directory; these rows hold only their blob names.
        """
        CREATE TABLE system_points (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            time REAL NOT NULL,
            value REAL
        );
        CREATE INDEX system_points_by_run ON system_points(run_id, key, time);
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            step INTEGER NOT NULL,
            caption TEXT,
            blob TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            time REAL NOT NULL
        );
        CREATE INDEX images_by_run ON images(run_id, key, step);
        CREATE TABLE run_files (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            blob TEXT NOT NULL,
            time REAL NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (run_id, kind)
        );
        """,
    ),
    Migration(
        "0003_writer_identity",
        # A pid means something only in its PID namespace, so the namespace is part of a writer's identity
        # (NULL: not recorded, as for rows written before this migration; judged by heartbeat). `owner`
        # marks the writer that decides the run's final status: the one that created the run, or that
        # attached while no other owner was open. Rows written before this migration were all owners,
        # which keeps their old meaning (the run failed once every writer was gone).
        """
        ALTER TABLE run_writers ADD COLUMN pid_namespace TEXT;
        ALTER TABLE run_writers ADD COLUMN owner INTEGER NOT NULL DEFAULT 1
        """,
    ),
    Migration(
        "0004_system_point_ids",
        # A stable id per system sample, the cursor of paged reads (a reader tailing a live run asks for
        # the samples after the last id it got). The implicit rowid is no cursor: VACUUM may renumber the
        # rowids of a table without an INTEGER PRIMARY KEY. Existing samples keep their rowid as id.
        """
        CREATE TABLE system_points_v4 (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            time REAL NOT NULL,
            value REAL
        );
        INSERT INTO system_points_v4 (id, run_id, key, time, value)
            SELECT rowid, run_id, key, time, value FROM system_points;
        DROP TABLE system_points;
        ALTER TABLE system_points_v4 RENAME TO system_points;
        CREATE INDEX system_points_by_run ON system_points(run_id, key, time);
        CREATE INDEX system_points_by_run_id ON system_points(run_id, id);
        """,
    ),
    Migration(
        "0006_api_keys",
        # The server's API keys, kept as the sha256 of their secret (runlane.store.keys). A name is unique
        # among valid keys only: a revoked key's name can be given to a new one, and the old row stays.
        """
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            read_only INTEGER NOT NULL,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE UNIQUE INDEX api_keys_valid_by_name ON api_keys(name) WHERE revoked_at IS NULL;
        """,
    ),
)


def _split_statements(sql: str) -> list[str]:
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def applied(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]


def _newer(done: list[str]) -> StoreError | None:
    known = {m.name for m in MIGRATIONS}
    unknown = [name for name in done if name not in known]
    if not unknown:
        return None
    return StoreError(
        f"this store was written by a newer runlane (unknown migrations: {', '.join(unknown)}); "
        "upgrade runlane to open it"
    )


def require_current(conn: sqlite3.Connection, path: object) -> None:
    """Check, without writing, that the schema is this runlane's (for a store opened read-only)."""
    done = applied(conn)
    newer = _newer(done)
    if newer is not None:
        raise newer
    if done != [m.name for m in MIGRATIONS]:
        raise StoreError(f"the store {path} was made by an older runlane and needs upgrading, which takes write access")


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date; ``conn`` must be in autocommit mode (``isolation_level=None``)."""
    known = [m.name for m in MIGRATIONS]
    if applied(conn) == known:
        return  # the common case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        done = applied(conn)  # re-read under the write lock: another process may have migrated
        newer = _newer(done)
        if newer is not None:
            raise newer
        for migration in MIGRATIONS:
            if migration.name in done:
                continue
            # executescript would commit the open transaction, so run the statements one by one.
            for statement in _split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (migration.name, time.time())
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
