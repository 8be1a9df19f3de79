"""The logic of a store in a SQL database, written once for SQLite and PostgreSQL.

A backend (``sqlite.SQLiteStore``, ``postgres.PostgresStore``) supplies connections and its dialect
(``runlane.store.sql``); everything a store decides (display ids, exactly-once ingest, ownership of a run,
fork resolution, delete rules) happens here, inside ``_transaction()``.

Concurrency, for a backend where several processes write at once (PostgreSQL; SQLite's write lock makes
each transaction exclusive anyway): a transaction locks the rows it decides on before reading them
(``Dialect.for_update``). ``ingest`` locks the writer's row, so of two processes offering one batch the
second sees the offset the first committed, and then the run's row, so one run's series, summary and
tags change one batch at a time (their ids then increase in commit order, the cursor rule of ``logs``).
A display id comes from an ``UPDATE ... RETURNING`` of the project's counter, which locks that project's
row until commit: concurrent creators in one project queue there, and a rolled-back creation gives its
number back, so display ids stay gap-free. A project is created with ``INSERT ... ON CONFLICT DO NOTHING``
and looked up again when that inserted nothing, so concurrent creators of one project agree on it.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import wire
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
    StoreError,
)
from ..lineage import Node
from ..liveness import writer_is_alive
from ..merge import deep_merge
from ..naming import RunRef, check_project_key, normalize_project, project_key_candidates, split_display_id
from ..statuses import RUNNING, TERMINAL, normalize_status
from . import ingest as ingest_plan
from . import sql_series
from .base import Attached, MetricDetail, NewRun, OpenWriter, Store, WriterSpec
from .sql import Db, Dialect, like_pattern, marks

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .keys import ApiKeyInfo
    from .runs_query import RunsPage, RunsQuery

_RUN_COLUMNS = (
    "r.id, r.uid, p.key, r.seq, p.name, r.name, r.alias, r.notes, r.status, r.status_reason, r.created_at,"
    " r.started_at, r.ended_at, r.config, r.summary, r.primary_metric, r.primary_mode, r.parent_run_id,"
    " r.fork_run_id, r.fork_step"
)


class SQLStore(Store):
    """Every ``Store`` method over a SQL database; subclasses provide connections and blobs."""

    _dialect: Dialect

    # -- what a backend provides ----------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Db]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Db]:
        """A connection to read with: inside ``_transaction()`` on this thread, the transaction's own."""

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._reading() as db:
            return db.all(sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._reading() as db:
            return db.one(sql, params)

    def _journal_path(self, journal: str) -> Path | None:
        """Where a writer's journal is on this machine, if the store knows (the embedded store does)."""
        return None

    def _run_id(self, db: Db, ref: RunRef) -> int:
        if ref.kind == "id":
            row = db.execute("SELECT id FROM runs WHERE id = ?", (ref.value,)).fetchone()
        elif ref.kind == "uid":
            row = db.execute("SELECT id FROM runs WHERE uid = ?", (ref.value,)).fetchone()
        else:
            key, seq = split_display_id(str(ref.value))
            row = db.execute(
                "SELECT r.id FROM runs r JOIN projects p ON p.id = r.project_id WHERE p.key = ? AND r.seq = ?",
                (key, seq),
            ).fetchone()
        if row is None:
            raise RunNotFoundError(ref.value)
        return int(row[0])

    def _project(self, db: Db, name: str, wanted_key: str | None = None) -> int:
        """The id of project ``name``, created if absent (with ``wanted_key``, else a key derived from the name).

        No table lock: an insert that breaks a unique constraint inserts nothing, and then either a
        concurrent creator made this project (found by name) or the key is another project's (try the next).
        """
        row = db.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        taken = {key for (key,) in db.execute("SELECT key FROM projects")}
        if wanted_key is not None and wanted_key in taken:
            raise ValueError(f"project key {wanted_key!r} is taken by another project")
        candidates = [wanted_key] if wanted_key is not None else project_key_candidates(name)
        untried = iter([c for c in candidates if c not in taken])
        while True:
            key = next(untried, None)
            if key is None:  # every derived key is taken: fall back to random letters
                import random  # only here: most processes never need it

                key = "".join(random.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4))
            made = db.execute(
                "INSERT INTO projects (name, key, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                (name, key, time.time()),
            ).fetchone()
            if made is not None:
                return int(made[0])
            row = db.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
            if row is not None:  # made by a concurrent creator since the first look
                return int(row[0])
            if wanted_key is not None:
                raise ValueError(f"project key {wanted_key!r} is taken by another project")

    @staticmethod
    def _insert_writer(db: Db, run_id: int, writer: WriterSpec, now: float, *, owner: bool) -> None:
        db.execute(
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
        with self._transaction() as db:
            made = db.execute(
                "SELECT r.id FROM runs r JOIN run_writers w ON w.run_id = r.id WHERE r.uid = ? AND w.id = ?",
                (new.uid, writer.id),
            ).fetchone()
            if made is not None:  # a retry of this very call: the run exists already
                return self.run(RunRef("id", int(made[0])))
            new = self.resolve_fork(new)  # reads on this connection, inside this transaction
            # A parent named by id must exist: RunNotFoundError naming it, never a foreign-key failure.
            for linked in (new.parent_run_id, new.fork_run_id):
                if linked is not None:
                    self._run_id(db, RunRef("id", linked))
            project = normalize_project(new.project)
            project_id = self._project(db, project)
            # Locks the project's row until commit: concurrent creators in this project take turns here.
            (seq,) = db.execute(
                "UPDATE projects SET next_seq = next_seq + 1 WHERE id = ? RETURNING next_seq - 1", (project_id,)
            ).fetchone()
            try:
                run_id = db.insert_id(
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
            except Exception as exc:
                if db.dialect.unique_violation(exc) == "runs.uid":
                    raise ValueError(f"a run with uid {new.uid!r} already exists") from exc
                raise
            db.many(
                "INSERT INTO run_tags (run_id, tag, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(run_id, tag, i) for i, tag in enumerate(new.tags)],
            )
            self._insert_writer(db, run_id, writer, now, owner=True)
        return self.run(RunRef("id", run_id))

    def attach(self, ref: RunRef, writer: WriterSpec, *, project: str | None = None) -> Attached:
        now = time.time()
        with self._transaction() as db:
            run_id = self._run_id(db, ref)
            if project is not None:
                key, seq, actual = db.execute(
                    "SELECT p.key, r.seq, p.name FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?",
                    (run_id,),
                ).fetchone()
                if actual != normalize_project(project):
                    raise ValueError(f"run {key}-{seq} belongs to project {actual!r}, not {project!r}")
            again = db.execute(
                "SELECT owner FROM run_writers WHERE id = ? AND run_id = ?", (writer.id, run_id)
            ).fetchone()
            if again is not None:  # a retry of this very call: the writer is registered already
                return Attached(self.run(RunRef("id", run_id)), sql_series.next_step(db, run_id), bool(again[0]))
            db.execute(
                "UPDATE runs SET status = ?, status_reason = NULL, ended_at = NULL WHERE id = ?", (RUNNING, run_id)
            )
            owned = db.execute(
                "SELECT 1 FROM run_writers WHERE run_id = ? AND closed_at IS NULL AND owner = 1", (run_id,)
            ).fetchone()
            self._insert_writer(db, run_id, writer, now, owner=owned is None)
            step = sql_series.next_step(db, run_id)
        return Attached(self.run(RunRef("id", run_id)), step, owned is None)

    def add_writer(self, run_id: int, writer: WriterSpec) -> None:
        with self._transaction() as db:
            self._run_id(db, RunRef("id", run_id))  # RunNotFoundError rather than a dangling writer
            self._insert_writer(db, run_id, writer, time.time(), owner=False)

    def ingest(self, writer_id: str, run_id: int, records: list[list[Any]], start: int, end: int) -> bool:
        changes = ingest_plan.plan(records)  # pure CPU work: done before taking the write lock
        with self._transaction() as db:
            lock = db.dialect.for_update
            # Locked until commit: a second process offering this batch waits here, then sees the new offset.
            row = db.one(f"SELECT journal_offset, run_id FROM run_writers WHERE id = ?{lock}", (writer_id,))
            if row is None:
                raise StoreError(f"writer {writer_id} is not registered in this store")
            if row[1] != run_id:
                raise StoreError(f"writer {writer_id} writes to run {row[1]}, not to run {run_id}")
            if row[0] >= end:
                return False
            if row[0] != start:
                raise OffsetConflictError(writer_id, row[0], start)
            db.one(f"SELECT id FROM runs WHERE id = ?{lock}", (run_id,))  # one batch per run at a time
            self._apply(db, run_id, changes)
            db.execute(
                "UPDATE run_writers SET journal_offset = ?, last_record_at = coalesce(?, last_record_at) WHERE id = ?",
                (end, changes.last_time, writer_id),
            )
            if changes.end is not None:  # the writer's last record: close it with the data, atomically
                status, reason = changes.end
                # The run ended when END was written, not when it reached the store (late after an outage,
                # a replay, a sync).
                self._close_writer(db, writer_id, status, reason, time.time(), ended_at=changes.end_time)
        return True

    def _apply(self, db: Db, run_id: int, changes: ingest_plan.RunChanges) -> None:
        sql_series.append(db, run_id, changes.series)
        if changes.lines:
            db.many(
                "INSERT INTO log_lines (run_id, time, stream, text) VALUES (?, ?, ?, ?)",
                [(run_id, *line) for line in changes.lines],
            )
        if changes.summary or changes.config_updates:
            config_text, summary_text = db.execute(
                "SELECT config, summary FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            config = wire.loads(config_text)
            for update in changes.config_updates:
                config = deep_merge(config, update)
            summary = {**wire.loads(summary_text), **changes.summary}
            db.execute(
                "UPDATE runs SET config = ?, summary = ? WHERE id = ?",
                (wire.dumps(config), wire.dumps(summary), run_id),
            )
        for added, removed in changes.tag_ops:
            if added:
                (top,) = db.execute(
                    "SELECT coalesce(max(position), -1) FROM run_tags WHERE run_id = ?", (run_id,)
                ).fetchone()
                db.many(
                    "INSERT INTO run_tags (run_id, tag, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [(run_id, tag, top + 1 + i) for i, tag in enumerate(added)],
                )
            if removed:
                db.many("DELETE FROM run_tags WHERE run_id = ? AND tag = ?", [(run_id, tag) for tag in removed])
        if changes.primary is not None:
            db.execute("UPDATE runs SET primary_metric = ?, primary_mode = ? WHERE id = ?", (*changes.primary, run_id))
        if changes.system:
            db.many(
                "INSERT INTO system_points (run_id, key, time, value) VALUES (?, ?, ?, ?)",
                [(run_id, *point) for point in changes.system],
            )
        if changes.images:
            db.many(
                "INSERT INTO images (run_id, key, step, caption, blob, width, height, time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *image) for image in changes.images],
            )
        for kind, (blob, at, meta) in changes.files.items():
            db.execute(
                "INSERT INTO run_files (run_id, kind, blob, time, meta) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, kind) DO UPDATE SET blob = excluded.blob, time = excluded.time,"
                " meta = excluded.meta",
                (run_id, kind, blob, at, wire.dumps(meta)),
            )

    def close_writer(self, writer_id: str, status: str | None = None, reason: str | None = None) -> None:
        with self._transaction() as db:
            self._close_writer(db, writer_id, status, reason, time.time())

    def _close_writer(
        self,
        db: Db,
        writer_id: str,
        status: str | None,
        reason: str | None,
        now: float,
        *,
        ended_at: float | None = None,
    ) -> None:
        row = db.execute("SELECT run_id FROM run_writers WHERE id = ?", (writer_id,)).fetchone()
        if row is None:
            raise StoreError(f"writer {writer_id} is not registered in this store")
        db.execute(
            "UPDATE run_writers SET closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL",
            (now, reason, writer_id),
        )
        if status is not None:
            self._end_run(db, row[0], normalize_status(status), reason, now if ended_at is None else ended_at)

    def _end_run(self, db: Db, run_id: int, status: str, reason: str | None, at: float) -> None:
        ended_at = at if status in TERMINAL else None
        db.execute(
            "UPDATE runs SET status = ?, status_reason = ?, ended_at = ? WHERE id = ?",
            (status, reason, ended_at, run_id),
        )
        if status in TERMINAL:
            self._write_best_to_summary(db, run_id)

    def _write_best_to_summary(self, db: Db, run_id: int) -> None:
        name, mode, summary_text = db.execute(
            "SELECT primary_metric, primary_mode, summary FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if name is None:
            return
        best = db.execute(
            "SELECT min_value, min_step, max_value, max_step FROM series WHERE run_id = ? AND key = ?",
            (run_id, name),
        ).fetchone()
        value, step = (None, None) if best is None else (best[0:2] if mode == "min" else best[2:4])
        summary = wire.loads(summary_text)
        summary.update(best_metric_name=name, best_metric_mode=mode, best_metric_value=value, best_metric_step=step)
        db.execute("UPDATE runs SET summary = ? WHERE id = ?", (wire.dumps(summary), run_id))

    def create_project(self, name: str, *, key: str | None = None, exist_ok: bool = False) -> ProjectInfo:
        project = normalize_project(name)
        wanted_key = check_project_key(key) if key is not None else None
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM projects WHERE name = ?", (project,)).fetchone() and not exist_ok:
                raise ValueError(f"project {project!r} already exists")
            project_id = self._project(db, project, wanted_key)
        return next(p for p in self.projects() if p.id == project_id)

    def update_project(
        self, name: str, *, rename: str | None = None, meta: Mapping[str, str | None] | None = None
    ) -> ProjectInfo:
        project = normalize_project(name)
        new_name = normalize_project(rename) if rename is not None else None
        for key, value in (meta or {}).items():
            if not isinstance(key, str) or not key or (value is not None and not isinstance(value, str)):
                raise ValueError(
                    f"project metadata takes non-empty string keys and string values, got {key!r}: {value!r}"
                )
        with self._transaction() as db:
            row = db.one(f"SELECT id FROM projects WHERE name = ?{db.dialect.for_update}", (project,))
            if row is None:
                raise ProjectNotFoundError(project)
            project_id = int(row[0])
            if new_name is not None and new_name != project:
                if db.one("SELECT 1 FROM projects WHERE name = ?", (new_name,)):
                    raise ValueError(f"project {new_name!r} already exists")
                try:
                    db.execute("UPDATE projects SET name = ? WHERE id = ?", (new_name, project_id))
                except Exception as exc:  # a concurrent rename or creation took the name meanwhile
                    if db.dialect.unique_violation(exc) == "projects.name":
                        raise ValueError(f"project {new_name!r} already exists") from exc
                    raise
            for key, value in (meta or {}).items():
                if value is None:
                    db.execute("DELETE FROM project_meta WHERE project_id = ? AND key = ?", (project_id, key))
                else:
                    db.execute(
                        "INSERT INTO project_meta (project_id, key, value) VALUES (?, ?, ?)"
                        " ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value",
                        (project_id, key, value),
                    )
        return next(p for p in self.projects() if p.id == project_id)

    def heartbeat(self, writer_ids: Sequence[str], at: float) -> None:
        if not writer_ids:
            return
        with self._transaction() as db:
            db.many(
                # in one order, so two processes beating for overlapping writers cannot deadlock
                "UPDATE run_writers SET heartbeat_at = ? WHERE id = ?",
                [(at, writer_id) for writer_id in sorted(writer_ids)],
            )

    def open_writers(self) -> list[OpenWriter]:
        rows = self._all(
            "SELECT id, run_id, host, pid, pid_started, journal, journal_offset, heartbeat_at, last_record_at,"
            " pid_namespace, owner FROM run_writers WHERE closed_at IS NULL"
        )
        return [
            OpenWriter(writer_id, run_id, host, pid, started, journal, offset, heartbeat, last, namespace, bool(owner))
            for writer_id, run_id, host, pid, started, journal, offset, heartbeat, last, namespace, owner in rows
        ]

    def fail_abandoned(self, run_ids: Iterable[int], reasons: dict[int, str], ended_at: dict[int, float]) -> list[int]:
        failed = []
        with self._transaction() as db:
            for run_id in run_ids:
                row = db.execute(
                    "SELECT status, (SELECT count(*) FROM run_writers w WHERE w.run_id = runs.id"
                    " AND w.closed_at IS NULL AND w.owner = 1) FROM runs WHERE id = ?",
                    (run_id,),
                ).fetchone()
                if row is None or row[0] != RUNNING or row[1] > 0:
                    continue
                self._end_run(db, run_id, "failed", reasons.get(run_id), ended_at.get(run_id, time.time()))
                failed.append(run_id)
        return failed

    # -- reads ----------------------------------------------------------------------------------

    def projects(self) -> list[ProjectInfo]:
        rows = self._all(
            "SELECT p.id, p.name, p.key, p.created_at, (SELECT count(*) FROM runs r WHERE r.project_id = p.id)"
            " FROM projects p ORDER BY p.name"
        )
        return [ProjectInfo(*row) for row in rows]

    def project_meta(self, name: str) -> dict[str, str]:
        project = normalize_project(name)
        with self._reading() as db:
            row = db.one("SELECT id FROM projects WHERE name = ?", (project,))
            if row is None:
                raise ProjectNotFoundError(project)
            return dict(db.all("SELECT key, value FROM project_meta WHERE project_id = ? ORDER BY key", (row[0],)))

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
            if self._one("SELECT 1 FROM projects WHERE name = ?", (name,)) is None:
                raise ProjectNotFoundError(name)
            clauses.append("p.name = ?")
            params.append(name)
        if statuses:
            wanted = sorted({normalize_status(s) for s in statuses})
            clauses.append(f"r.status IN ({marks(len(wanted))})")
            params += wanted
        if tags:
            wanted_tags = sorted(set(tags))
            clauses.append(
                f"r.id IN (SELECT run_id FROM run_tags WHERE tag IN ({marks(len(wanted_tags))})"
                " GROUP BY run_id HAVING count(*) = ?)"
            )
            params += [*wanted_tags, len(wanted_tags)]
        where = " AND ".join(clauses) or "TRUE"
        return self._run_infos(where, params, only_primary=metrics == "primary")

    def runs_page(self, query: RunsQuery) -> RunsPage:
        from . import sql_runs  # only readers that page pay for it, never init()
        from .runs_query import RunsPage, decode_offset, encode_offset

        query.check()
        with self._reading() as db:
            found = sql_runs.page(db, query)
            if found is None:  # a sort this dialect cannot express in SQL
                return super().runs_page(query)
            ids, total = found
            rows = (
                []
                if not ids
                else db.all(
                    f"SELECT {_RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id"
                    f" WHERE r.id IN ({marks(len(ids))})",
                    ids,
                )
            )
            runs = self._infos(db, sql_runs.in_order(ids, rows), only_primary=True)
        offset = decode_offset(query.cursor) if query.cursor else 0
        following = offset + len(ids)
        return RunsPage(runs, encode_offset(following) if following < total else None, total)

    def run(self, ref: RunRef) -> RunInfo:
        with self._reading() as db:
            run_id = self._run_id(db, ref)
            return self._run_infos("r.id = ?", [run_id])[0]

    def _run_infos(self, where: str, params: Sequence[Any], *, only_primary: bool = False) -> list[RunInfo]:
        with self._reading() as db:
            rows = db.all(
                f"SELECT {_RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE {where}"
                " ORDER BY r.id DESC",
                params,
            )
            return self._infos(db, rows, only_primary=only_primary)

    def _infos(self, db: Db, rows: list[Any], *, only_primary: bool) -> list[RunInfo]:
        """RunInfos of rows of ``_RUN_COLUMNS``, in the rows' order."""
        ids = [row[0] for row in rows]
        tags: dict[int, list[str]] = {run_id: [] for run_id in ids}
        writers: dict[int, list[WriterInfo]] = {run_id: [] for run_id in ids}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            for run_id, tag in db.execute(
                f"SELECT run_id, tag FROM run_tags WHERE run_id IN ({marks(len(part))}) ORDER BY run_id, position",
                part,
            ):
                tags[run_id].append(tag)
            for run_id, host, pid, started_at, heartbeat_at, closed_at, owner in db.execute(
                f"SELECT run_id, host, pid, started_at, heartbeat_at, closed_at, owner FROM run_writers"
                f" WHERE run_id IN ({marks(len(part))}) ORDER BY started_at, id",
                part,
            ):
                writers[run_id].append(WriterInfo(host, pid, started_at, heartbeat_at, closed_at, bool(owner)))
        metrics = sql_series.summaries(db, ids, only_primary=only_primary)
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
        with self._reading() as db:
            return sql_series.read(db, run_id, key, start, end)

    def point_arrays(
        self, run_id: int, key: str, start: int | None = None, end: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        with self._reading() as db:
            return sql_series.read_arrays(db, run_id, key, start, end)

    def ancestry(self, run_id: int) -> list[Node]:
        rows = self._all(
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
            GROUP BY c.id, c.fork_run_id, c.fork_step ORDER BY max(c.depth) DESC
            """,
            (run_id,),
        )
        if not rows:
            raise RunNotFoundError(run_id)
        return [Node(*row) for row in rows]

    def forks(self, run_id: int) -> list[RunInfo]:
        return sorted(self._run_infos("r.fork_run_id = ?", [run_id]), key=lambda run: run.id)

    def delete_run(self, ref: RunRef) -> None:
        with self._transaction() as db:
            run_id = self._run_id(db, ref)
            refused = f"run {self._label(db, run_id)} cannot be deleted"
            forks = db.execute("SELECT id, fork_step FROM runs WHERE fork_run_id = ? ORDER BY id", (run_id,)).fetchall()
            if forks:
                listed = ", ".join(f"{self._label(db, fork_id)} at step {step}" for fork_id, step in forks)
                raise DeletionRefusedError(f"{refused}: it has forks ({listed}); delete them first")
            nested = db.execute("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY id", (run_id,)).fetchall()
            if nested:
                listed = ", ".join(self._label(db, child) for (child,) in nested)
                raise DeletionRefusedError(f"{refused}: it has nested runs ({listed}); delete them first")
            now = time.time()
            writers = db.execute(
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
                    journal_path=self._journal_path(journal),
                )
                if alive:
                    raise DeletionRefusedError(f"{refused}: process {pid} on {host} is still writing to it")
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    @staticmethod
    def _label(db: Db, run_id: int) -> str:
        key, seq = db.execute(
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
            clauses.append(f"stream IN ({marks(len(streams))})")
            params += streams
        if search:
            # a substring, ignoring ASCII case (the pattern's own wildcards are escaped)
            clauses.append(self._dialect.like.format("text", "?"))
            params.append(like_pattern(search))
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
        return self._all(sql, params)

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
        for name, at, value in self._all(
            f"SELECT key, time, value FROM system_points WHERE {where} ORDER BY key, time, id", params
        ):
            out.setdefault(name, []).append(SystemPoint(at, math.nan if value is None else value))
        return out

    def images(self, run_id: int, key: str | None = None) -> list[ImageInfo]:
        where, params = ("run_id = ?", [run_id]) if key is None else ("run_id = ? AND key = ?", [run_id, key])
        rows = self._all(
            f"SELECT key, step, caption, blob, width, height, time FROM images WHERE {where} ORDER BY step, id",
            params,
        )
        return list(map(ImageInfo._make, rows))

    def run_file(self, run_id: int, kind: str) -> RunFile | None:
        row = self._one("SELECT blob, time, meta FROM run_files WHERE run_id = ? AND kind = ?", (run_id, kind))
        if row is None:
            return None
        return RunFile(kind, row[0], row[1], wire.loads(row[2]))

    def resolve(self, ref: RunRef) -> int:
        """The numeric id of the run ``ref`` names (``RunNotFoundError`` if none)."""
        with self._reading() as db:
            return self._run_id(db, ref)

    # -- API keys (runlane.store.keys: the server's keys, kept as the sha256 of their secret) ---------

    _KEY_COLUMNS = "name, read_only, created_at, revoked_at"

    @staticmethod
    def _key(row: Sequence[Any]) -> ApiKeyInfo:
        from .keys import ApiKeyInfo  # here, not at the top: init() never needs hashlib or secrets

        return ApiKeyInfo(row[0], bool(row[1]), row[2], row[3])

    def create_api_key(self, name: str, secret_hash: str, *, read_only: bool) -> ApiKeyInfo:
        from .keys import check_key_name

        check_key_name(name)
        taken = f"an API key named {name!r} exists already; revoke it first or choose another name"
        with self._transaction() as db:
            if db.one("SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)):
                raise ValueError(taken)
            try:
                db.execute(
                    "INSERT INTO api_keys (name, secret_hash, read_only, created_at) VALUES (?, ?, ?, ?)",
                    (name, secret_hash, bool(read_only), time.time()),
                )
            except Exception as exc:  # another process created a key of that name meanwhile
                if db.dialect.unique_violation(exc) is not None:
                    raise ValueError(taken) from exc
                raise
            return self._key(db.one(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?", (secret_hash,)))

    def api_keys(self) -> list[ApiKeyInfo]:
        return [self._key(row) for row in self._all(f"SELECT {self._KEY_COLUMNS} FROM api_keys ORDER BY name, id")]

    def revoke_api_key(self, name: str) -> ApiKeyInfo:
        with self._transaction() as db:
            found = db.one(
                f"SELECT id, {self._KEY_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL"
                f"{db.dialect.for_update}",
                (name,),
            )
            if found is None:
                raise ValueError(f"no valid API key named {name!r} (see `runlane keys list`)")
            now = time.time()
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, found[0]))
            return self._key(found[1:])._replace(revoked_at=now)

    def api_key(self, secret_hash: str) -> ApiKeyInfo | None:
        row = self._one(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL", (secret_hash,)
        )
        return None if row is None else self._key(row)

    def has_api_keys(self) -> bool:
        return self._one("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1") is not None
