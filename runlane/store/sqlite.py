"""The embedded store: one SQLite file in WAL mode under the store directory.

Writes happen inside ``BEGIN IMMEDIATE`` transactions, so concurrent processes serialize on SQLite's
write lock (waiting up to ``BUSY_TIMEOUT_S``) instead of failing; readers never block writers.

One store object may be used from many threads (a server reads from many while one writes): each thread
gets its own connection on first use, so one thread's transaction is never another's, and a reader sees
only committed data.

A store this process may not write to (another user's, a read-only mount) is opened read-only when the
caller allows it (readers do; the SDK's writer does not): see ``_connect_read_only``.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ..blobs import LocalBlobs
from ..errors import StoreCorruptError, StoreError, StoreNotFoundError, StoreUnavailableError
from .migrations import migrate, require_current
from .sql import Db, Dialect, Params
from .sql_store import SQLStore

DB_NAME = "runlane.db"
BUSY_TIMEOUT_S = 60.0


def _unique_violation(exc: BaseException) -> str | None:
    # sqlite3 reports a constraint only in its message: "UNIQUE constraint failed: runs.uid".
    text = str(exc)
    prefix = "UNIQUE constraint failed: "
    if isinstance(exc, sqlite3.IntegrityError) and text.startswith(prefix):
        return text[len(prefix) :]
    return None


def _json_field(p: Params, source: str, path: Sequence[str]) -> tuple[str, str, str] | None:
    # json_type: integer, real, true, false, text, null, array, object; NULL where the path is absent.
    # A quoted label ($."a") matches an object key only, never an array index. A key with a quote or a
    # backslash has no quoted label: None, and the reference implementation answers.
    if any('"' in part or "\\" in part for part in path):
        return None
    where = "$" + "".join(f'."{part}"' for part in path)
    column = f"r.{source}"

    def kind() -> str:
        return f"json_type({column}, {p(where)})"

    def value() -> str:
        return f"json_extract({column}, {p(where)})"

    return (
        f"CASE WHEN {kind()} IN ('integer', 'real', 'true', 'false') THEN 0 WHEN {kind()} = 'text' THEN 1 ELSE 2 END",
        f"CASE {kind()} WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN {value()}"
        f" WHEN 'real' THEN {value()} END",
        f"CASE WHEN {kind()} = 'text' THEN {value()} END",
    )


DIALECT = Dialect(
    name="sqlite",
    for_update="",  # BEGIN IMMEDIATE holds the database's write lock for the whole transaction
    like="{} LIKE {} ESCAPE '\\'",  # LIKE ignores ASCII case
    text_order="",  # BINARY: UTF-8 bytes, which is code point order
    unique_violation=_unique_violation,
    json_field=_json_field,
)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (persistent: a no-op once any process has done it).

    The switch needs exclusive access, and SQLite may refuse it at once with "database is locked" when
    several processes open a brand-new store together, without waiting in its busy handler; retry.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    # A file that is not a database fails at its first statement, which is _use_wal's: the caller turns
    # that into StoreCorruptError naming the file.
    try:
        _use_wal(conn)
        # NORMAL: no fsync per commit in WAL mode. A process crash cannot lose a commit, and what a power
        # loss could lose is still in the journal, which is replayed on the next open.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open a database this process may not write to, without writing anything.

    In WAL mode a reader needs the write-ahead log and its shared-memory index (``-wal``, ``-shm``). While
    a writer has the store open they exist, and SQLite reads them even when it may not write them. Once
    the last writer has closed, both are gone and a reader without write permission on the directory
    cannot create the index; the main file then holds the whole database, so it is read as
    ``immutable`` (no index, no locks). A writer that starts during that read is not seen by it.
    """
    uri = path.absolute().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL index, if it can
        return conn
    except sqlite3.OperationalError:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"the store {path} is read-only here and its write-ahead log ({wal.name}) holds changes that cannot "
            "be read without write permission on the directory; open it once with write access"
        )
    conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)  # fmt: skip
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _writable(dir: Path, path: Path) -> bool:
    """Whether this process may write the database and create its ``-wal``/``-shm`` files next to it."""
    return os.access(dir, os.W_OK | os.X_OK) and os.access(path, os.W_OK)


def _is_damage(exc: sqlite3.Error) -> bool:
    name: str | None = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is not None:
        return name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT")
    return any(text in str(exc) for text in ("file is not a database", "database disk image is malformed"))


def _open_error(path: Path, exc: sqlite3.Error) -> StoreError:
    if _is_damage(exc):
        return StoreCorruptError(
            f"the store's database {path} is damaged or is not a runlane database ({exc}); restore it from a "
            "backup, or move it away to start a new store there"
        )
    return StoreError(f"cannot open the store's database {path}: {exc}")


_Cls = TypeVar("_Cls", bound=type)


def _names_damage(cls: _Cls) -> _Cls:
    """Make every public method turn SQLite's "malformed"/"not a database" errors into StoreCorruptError
    naming the file: damage can sit in any page, so a read long after opening may be the first to meet it."""

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def translated(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                if not _is_damage(exc):
                    raise
                raise _open_error(self.path, exc) from exc

        return translated

    # The public methods of the class and those it inherits from the shared SQL store.
    names = {
        name
        for klass in cls.__mro__
        if issubclass(klass, SQLStore)
        for name, value in vars(klass).items()
        if not name.startswith("_") and callable(value) and not isinstance(value, (staticmethod, classmethod))
    }
    for name in names:
        setattr(cls, name, wrap(getattr(cls, name)))
    return cls


@_names_damage
class SQLiteStore(SQLStore):
    """A store in ``dir`` (created when ``create`` is true, else ``StoreNotFoundError`` if absent).

    When this process may not write to an existing store, it is opened read-only if ``allow_read_only``
    (``read_only`` is then true and every write raises ``StoreError``), else refused with ``StoreError``.
    """

    def __init__(self, dir: Path, *, create: bool = True, allow_read_only: bool = False) -> None:
        self.dir = Path(dir)
        self.path = self.dir / DB_NAME
        self.blobs = LocalBlobs(self.dir)
        exists = self.path.exists()
        if not create and not exists:
            raise StoreNotFoundError(
                f"no runlane store in {self.dir} (pass dir= or set RUNLANE_DIR to where your runs are)"
            )
        self.read_only = exists and not _writable(self.dir, self.path)
        if self.read_only and not allow_read_only:
            raise StoreError(
                f"the store in {self.dir} is read-only for this process (no permission to write {self.path} or"
                " to create files next to it): runs cannot be recorded there; choose another dir="
            )
        if not exists:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store directory {self.dir}: {exc.strerror}") from exc
        conn = None
        try:
            conn = _connect_read_only(self.path) if self.read_only else _connect(self.path)
            if self.read_only:
                require_current(conn, self.path)
            else:
                migrate(conn)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise _open_error(self.path, exc) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._closed = False
        self._local = threading.local()  # .conn: this thread's connection, .db: the same seen through Db
        self._local.conn = conn
        self._local.db = Db(conn, DIALECT)
        self._connections = [conn]  # every thread's, closed together
        self._connections_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on a thread's first use: no two threads share one)."""
        if self._closed:
            raise StoreError("the store has been closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = _connect_read_only(self.path) if self.read_only else _connect(self.path)
            except sqlite3.Error as exc:
                raise _open_error(self.path, exc) from exc
            with self._connections_lock:
                if self._closed:
                    conn.close()
                    raise StoreError("the store has been closed")
                self._connections.append(conn)
            self._local.conn = conn
            self._local.db = Db(conn, DIALECT)
        return conn

    @property
    def _db(self) -> Db:
        self.conn  # noqa: B018 (opens this thread's connection; raises once the store is closed)
        db: Db = self._local.db
        return db

    _dialect = DIALECT

    @contextmanager
    def _reading(self) -> Iterator[Db]:
        yield self._db

    def _journal_path(self, journal: str) -> Path:
        return self.dir / journal

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        if self.read_only:
            raise StoreError(f"the store in {self.dir} is read-only for this process (no write permission)")
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"could not lock the store {self.path} for writing: {exc}") from exc
        try:
            yield self._local.db
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                # Locked for too long, disk full, an I/O error: the same write can succeed later.
                raise StoreUnavailableError(f"could not write to the store {self.path}: {exc}") from exc
            raise

    @contextmanager
    def patience(self, seconds: float) -> Iterator[None]:
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    def close(self) -> None:
        with self._connections_lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def put_blob(self, data: bytes, ext: str) -> str:
        return self.blobs.put_bytes(data, ext)

    def open_blob(self, name: str) -> BinaryIO:
        return self.blobs.open(name)
