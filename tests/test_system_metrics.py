"""System metrics: sampled at the configured interval off the caller's thread, stored apart from user metrics."""

from __future__ import annotations

import itertools
import math
import sqlite3
import statistics
import threading
import time
from pathlib import Path

import pytest

import runlane
from runlane import journal
from runlane.store.base import NewRun, WriterSpec
from runlane.store.sqlite import SQLiteStore


def _wait_for_samples(store: Path, run_id: int, count: int) -> None:
    """Wait until ``count`` samples of sys/cpu_percent are in the store."""
    deadline = time.monotonic() + 60
    with runlane.Api(store) as api:
        while len(api.system_metrics(run_id, "sys/cpu_percent").get("sys/cpu_percent", [])) < count:
            assert time.monotonic() < deadline, f"fewer than {count} samples within 60 s"
            time.sleep(0.05)


def _monitor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "runlane-system"]


def test_samples_arrive_at_the_interval_and_stop_with_the_run(store_dir: Path) -> None:
    run = runlane.init(project="sys", dir=store_dir, system_metrics_interval=0.1)
    assert _monitor_threads() == ["runlane-system"]
    _wait_for_samples(store_dir, run.id, 5)
    run.finish()
    assert _monitor_threads() == []
    with runlane.Api(store_dir) as api:
        samples = api.system_metrics(run.id)
        # Nothing can arrive after finish(): the monitor has stopped (above), the run's writers are closed
        # and its journal, the only way in, is gone.
        assert all(writer.closed_at is not None for writer in api.run(run.id).writers)
    assert list((store_dir / "journals").glob("*.rlj")) == []

    assert all(key.startswith("sys/") for key in samples)
    expected = {"sys/cpu_percent", "sys/memory_percent", "sys/memory_used_mib", "sys/proc_rss_mib"}
    assert expected <= set(samples)
    cpu = samples["sys/cpu_percent"]
    times = [point.time for point in cpu]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.09  # never closer than the interval
    assert statistics.median(gaps) < 1.0  # and not ten times slower either: loosely "every 0.1 s"
    assert all(0.0 <= point.value <= 100.0 for point in cpu)
    assert all(point.value > 0 for point in samples["sys/proc_rss_mib"])
    assert all(0.0 < point.value <= 100.0 for point in samples["sys/memory_percent"])


def test_system_metrics_are_not_user_metrics(store_dir: Path) -> None:
    run = runlane.init(project="sys", dir=store_dir, system_metrics_interval=0.05)
    _wait_for_samples(store_dir, run.id, 2)
    run.finish()
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
        assert info.metrics == {}
        assert len(api.history(run.id, "sys/cpu_percent")) == 0
    # The resume step counter comes from user metrics only: samples are not steps.
    again = runlane.init(run_id=run.id, resume=True, dir=store_dir, system_metrics_interval=None)
    assert again.step == 0
    again.finish()


def test_the_default_interval_takes_a_first_sample_soon_after_init(store_dir: Path) -> None:
    run = runlane.init(project="sys", dir=store_dir)  # default interval: 10 s, first sample after 1 s
    _wait_for_samples(store_dir, run.id, 1)
    run.finish()
    with runlane.Api(store_dir) as api:
        assert len(api.system_metrics(run.id)["sys/cpu_percent"]) == 1


@pytest.mark.parametrize("off", [None, 0, 0.0])
def test_the_monitor_is_off_with_no_interval(store_dir: Path, off: float | None) -> None:
    run = runlane.init(project="sys", dir=store_dir, system_metrics_interval=off)
    assert _monitor_threads() == []
    run.log({"loss": 1.0})
    run.finish()
    with runlane.Api(store_dir) as api:
        assert api.system_metrics(run.id) == {}


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (-1, ValueError, "at least 0.05 seconds"),
        (0.001, ValueError, "at least 0.05 seconds"),
        (math.nan, ValueError, "at least 0.05 seconds"),
        (math.inf, ValueError, "at least 0.05 seconds"),
        ("10", TypeError, "a number of seconds"),
        (True, TypeError, "a number of seconds"),
    ],
)
def test_a_bad_interval_is_refused_before_anything_is_created(
    store_dir: Path, bad: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"system_metrics_interval must be {message}"):
        runlane.init(project="sys", dir=store_dir, system_metrics_interval=bad)  # type: ignore[arg-type]
    assert not store_dir.exists()


def test_reading_one_key(store_dir: Path) -> None:
    run = runlane.init(project="sys", dir=store_dir, system_metrics_interval=0.05)
    _wait_for_samples(store_dir, run.id, 2)
    run.finish()
    with runlane.Api(store_dir) as api:
        assert list(api.system_metrics(run.display_id, "sys/memory_percent")) == ["sys/memory_percent"]
        assert api.system_metrics(run.uid, "sys/nothing") == {}
        with pytest.raises(TypeError, match="key must be a string"):
            api.system_metrics(run.id, 3)  # type: ignore[arg-type]


def test_a_nan_sample_reads_back_as_nan(store_dir: Path) -> None:
    # SQLite stores NaN in a REAL column as NULL; the store must give it back as NaN, not None or 0.
    store = SQLiteStore(store_dir)
    try:
        info = store.create_run(NewRun(uid="a" * 32, project="p"), WriterSpec("w", "host", 1, None, "j"))
        records = [[journal.SYSTEM, 1.0, {"sys/x": math.nan, "sys/y": 2.0}], [journal.SYSTEM, 2.0, {"sys/x": 1.5}]]
        store.ingest("w", info.id, records, 0, 10)
        points = store.system_metrics(info.id)
    finally:
        store.close()
    assert math.isnan(points["sys/x"][0].value)
    assert points["sys/x"][1] == runlane.SystemPoint(2.0, 1.5)
    assert points["sys/y"] == [runlane.SystemPoint(1.0, 2.0)]


def test_auto_leaves_a_live_runs_samples_to_the_process_that_writes_it(store_dir: Path) -> None:
    owner = runlane.init(project="sys", dir=store_dir, system_metrics_interval=0.05)
    side = runlane.init(run_id=owner.id, resume=True, dir=store_dir)  # attaches to a live run: no monitor
    assert side._capture is not None
    assert side._capture.options.system_interval is None
    side.close()
    owner.finish()
    later = runlane.init(run_id=owner.id, resume=True, dir=store_dir)  # nobody else writes: samples again
    assert later._capture is not None
    assert later._capture.options.system_interval == 10.0
    later.finish()
    explicit = runlane.init(project="sys", dir=store_dir, system_metrics_interval=None)
    attached = runlane.init(run_id=explicit.id, resume=True, dir=store_dir, system_metrics_interval=0.05)
    assert attached._capture is not None
    assert attached._capture.options.system_interval == 0.05  # a chosen interval is kept
    attached.close()
    explicit.finish()


def test_system_samples_page_with_a_cursor(store_dir: Path) -> None:
    store = SQLiteStore(store_dir)
    try:
        info = store.create_run(NewRun(uid="a" * 32, project="p"), WriterSpec("w", "host", 1, None, "j"))
        records = [[journal.SYSTEM, float(t), {"sys/x": float(t), "sys/y": -float(t)}] for t in range(5)]
        store.ingest("w", info.id, records, 0, 10)
    finally:
        store.close()
    with runlane.Api(store_dir) as api:
        everything = api.system_samples(info.id)
        assert [(s.key, s.time, s.value) for s in everything] == [
            (key, float(t), sign * float(t)) for t in range(5) for key, sign in (("sys/x", 1), ("sys/y", -1))
        ]
        assert [s.id for s in everything] == sorted({s.id for s in everything})
        paged, cursor = [], None
        while page := api.system_samples(info.id, after=cursor, limit=3):
            paged += page
            cursor = page[-1].id
        assert paged == everything
        only_y = api.system_samples(info.id, "sys/y", after=everything[3].id, limit=2)
        assert [(s.key, s.time) for s in only_y] == [("sys/y", 2.0), ("sys/y", 3.0)]
        grouped = api.system_metrics(info.id)
        assert grouped["sys/x"] == [runlane.SystemPoint(s.time, s.value) for s in everything if s.key == "sys/x"]
        with pytest.raises(ValueError, match="after must be"):
            api.system_samples(info.id, after=-2)
        with pytest.raises(ValueError, match="limit must be"):
            api.system_samples(info.id, limit=0)
        with pytest.raises(TypeError, match="key must be a string"):
            api.system_samples(info.id, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("applied", [2, 3], ids=["before-writer-identity", "after-writer-identity"])
def test_samples_stored_before_ids_existed_keep_their_order_as_ids(store_dir: Path, applied: int) -> None:
    # A store from before migration 0004 (system samples without an id column), with or without 0003
    # (writer identity), is migrated in place.
    from runlane.store.migrations import MIGRATIONS, _split_statements

    store_dir.mkdir()
    db = sqlite3.connect(store_dir / "runlane.db")
    try:
        with db:
            db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
            for migration in MIGRATIONS[:applied]:
                for statement in _split_statements(migration.sql):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (migration.name,))
            db.execute("INSERT INTO projects (name, key, created_at) VALUES ('p', 'PP', 0)")
            db.execute(
                "INSERT INTO runs (uid, project_id, seq, status, created_at, started_at, config, summary)"
                " VALUES (?, 1, 1, 'finished', 0, 0, '{}', '{}')",
                ("b" * 32,),
            )
            db.executemany(
                "INSERT INTO system_points (run_id, key, time, value) VALUES (1, ?, ?, ?)",
                [("sys/x", 2.0, 1.0), ("sys/x", 1.0, None), ("sys/y", 1.0, 3.0)],
            )
    finally:
        db.close()
    with runlane.Api(store_dir) as api:
        samples = api.system_samples(1)
        assert [(s.key, s.time, s.id) for s in samples] == [("sys/x", 2.0, 1), ("sys/x", 1.0, 2), ("sys/y", 1.0, 3)]
        assert math.isnan(samples[1].value)
        assert [p.time for p in api.system_metrics(1)["sys/x"]] == [1.0, 2.0]
    db = sqlite3.connect(store_dir / "runlane.db")
    try:
        done = [row[0] for row in db.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
        writer_columns = {row[1] for row in db.execute("PRAGMA table_info(run_writers)")}
    finally:
        db.close()
    assert done == [m.name for m in MIGRATIONS]
    assert {"pid_namespace", "owner"} <= writer_columns
