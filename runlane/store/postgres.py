"""The PostgreSQL store: the shared SQL store (``sql_store``) over a psycopg 3 connection pool.

Opened by ``open_store("postgresql://user@host:port/dbname")``; this module, and with it psycopg, is
imported only then (``import runlane`` and the SQLite store never load a PostgreSQL driver). Several
processes (server workers, training processes, the drain) may write at once: see ``sql_store`` for how
each decision stays correct without SQLite's global write lock. Connections run in autocommit; every
store call is one transaction on one pooled connection (reads too, so a read sees one snapshot per
statement and several threads may read at once). Blobs live in the database (``postgres_schema``).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from ..blobs import blob_name, check_blob_name
from ..errors import StoreError, StoreNotFoundError, StoreUnavailableError
from . import postgres_schema
from .postgres_dialect import DIALECT
from .sql import Db, pyformat
from .sql_store import SQLStore

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

EXTRA = "runlane[postgres]"
#: Connections a store object keeps open at most (one per thread using it at once).
POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10.0
#: How long a store call waits for a free pooled connection, or for a row another process has locked.
WAIT_S = 60.0


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise StoreError(
            f"a postgresql:// store needs the PostgreSQL driver (psycopg 3 and psycopg_pool): pip install '{EXTRA}'"
        ) from exc
    return psycopg, psycopg_pool


def redact(url: str) -> str:
    """The URL without its password, for errors and logs."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return url.rsplit("@", maxsplit=1)[-1]
    host = parts.get("host", "localhost")
    port = parts.get("port", "5432")
    user = f"{parts['user']}@" if "user" in parts else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname', '')}"


class _PgDb(Db):
    def blob_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        # bytea in the binary protocol: a third of the time of hex text for a 100,000-point series
        rows: list[Any] = self.raw.execute(self._translate(sql), params, binary=True).fetchall()
        return rows

    def _executemany(self, sql: str, rows: list[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(sql, rows)


class PostgresStore(SQLStore):
    """A store in the PostgreSQL database at ``url`` (its schema created or migrated on open).

    ``create`` is accepted for symmetry with the embedded store: a database is never created here (that
    needs rights a store should not ask for), so a missing one is ``StoreNotFoundError`` either way.
    ``allow_read_only`` too: a role's privileges are not probed at open; a write it may not make fails
    with a ``StoreError`` naming the database.
    """

    _dialect = DIALECT

    def __init__(self, url: str, *, create: bool = True, allow_read_only: bool = False) -> None:
        psycopg, psycopg_pool = _driver()
        self.url = url
        self.label = redact(url)
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ValueError(f"malformed PostgreSQL URL {self.label!r}: {exc}") from exc
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)) as conn:
                postgres_schema.migrate(conn, self.label)
        except psycopg.OperationalError as exc:
            raise self._connect_error(exc) from exc
        except psycopg.Error as exc:  # e.g. a role that may not create runlane's tables
            raise StoreError(f"cannot set up the PostgreSQL store {self.label}: {exc}") from exc
        self._local = threading.local()  # .db: this thread's current transaction; .patience: see patience()
        pool: ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            open=False,
            name="runlane",
            timeout=WAIT_S,
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise StoreUnavailableError(f"cannot connect to the PostgreSQL store {self.label}: {exc}") from exc
        self._pool: ConnectionPool[Any] | None = pool

    def _connect_error(self, exc: psycopg.OperationalError) -> StoreError | StoreNotFoundError:
        text = str(exc).strip()
        if "does not exist" in text and "database" in text:  # libpq reports it only in its message
            return StoreNotFoundError(
                f"no PostgreSQL database {self.label} (create it first, e.g. createdb; runlane makes its tables)"
            )
        return StoreUnavailableError(f"cannot connect to the PostgreSQL store {self.label}: {text}")

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _connection(self, *, write: bool) -> Iterator[Db]:
        """This thread's current transaction, or a pooled connection in a new one."""
        current: Db | None = getattr(self._local, "db", None)
        if current is not None:
            if write and not getattr(self._local, "write", False):
                raise StoreError("a store write was started inside a read (a bug in runlane)")
            yield current
            return
        import psycopg
        import psycopg_pool

        if self._pool is None:
            raise StoreError("the store has been closed")
        patience: float | None = getattr(self._local, "patience", None)
        try:
            with self._pool.connection(timeout=WAIT_S if patience is None else patience) as conn, conn.transaction():
                if patience is not None:
                    conn.execute(f"SET LOCAL lock_timeout = {max(1, int(patience * 1000))}")
                db = _PgDb(conn, DIALECT, pyformat)
                self._local.db, self._local.write = db, write
                try:
                    yield db
                finally:
                    self._local.db = None
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailableError(f"no connection to the PostgreSQL store {self.label} was free: {exc}") from exc
        except psycopg.OperationalError as exc:
            # The server went away, a lock wait ran out, a deadlock was broken: the same call can succeed later.
            raise StoreUnavailableError(f"could not use the PostgreSQL store {self.label}: {exc}") from exc
        except psycopg.Error as exc:
            # Refused for good (no privilege on a table, a statement the server rejects): retrying cannot help.
            raise StoreError(f"the PostgreSQL store {self.label} refused a request: {exc}") from exc

    def _transaction(self) -> AbstractContextManager[Db]:
        return self._connection(write=True)

    def _reading(self) -> AbstractContextManager[Db]:
        return self._connection(write=False)

    @contextmanager
    def patience(self, seconds: float) -> Iterator[None]:
        self._local.patience = seconds  # this thread's calls only: other threads keep their waits
        try:
            yield
        finally:
            self._local.patience = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- blobs ----------------------------------------------------------------------------------

    def put_blob(self, data: bytes, ext: str) -> str:
        name = blob_name(hashlib.sha256(data).hexdigest(), ext)
        with self._transaction() as db:
            db.execute("INSERT INTO blobs (name, data) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, data))
        return name

    def open_blob(self, name: str) -> BinaryIO:
        check_blob_name(name)
        row = self._one("SELECT data FROM blobs WHERE name = ?", (name,))
        if row is None:
            raise StoreError(f"the store {self.label} holds no blob {name}")
        return io.BytesIO(row[0])
