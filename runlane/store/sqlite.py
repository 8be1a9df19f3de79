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
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from .. import wire
from ..blobs import LocalBlobs
from ..entities import (
    History,
    ImageInfo,
    LogLine,
    ProjectInfo,
    RunFile,
    RunInfo,
    SystemPoint,
    SystemSample,
    WriterInfo,
)
from ..errors import (
    DeletionRefusedError,
    OffsetConflictError,
    ProjectNotFoundError,
    RunNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from ..lineage import Node
from ..liveness import writer_is_alive
from ..merge import deep_merge
from ..naming import RunRef, check_project_key, normalize_project, project_key_candidates, split_display_id
from ..statuses import RUNNING, TERMINAL, normalize_status
from . import ingest as ingest_plan
from . import sqlite_series
from .base import Attached, MetricDetail, NewRun, OpenWriter, Store, WriterSpec
from .keys import ApiKeyInfo, check_key_name
from .migrations import migrate, require_current

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

DB_NAME = "runlane.db"
BUSY_TIMEOUT_S = 60.0

_RUN_COLUMNS = (
    "r.id, r.uid, p.key, r.seq, p.name, r.name, r.alias, r.notes, r.status, r.status_reason, r.created_at,"
    " r.started_at, r.ended_at, r.config, r.summary, r.primary_metric, r.primary_mode, r.parent_run_id,"
    " r.fork_run_id, r.fork_step"
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

    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and callable(value) and not isinstance(value, staticmethod):
            setattr(cls, name, wrap(value))
    return cls


@_names_damage
class SQLiteStore(Store):
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
        self._local = threading.local()  # .conn: this thread's connection
        self._local.conn = conn
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
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(f"the store in {self.dir} is read-only for this process (no write permission)")
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"could not lock the store {self.path} for writing: {exc}") from exc
        try:
            yield conn
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

    def _run_id(self, conn: sqlite3.Connection, ref: RunRef) -> int:
        if ref.kind == "id":
            row = conn.execute("SELECT id FROM runs WHERE id = ?", (ref.value,)).fetchone()
        elif ref.kind == "uid":
            row = conn.execute("SELECT id FROM runs WHERE uid = ?", (ref.value,)).fetchone()
        else:
            key, seq = split_display_id(str(ref.value))
            row = conn.execute(
                "SELECT r.id FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.key = ? AND r.seq = ?",
                (key, seq),
            ).fetchone()
        if row is None:
            raise RunNotFoundError(ref.value)
        return int(row[0])

    def _project(self, conn: sqlite3.Connection, name: str, wanted_key: str | None = None) -> int:
        row = conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        taken = {key for (key,) in conn.execute("SELECT key FROM projects")}
        if wanted_key is not None and wanted_key in taken:
            raise ValueError(f"project key {wanted_key!r} is taken by another project")
        candidates = [wanted_key] if wanted_key is not None else project_key_candidates(name)
        key = next((c for c in candidates if c not in taken), None)
        while key is None or key in taken:  # every derived key is taken: fall back to random letters
            import random  # only here: most processes never need it

            key = "".join(random.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4))
        cursor = conn.execute("INSERT INTO projects (name, key, created_at) VALUES (?, ?, ?)", (name, key, time.time()))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @staticmethod
    def _insert_writer(conn: sqlite3.Connection, run_id: int, writer: WriterSpec, now: float, *, owner: bool) -> None:
        conn.execute(
            "INSERT INTO run_writers (id, run_id, host, pid, pid_started, pid_namespace, journal, started_at,"
            " heartbeat_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                writer.id,
                run_id,
                writer.host,
                writer.pid,
                writer.pid_started,
                writer.pid_namespace,
                writer.journal,
                now,
                now,
                int(owner),
            ),
        )

    # -- writes ---------------------------------------------------------------------------------

    def create_run(self, new: NewRun, writer: WriterSpec) -> RunInfo:
        normalize_project(new.project)
        status = normalize_status(new.status)
        now = time.time()
        with self._transaction() as conn:
            made = conn.execute(
                "SELECT r.id FROM runs r JOIN run_writers w ON w.run_id = r.id WHERE r.uid = ? AND w.id = ?",
                (new.uid, writer.id),
            ).fetchone()
            if made is not None:  # a retry of this very call: the run exists already
                return self.run(RunRef("id", int(made[0])))
            new = self.resolve_fork(new)  # reads on this connection, inside this transaction
            project = normalize_project(new.project)
            project_id = self._project(conn, project)
            conn.execute("UPDATE projects SET next_seq = next_seq + 1 WHERE id = ?", (project_id,))
            (seq,) = conn.execute("SELECT next_seq - 1 FROM projects WHERE id = ?", (project_id,)).fetchone()
            try:
                cursor = conn.execute(
                    "INSERT INTO runs (uid, project_id, seq, name, alias, notes, status, created_at, started_at,"
                    " config, parent_run_id, fork_run_id, fork_step) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.uid,
                        project_id,
                        seq,
                        new.name,
                        new.alias,
                        new.notes,
                        status,
                        new.created_at if new.created_at is not None else now,
                        new.started_at if new.started_at is not None else now,
                        wire.dumps(new.config),
                        new.parent_run_id,
                        new.fork_run_id,
                        new.fork_step,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                if "runs.uid" in str(exc):
                    raise ValueError(f"a run with uid {new.uid!r} already exists") from exc
                raise
            run_id = cursor.lastrowid
            assert run_id is not None
            conn.executemany(
                "INSERT OR IGNORE INTO run_tags (run_id, tag, position) VALUES (?, ?, ?)",
                [(run_id, tag, i) for i, tag in enumerate(new.tags)],
            )
            self._insert_writer(conn, run_id, writer, now, owner=True)
        return self.run(RunRef("id", run_id))

    def attach(self, ref: RunRef, writer: WriterSpec, *, project: str | None = None) -> Attached:
        now = time.time()
        with self._transaction() as conn:
            run_id = self._run_id(conn, ref)
            if project is not None:
                key, seq, actual = conn.execute(
                    "SELECT p.key, r.seq, p.name FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?",
                    (run_id,),
                ).fetchone()
                if actual != normalize_project(project):
                    raise ValueError(f"run {key}-{seq} belongs to project {actual!r}, not {project!r}")
            again = conn.execute(
                "SELECT owner FROM run_writers WHERE id = ? AND run_id = ?", (writer.id, run_id)
            ).fetchone()
            if again is not None:  # a retry of this very call: the writer is registered already
                return Attached(self.run(RunRef("id", run_id)), sqlite_series.next_step(conn, run_id), bool(again[0]))
            conn.execute(
                "UPDATE runs SET status = ?, status_reason = NULL, ended_at = NULL WHERE id = ?", (RUNNING, run_id)
            )
            owned = conn.execute(
                "SELECT 1 FROM run_writers WHERE run_id = ? AND closed_at IS NULL AND owner = 1", (run_id,)
            ).fetchone()
            self._insert_writer(conn, run_id, writer, now, owner=owned is None)
            step = sqlite_series.next_step(conn, run_id)
        return Attached(self.run(RunRef("id", run_id)), step, owned is None)

    def add_writer(self, run_id: int, writer: WriterSpec) -> None:
        with self._transaction() as conn:
            self._run_id(conn, RunRef("id", run_id))  # RunNotFoundError rather than a dangling writer
            self._insert_writer(conn, run_id, writer, time.time(), owner=False)

    def ingest(self, writer_id: str, run_id: int, records: list[list[Any]], start: int, end: int) -> bool:
        changes = ingest_plan.plan(records)  # pure CPU work: done before taking the write lock
        with self._transaction() as conn:
            row = conn.execute("SELECT journal_offset, run_id FROM run_writers WHERE id = ?", (writer_id,)).fetchone()
            if row is None:
                raise StoreError(f"writer {writer_id} is not registered in this store")
            if row[1] != run_id:
                raise StoreError(f"writer {writer_id} writes to run {row[1]}, not to run {run_id}")
            if row[0] >= end:
                return False
            if row[0] != start:
                raise OffsetConflictError(writer_id, row[0], start)
            self._apply(conn, run_id, changes)
            conn.execute(
                "UPDATE run_writers SET journal_offset = ?, last_record_at = coalesce(?, last_record_at) WHERE id = ?",
                (end, changes.last_time, writer_id),
            )
            if changes.end is not None:  # the writer's last record: close it with the data, atomically
                status, reason = changes.end
                # The run ended when END was written, not when it reached the store (late after an outage,
                # a replay, a sync).
                self._close_writer(conn, writer_id, status, reason, time.time(), ended_at=changes.end_time)
        return True

    def _apply(self, conn: sqlite3.Connection, run_id: int, changes: ingest_plan.RunChanges) -> None:
        sqlite_series.append(conn, run_id, changes.series)
        if changes.lines:
            conn.executemany(
                "INSERT INTO log_lines (run_id, time, stream, text) VALUES (?, ?, ?, ?)",
                [(run_id, *line) for line in changes.lines],
            )
        if changes.summary or changes.config_updates:
            config_text, summary_text = conn.execute(
                "SELECT config, summary FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            config = wire.loads(config_text)
            for update in changes.config_updates:
                config = deep_merge(config, update)
            summary = {**wire.loads(summary_text), **changes.summary}
            conn.execute(
                "UPDATE runs SET config = ?, summary = ? WHERE id = ?",
                (wire.dumps(config), wire.dumps(summary), run_id),
            )
        for added, removed in changes.tag_ops:
            if added:
                (top,) = conn.execute(
                    "SELECT coalesce(max(position), -1) FROM run_tags WHERE run_id = ?", (run_id,)
                ).fetchone()
                conn.executemany(
                    "INSERT OR IGNORE INTO run_tags (run_id, tag, position) VALUES (?, ?, ?)",
                    [(run_id, tag, top + 1 + i) for i, tag in enumerate(added)],
                )
            if removed:
                conn.executemany(
                    "DELETE FROM run_tags WHERE run_id = ? AND tag = ?", [(run_id, tag) for tag in removed]
                )
        if changes.primary is not None:
            conn.execute(
                "UPDATE runs SET primary_metric = ?, primary_mode = ? WHERE id = ?", (*changes.primary, run_id)
            )
        if changes.system:
            conn.executemany(
                "INSERT INTO system_points (run_id, key, time, value) VALUES (?, ?, ?, ?)",
                [(run_id, *point) for point in changes.system],
            )
        if changes.images:
            conn.executemany(
                "INSERT INTO images (run_id, key, step, caption, blob, width, height, time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *image) for image in changes.images],
            )
        for kind, (blob, at, meta) in changes.files.items():
            conn.execute(
                "INSERT INTO run_files (run_id, kind, blob, time, meta) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, kind) DO UPDATE SET blob = excluded.blob, time = excluded.time,"
                " meta = excluded.meta",
                (run_id, kind, blob, at, wire.dumps(meta)),
            )

    def close_writer(self, writer_id: str, status: str | None = None, reason: str | None = None) -> None:
        with self._transaction() as conn:
            self._close_writer(conn, writer_id, status, reason, time.time())

    def _close_writer(
        self,
        conn: sqlite3.Connection,
        writer_id: str,
        status: str | None,
        reason: str | None,
        now: float,
        *,
        ended_at: float | None = None,
    ) -> None:
        row = conn.execute("SELECT run_id FROM run_writers WHERE id = ?", (writer_id,)).fetchone()
        if row is None:
            raise StoreError(f"writer {writer_id} is not registered in this store")
        conn.execute(
            "UPDATE run_writers SET closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL",
            (now, reason, writer_id),
        )
        if status is not None:
            self._end_run(conn, row[0], normalize_status(status), reason, now if ended_at is None else ended_at)

    def _end_run(self, conn: sqlite3.Connection, run_id: int, status: str, reason: str | None, at: float) -> None:
        ended_at = at if status in TERMINAL else None
        conn.execute(
            "UPDATE runs SET status = ?, status_reason = ?, ended_at = ? WHERE id = ?",
            (status, reason, ended_at, run_id),
        )
        if status in TERMINAL:
            self._write_best_to_summary(conn, run_id)

    def _write_best_to_summary(self, conn: sqlite3.Connection, run_id: int) -> None:
        name, mode, summary_text = conn.execute(
            "SELECT primary_metric, primary_mode, summary FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if name is None:
            return
        best = conn.execute(
            "SELECT min_value, min_step, max_value, max_step FROM series WHERE run_id = ? AND key = ?",
            (run_id, name),
        ).fetchone()
        value, step = (None, None) if best is None else (best[0:2] if mode == "min" else best[2:4])
        summary = wire.loads(summary_text)
        summary.update(best_metric_name=name, best_metric_mode=mode, best_metric_value=value, best_metric_step=step)
        conn.execute("UPDATE runs SET summary = ? WHERE id = ?", (wire.dumps(summary), run_id))

    def create_project(self, name: str, *, key: str | None = None, exist_ok: bool = False) -> ProjectInfo:
        project = normalize_project(name)
        wanted_key = check_project_key(key) if key is not None else None
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone() and not exist_ok:
                raise ValueError(f"project {project!r} already exists")
            project_id = self._project(conn, project, wanted_key)
        return next(p for p in self.projects() if p.id == project_id)

    def heartbeat(self, writer_ids: Sequence[str], at: float) -> None:
        if not writer_ids:
            return
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE run_writers SET heartbeat_at = ? WHERE id = ?", [(at, writer_id) for writer_id in writer_ids]
            )

    def open_writers(self) -> list[OpenWriter]:
        rows = self.conn.execute(
            "SELECT id, run_id, host, pid, pid_started, journal, journal_offset, heartbeat_at, last_record_at,"
            " pid_namespace, owner FROM run_writers WHERE closed_at IS NULL"
        ).fetchall()
        return [
            OpenWriter(writer_id, run_id, host, pid, started, journal, offset, heartbeat, last, namespace, bool(owner))
            for writer_id, run_id, host, pid, started, journal, offset, heartbeat, last, namespace, owner in rows
        ]

    def fail_abandoned(self, run_ids: Iterable[int], reasons: dict[int, str], ended_at: dict[int, float]) -> list[int]:
        failed = []
        with self._transaction() as conn:
            for run_id in run_ids:
                row = conn.execute(
                    "SELECT status, (SELECT count(*) FROM run_writers w WHERE w.run_id = runs.id"
                    " AND w.closed_at IS NULL AND w.owner = 1) FROM runs WHERE id = ?",
                    (run_id,),
                ).fetchone()
                if row is None or row[0] != RUNNING or row[1] > 0:
                    continue
                self._end_run(conn, run_id, "failed", reasons.get(run_id), ended_at.get(run_id, time.time()))
                failed.append(run_id)
        return failed

    # -- reads ----------------------------------------------------------------------------------

    def projects(self) -> list[ProjectInfo]:
        rows = self.conn.execute(
            "SELECT p.id, p.name, p.key, p.created_at, (SELECT count(*) FROM runs r WHERE r.project_id = p.id)"
            " FROM projects p ORDER BY p.name"
        ).fetchall()
        return [ProjectInfo(*row) for row in rows]

    def runs(
        self,
        project: str | None = None,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        *,
        metrics: MetricDetail = "all",
    ) -> list[RunInfo]:
        clauses: list[str] = []
        params: list[Any] = []
        if project is not None:
            name = normalize_project(project)
            if self.conn.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone() is None:
                raise ProjectNotFoundError(name)
            clauses.append("p.name = ?")
            params.append(name)
        if statuses:
            wanted = sorted({normalize_status(s) for s in statuses})
            clauses.append(f"r.status IN ({','.join('?' * len(wanted))})")
            params += wanted
        if tags:
            wanted_tags = sorted(set(tags))
            clauses.append(
                f"r.id IN (SELECT run_id FROM run_tags WHERE tag IN ({','.join('?' * len(wanted_tags))})"
                " GROUP BY run_id HAVING count(*) = ?)"
            )
            params += [*wanted_tags, len(wanted_tags)]
        where = " AND ".join(clauses) or "1"
        return self._run_infos(where, params, only_primary=metrics == "primary")

    def run(self, ref: RunRef) -> RunInfo:
        run_id = self._run_id(self.conn, ref)
        return self._run_infos("r.id = ?", [run_id])[0]

    def _run_infos(self, where: str, params: Sequence[Any], *, only_primary: bool = False) -> list[RunInfo]:
        conn = self.conn
        rows = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE {where}"
            " ORDER BY r.id DESC",
            params,
        ).fetchall()
        ids = [row[0] for row in rows]
        tags: dict[int, list[str]] = {run_id: [] for run_id in ids}
        writers: dict[int, list[WriterInfo]] = {run_id: [] for run_id in ids}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for run_id, tag in conn.execute(
                f"SELECT run_id, tag FROM run_tags WHERE run_id IN ({marks}) ORDER BY run_id, position", part
            ):
                tags[run_id].append(tag)
            for run_id, host, pid, started_at, heartbeat_at, closed_at, owner in conn.execute(
                f"SELECT run_id, host, pid, started_at, heartbeat_at, closed_at, owner FROM run_writers"
                f" WHERE run_id IN ({marks}) ORDER BY started_at",
                part,
            ):
                writers[run_id].append(WriterInfo(host, pid, started_at, heartbeat_at, closed_at, bool(owner)))
        metrics = sqlite_series.summaries(conn, ids, only_primary=only_primary)
        infos = []
        for row in rows:
            (run_id, uid, key, seq, project, name, alias, notes, status, reason, created, started, ended,
             config, summary, primary, mode, parent, fork_run, fork_step) = row  # fmt: skip
            series = metrics[run_id]
            best = series.get(primary) if primary else None
            if best is None:
                best_value, best_step = None, None
            elif mode == "min":
                best_value, best_step = best.min, best.min_step
            else:
                best_value, best_step = best.max, best.max_step
            infos.append(
                RunInfo(
                    id=run_id,
                    uid=uid,
                    display_id=f"{key}-{seq}",
                    project=project,
                    name=name,
                    alias=alias,
                    notes=notes,
                    status=status,
                    status_reason=reason,
                    created_at=created,
                    started_at=started,
                    ended_at=ended,
                    config=wire.loads(config),
                    tags=tuple(tags[run_id]),
                    summary=wire.loads(summary),
                    primary_metric=primary,
                    primary_mode=mode,
                    best_value=best_value,
                    best_step=best_step,
                    parent_run_id=parent,
                    fork_run_id=fork_run,
                    fork_step=fork_step,
                    metrics=series,
                    writers=tuple(writers[run_id]),
                )
            )
        return infos

    def history(self, run_id: int, key: str, start: int | None = None, end: int | None = None) -> History:
        return sqlite_series.read(self.conn, run_id, key, start, end)

    def point_arrays(
        self, run_id: int, key: str, start: int | None = None, end: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        return sqlite_series.read_arrays(self.conn, run_id, key, start, end)

    def ancestry(self, run_id: int) -> list[Node]:
        rows = self.conn.execute(
            """
            WITH RECURSIVE chain(id, fork_run_id, fork_step, depth) AS (
                SELECT id, fork_run_id, fork_step, 0 FROM runs WHERE id = ?
                UNION ALL
                SELECT r.id, r.fork_run_id, r.fork_step, c.depth + 1
                FROM runs r JOIN chain c ON r.id = c.fork_run_id
                WHERE c.depth < 10000
            )
            SELECT c.id, c.fork_run_id, c.fork_step, min(s.first_step), max(s.last_step)
            FROM chain c LEFT JOIN series s ON s.run_id = c.id
            GROUP BY c.id ORDER BY max(c.depth) DESC
            """,
            (run_id,),
        ).fetchall()
        if not rows:
            raise RunNotFoundError(run_id)
        return [Node(*row) for row in rows]

    def forks(self, run_id: int) -> list[RunInfo]:
        return sorted(self._run_infos("r.fork_run_id = ?", [run_id]), key=lambda run: run.id)

    def delete_run(self, ref: RunRef) -> None:
        with self._transaction() as conn:
            run_id = self._run_id(conn, ref)
            refused = f"run {self._label(conn, run_id)} cannot be deleted"
            forks = conn.execute(
                "SELECT id, fork_step FROM runs WHERE fork_run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
            if forks:
                listed = ", ".join(f"{self._label(conn, fork_id)} at step {step}" for fork_id, step in forks)
                raise DeletionRefusedError(f"{refused}: it has forks ({listed}); delete them first")
            nested = conn.execute("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY id", (run_id,)).fetchall()
            if nested:
                listed = ", ".join(self._label(conn, child) for (child,) in nested)
                raise DeletionRefusedError(f"{refused}: it has nested runs ({listed}); delete them first")
            now = time.time()
            writers = conn.execute(
                "SELECT host, pid_namespace, pid, pid_started, heartbeat_at, journal FROM run_writers"
                " WHERE run_id = ? AND closed_at IS NULL",
                (run_id,),
            ).fetchall()
            for host, namespace, pid, started, heartbeat, journal in writers:
                alive = writer_is_alive(
                    host=host,
                    pid_namespace=namespace,
                    pid=pid,
                    pid_started=started,
                    heartbeat_at=heartbeat,
                    now=now,
                    journal_path=self.dir / journal,
                )
                if alive:
                    raise DeletionRefusedError(f"{refused}: process {pid} on {host} is still writing to it")
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    @staticmethod
    def _label(conn: sqlite3.Connection, run_id: int) -> str:
        key, seq = conn.execute(
            "SELECT p.key, r.seq FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?", (run_id,)
        ).fetchone()
        return f"{key}-{seq}"

    def logs(
        self,
        run_id: int,
        *,
        after: int | None = None,
        limit: int | None = None,
        search: str | None = None,
        streams: Sequence[str] | None = None,
    ) -> list[LogLine]:
        clauses: list[str] = ["run_id = ?"]
        params: list[Any] = [run_id]
        if streams is not None:
            clauses.append(f"stream IN ({','.join('?' * len(streams))})")
            params += streams
        if search:
            # LIKE ignores ASCII case; the pattern's own wildcards are escaped so the search is a substring.
            clauses.append("text LIKE ? ESCAPE '\\'")
            params.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        rows = self._page("time, stream, text, id", "log_lines", clauses, params, after, limit)
        return list(map(LogLine._make, rows))

    def _page(
        self, columns: str, table: str, clauses: list[str], params: list[Any], after: int | None, limit: int | None
    ) -> list[Any]:
        """Rows of ``table`` matching ``clauses`` in id order, after the cursor ``after``, at most ``limit``."""
        if after is not None:
            clauses, params = [*clauses, "id > ?"], [*params, after]
        sql = f"SELECT {columns} FROM {table} WHERE {' AND '.join(clauses)} ORDER BY id"
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        return self.conn.execute(sql, params).fetchall()

    def system_samples(
        self, run_id: int, key: str | None = None, *, after: int | None = None, limit: int | None = None
    ) -> list[SystemSample]:
        clauses: list[str] = ["run_id = ?"]
        params: list[Any] = [run_id]
        if key is not None:
            clauses.append("key = ?")
            params.append(key)
        rows = self._page("key, time, value, id", "system_points", clauses, params, after, limit)
        # A REAL column stores NaN as NULL; give it back as NaN, never as None or 0.
        return [SystemSample(name, at, math.nan if value is None else value, i) for name, at, value, i in rows]

    def system_metrics(self, run_id: int, key: str | None = None) -> dict[str, list[SystemPoint]]:
        # The base class's grouping of system_samples, in SQL: a long run has hundreds of thousands of samples.
        where, params = ("run_id = ?", [run_id]) if key is None else ("run_id = ? AND key = ?", [run_id, key])
        out: dict[str, list[SystemPoint]] = {}
        # id breaks ties between samples with the same time (two processes attached to one run).
        for name, at, value in self.conn.execute(
            f"SELECT key, time, value FROM system_points WHERE {where} ORDER BY key, time, id", params
        ):
            out.setdefault(name, []).append(SystemPoint(at, math.nan if value is None else value))
        return out

    def images(self, run_id: int, key: str | None = None) -> list[ImageInfo]:
        where, params = ("run_id = ?", [run_id]) if key is None else ("run_id = ? AND key = ?", [run_id, key])
        rows = self.conn.execute(
            f"SELECT key, step, caption, blob, width, height, time FROM images WHERE {where} ORDER BY step, id",
            params,
        ).fetchall()
        return list(map(ImageInfo._make, rows))

    def run_file(self, run_id: int, kind: str) -> RunFile | None:
        row = self.conn.execute(
            "SELECT blob, time, meta FROM run_files WHERE run_id = ? AND kind = ?", (run_id, kind)
        ).fetchone()
        if row is None:
            return None
        return RunFile(kind, row[0], row[1], wire.loads(row[2]))

    # -- API keys -------------------------------------------------------------------------------

    _KEY_COLUMNS = "name, read_only, created_at, revoked_at"

    @staticmethod
    def _key(row: Sequence[Any]) -> ApiKeyInfo:
        return ApiKeyInfo(row[0], bool(row[1]), row[2], row[3])

    def create_api_key(self, name: str, secret_hash: str, *, read_only: bool) -> ApiKeyInfo:
        check_key_name(name)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone():
                raise ValueError(f"an API key named {name!r} exists already; revoke it first or choose another name")
            conn.execute(
                "INSERT INTO api_keys (name, secret_hash, read_only, created_at) VALUES (?, ?, ?, ?)",
                (name, secret_hash, int(read_only), time.time()),
            )
            row = conn.execute(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?", (secret_hash,))
            return self._key(row.fetchone())

    def api_keys(self) -> list[ApiKeyInfo]:
        rows = self.conn.execute(f"SELECT {self._KEY_COLUMNS} FROM api_keys ORDER BY name, id").fetchall()
        return [self._key(row) for row in rows]

    def revoke_api_key(self, name: str) -> ApiKeyInfo:
        with self._transaction() as conn:
            found = conn.execute(
                f"SELECT id, {self._KEY_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
            ).fetchone()
            if found is None:
                raise ValueError(f"no valid API key named {name!r} (see `runlane keys list`)")
            now = time.time()
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, found[0]))
            return self._key(found[1:])._replace(revoked_at=now)

    def api_key(self, secret_hash: str) -> ApiKeyInfo | None:
        row = self.conn.execute(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL", (secret_hash,)
        ).fetchone()
        return None if row is None else self._key(row)

    def has_api_keys(self) -> bool:
        return self.conn.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    # -- blobs ----------------------------------------------------------------------------------

    def put_blob(self, data: bytes, ext: str) -> str:
        return self.blobs.put_bytes(data, ext)

    def open_blob(self, name: str) -> BinaryIO:
        return self.blobs.open(name)

    def resolve(self, ref: RunRef) -> int:
        """The numeric id of the run ``ref`` names (``RunNotFoundError`` if none)."""
        return self._run_id(self.conn, ref)
