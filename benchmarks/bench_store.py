"""The stores side by side: SQLite and PostgreSQL through ``Store``, each beside a bare baseline of its
own engine in the same run.

    python benchmarks/bench_store.py            # needs PostgreSQL at 127.0.0.1:5432, user postgres
    python benchmarks/bench_store.py --quick    # smaller sizes, a smoke test

Rows: ingest (points/s through ``Store.ingest``, batches as the drain offers them), the full history of a
100,000-point series, a 1,000,000-point series read as 1,000 buckets, and the runs page at 100,000 runs.
Baselines: for ingest and reads, the other metric layout, a row per point, written the fastest way each
engine has (PostgreSQL: a bare ``COPY``; SQLite: ``executemany`` in one transaction per batch) and read
back (rows in step order; buckets by ``GROUP BY`` in SQL); for the runs page, the reference implementation
(``runs_query.reference_page`` over ``Store.runs``) on the same store. See docs/postgresql.md.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402
import psycopg  # noqa: E402

from runlane import journal  # noqa: E402
from runlane.store import open_store  # noqa: E402
from runlane.store.base import NewRun, Store, WriterSpec  # noqa: E402
from runlane.store.runs_query import RunsQuery, encode_offset, reference_page  # noqa: E402

QUICK = "--quick" in sys.argv
STEPS = 10_000 if QUICK else 100_000  # x 10 metrics: the ingest workload
BATCH_STEPS = 1_000
LONG = 100_000 if QUICK else 1_000_000  # the bucketed read's series
RUNS = 5_000 if QUICK else 100_000
REPEATS = 5
PG_ADMIN = os.environ.get("RUNLANE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
KEYS = [f"metric_{i}" for i in range(10)]


def median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()  # warm: caches and prepared statements, as in a long-lived server
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


@contextmanager
def pg_database() -> Iterator[str]:
    name = f"runlane_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def batches(steps: int, keys: list[str]) -> list[tuple[list[list[Any]], int, int]]:
    """Journal batches of ``keys`` logged once per step, with the byte offsets the drain would give them."""
    out = []
    offset = 0
    for first in range(0, steps, BATCH_STEPS):
        records = [
            list(
                journal.Metrics.new(1.7e9 + step, step, None, {key: 1.0 / (step + 1 + i) for i, key in enumerate(keys)})
            )
            for step in range(first, min(steps, first + BATCH_STEPS))
        ]
        end = offset + sum(len(msgpack.packb(record)) for record in records)
        out.append((records, offset, end))
        offset = end
    return out


def ingest(store: Store, uid: str, work: list[tuple[list[list[Any]], int, int]]) -> tuple[int, float]:
    """(run id, seconds) of offering every batch to a new run."""
    info = store.create_run(NewRun(uid=uid, project="bench"), WriterSpec(uid, "bench", 0, None, "j"))
    start = time.perf_counter()
    for records, first, end in work:
        assert store.ingest(uid, info.id, records, first, end)
    return info.id, time.perf_counter() - start


def rows_of(work: list[tuple[list[list[Any]], int, int]], key_ids: dict[str, int]) -> Iterator[list[tuple[Any, ...]]]:
    for records, _, _ in work:
        yield [(key_ids[key], record[2], value, record[1]) for record in records for key, value in record[4].items()]


# -- the row-per-point layout, per engine ----------------------------------------------------------


class SqliteRows:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(
            "CREATE TABLE points (series INTEGER, step INTEGER, value REAL, time REAL, PRIMARY KEY (series, step))"
            " WITHOUT ROWID"
        )

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?)", rows)
        self.conn.execute("COMMIT")

    def history(self, series: int) -> int:
        return len(
            self.conn.execute(
                "SELECT step, value, time FROM points WHERE series = ? ORDER BY step", (series,)
            ).fetchall()
        )

    def buckets(self, series: int, count: int, steps: int) -> int:
        width = -(-steps // count)
        sql = "SELECT step / ?, min(value), max(value), count(*) FROM points WHERE series = ? GROUP BY 1 ORDER BY 1"
        return len(self.conn.execute(sql, (width, series)).fetchall())


class PostgresRows:
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute(
            "CREATE TABLE points (series bigint, step bigint, value double precision, time double precision,"
            " PRIMARY KEY (series, step))"
        )

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        with (
            self.conn.transaction(),
            self.conn.cursor() as cursor,
            cursor.copy("COPY points (series, step, value, time) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def history(self, series: int) -> int:
        sql = "SELECT step, value, time FROM points WHERE series = %s ORDER BY step"
        return len(self.conn.execute(sql, (series,)).fetchall())

    def buckets(self, series: int, count: int, steps: int) -> int:
        width = -(-steps // count)
        sql = "SELECT step / %s, min(value), max(value), count(*) FROM points WHERE series = %s GROUP BY 1 ORDER BY 1"
        return len(self.conn.execute(sql, (width, series)).fetchall())


# -- 100,000 runs ------------------------------------------------------------------------------------


def seed_runs(execute_many: Callable[[str, list[tuple[Any, ...]]], object], project_id: int) -> None:
    """RUNS runs with configs, summaries, tags and a primary metric, written in bulk (create_run one by one
    would take minutes; this row measures the read)."""
    rng = random.Random(1)
    base = 1000  # ids past the runs and series the ingest rows made
    statuses = ["finished", "failed", "running", "killed"]
    runs, series, tags = [], [], []
    for i in range(1, RUNS + 1):
        config = json.dumps({"lr": rng.choice([1e-4, 3e-4, 1e-3, 3e-3]) * rng.random(), "layers": rng.randrange(2, 50)})
        summary = json.dumps({"acc": rng.random(), "epochs": rng.randrange(100)})
        started = 1.7e9 + i
        ended = started + rng.random() * 3600
        status = rng.choice(statuses)
        runs.append((base + i, f"{i:032x}", project_id, i, f"run-{i}", None, None, status, started, started, ended,
                     config, summary, "loss", "min"))  # fmt: skip
        low = rng.random()
        series.append((base + i, base + i, "loss", 100, 0, 99, low, 1.7e9, low, rng.randrange(100), low + 1, 0))
        if i % 3 == 0:
            tags.append((base + i, "sweep", 0))
    execute_many(
        "INSERT INTO runs (id, uid, project_id, seq, name, alias, notes, status, created_at, started_at, ended_at,"
        " config, summary, primary_metric, primary_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    execute_many(
        "INSERT INTO series (id, run_id, key, count, first_step, last_step, last_value, last_time, min_value,"
        " min_step, max_value, max_step) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        series,
    )
    execute_many("INSERT INTO run_tags (run_id, tag, position) VALUES (?, ?, ?)", tags)
    execute_many("UPDATE projects SET next_seq = ? WHERE id = ?", [(RUNS + 1, project_id)])


PAGE_QUERIES = [
    ("newest first (default)", RunsQuery(project="runs")),
    ("the page halfway down (offset cursor)", None),
    ("sort by config.lr", RunsQuery(project="runs", sort="config.lr", descending=False)),
    ("sort by summary.acc", RunsQuery(project="runs", sort="summary.acc")),
    ("sort by best", RunsQuery(project="runs", sort="best", descending=False)),
    ("filter tag + status", RunsQuery(project="runs", tags=("sweep",), statuses=("finished",))),
    ("search 'run-4242'", RunsQuery(project="runs", search="run-4242")),
]


def runs_page_rows(store: Store, seed: Callable[[], None], label: str) -> list[tuple[str, float, str, float]]:
    store.create_project("runs")
    seed()
    deep = encode_offset(RUNS // 2)  # the cursor of the page halfway down
    out = []
    start = time.perf_counter()
    candidates = store.runs("runs", metrics="primary")
    reference = reference_page(candidates, RunsQuery(project="runs"))
    reference_ms = (time.perf_counter() - start) * 1000
    assert [r.id for r in store.runs_page(RunsQuery(project="runs")).runs] == [r.id for r in reference.runs]
    for what, query in PAGE_QUERIES:
        chosen = query or RunsQuery(project="runs", cursor=deep)
        page = store.runs_page(chosen)
        assert page.runs
        ms = median_ms(lambda chosen=chosen: store.runs_page(chosen))  # type: ignore[misc]
        out.append((f"{label}: runs page at {RUNS:,} runs, {what}", ms, "reference in Python", reference_ms))
    return out


def main() -> None:
    work = batches(STEPS, KEYS)
    long_work = batches(LONG, ["long"])
    points = STEPS * len(KEYS)
    table: list[tuple[str, float, str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="runlane-bench-") as tmp, pg_database() as url:
        backends: list[tuple[str, Store, Any]] = [
            ("SQLite", open_store(Path(tmp) / "store"), SqliteRows(Path(tmp) / "rows.db")),
            ("PostgreSQL", open_store(url), PostgresRows(url)),
        ]
        for label, store, rows in backends:
            run_id, seconds = ingest(store, "a" * 32, work)
            key_ids = {key: i for i, key in enumerate(KEYS)}
            start = time.perf_counter()
            for chunk in rows_of(work, key_ids):
                rows.write(chunk)
            bare = time.perf_counter() - start
            baseline = "bare COPY, a row per point" if label == "PostgreSQL" else "executemany, a row per point"
            table.append((f"{label}: ingest {points:,} points", points / seconds / 1e6, baseline, points / bare / 1e6,
                          "M points/s"))  # fmt: skip
            assert len(store.history(run_id, "metric_0").steps) == STEPS
            history_ms = median_ms(lambda store=store, run_id=run_id: store.history(run_id, "metric_0"))  # type: ignore[misc]
            rows_ms = median_ms(lambda rows=rows: rows.history(0))  # type: ignore[misc]
            table.append((f"{label}: history of {STEPS:,} points", history_ms, "rows in step order", rows_ms, "ms"))

            long_id, _ = ingest(store, "b" * 32, long_work)
            for chunk in rows_of(long_work, {"long": 99}):
                rows.write(chunk)
            assert sum(b.count for b in store.downsampled(long_id, "long", 1000)) == LONG
            bucket_ms = median_ms(lambda store=store, long_id=long_id: store.downsampled(long_id, "long", 1000))  # type: ignore[misc]
            group_ms = median_ms(lambda rows=rows: rows.buckets(99, 1000, LONG))  # type: ignore[misc]
            table.append(
                (f"{label}: {LONG:,} points as 1,000 buckets", bucket_ms, "GROUP BY over rows", group_ms, "ms")
            )

        sqlite_store, pg_store = backends[0][1], backends[1][1]
        sqlite_conn = sqlite3.connect(Path(tmp) / "store" / "runlane.db", isolation_level=None)

        def seed_sqlite() -> None:
            (project_id,) = sqlite_conn.execute("SELECT id FROM projects WHERE name = 'runs'").fetchone()
            sqlite_conn.execute("BEGIN")
            seed_runs(sqlite_conn.executemany, project_id)
            sqlite_conn.execute("COMMIT")

        pg_conn = psycopg.connect(url, autocommit=True)

        def seed_pg() -> None:
            (project_id,) = pg_conn.execute("SELECT id FROM projects WHERE name = 'runs'").fetchone()  # type: ignore[misc]
            with pg_conn.transaction(), pg_conn.cursor() as cursor:
                seed_runs(lambda sql, rows: cursor.executemany(sql.replace("?", "%s"), rows), project_id)
            pg_conn.execute("ANALYZE")

        for label, store, seed in (("SQLite", sqlite_store, seed_sqlite), ("PostgreSQL", pg_store, seed_pg)):
            table += [
                (what, ms, name, baseline, "ms") for what, ms, name, baseline in runs_page_rows(store, seed, label)
            ]
        sqlite_conn.close()
        pg_conn.close()
        for _, store, rows in backends:
            store.close()
            rows.conn.close()

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"
          + (" (--quick)" if QUICK else ""))  # fmt: skip
    print("| what | runlane | baseline (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    for what, ours, baseline_name, theirs, unit in table:
        print(f"| {what} | {ours:,.2f} {unit} | {baseline_name}: {theirs:,.2f} {unit} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
