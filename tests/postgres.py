"""A real PostgreSQL for tests: the local server at 127.0.0.1:5432 (user postgres, trust auth).

Every test module that uses it gets a database of its own, made fresh and dropped afterwards
(``postgres_url`` in ``tests/conftest.py``). A missing server fails the tests that need it, never skips
them: ``.ci/run`` installs and starts one on a fresh machine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

HOST = os.environ.get("RUNLANE_TEST_PGHOST", "127.0.0.1")
PORT = int(os.environ.get("RUNLANE_TEST_PGPORT", "5432"))
USER = "postgres"
ADMIN_URL = f"postgresql://{USER}@{HOST}:{PORT}/postgres"


def url_of(database: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{database}"


def _admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is needed at {HOST}:{PORT} (user {USER}, trust auth) and is not there: {exc}. "
            ".ci/run installs and starts it (apt-get install postgresql; pg_ctlcluster <version> main start)",
            pytrace=False,
        )


@contextmanager
def fresh_database(prefix: str = "runlane_test") -> Iterator[str]:
    """The URL of a new empty database, dropped (with any connections left to it) afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}".lower()
    admin = _admin()
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url_of(name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate(url: str) -> None:
    """Empty every table of runlane's schema (its migration record stays), ids starting again at 1."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_name <> 'runlane_schema'"
            )
        ]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
