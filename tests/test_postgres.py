"""The PostgreSQL store beyond the contract suite: many processes writing at once, opening, schema checks,
bad locations, and the import rule (psycopg only when a postgresql:// store is opened).

Every test here runs against the real local server (``postgres_url``: a database of this module's own).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

import runlane
from runlane import journal
from runlane.errors import StoreError, StoreNotFoundError, StoreUnavailableError
from runlane.naming import RunRef
from runlane.store import open_store
from runlane.store.base import NewRun, Store, WriterSpec
from runlane.store.postgres_schema import MIGRATIONS, SCHEMA_TABLE
from tests.conftest import script_env
from tests.postgres import fresh_database, truncate

T0 = 1_700_000_000.0


@pytest.fixture
def store(postgres_url: str) -> Any:
    opened = open_store(postgres_url)
    truncate(postgres_url)
    yield opened
    opened.close()


def start_workers(tmp_path: Path, code: str, args: Sequence[Sequence[str]]) -> list[subprocess.Popen[str]]:
    """Start one process per argument list running ``code``; they wait for ``GO`` (a file) to begin together."""
    script = tmp_path / "worker.py"
    go = tmp_path / "go"
    prelude = f"""
        deadline = time.monotonic() + 60
        while not Path({str(go)!r}).exists():
            if time.monotonic() > deadline:
                sys.exit("never told to go")
            time.sleep(0.001)
    """
    imports = "import json, sys, time\nfrom pathlib import Path\n"
    script.write_text(imports + textwrap.dedent(code).replace("# GO", textwrap.dedent(prelude)))
    return [
        subprocess.Popen(
            [sys.executable, str(script), *each], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for each in args
    ]


def go_and_collect(tmp_path: Path, workers: list[subprocess.Popen[str]]) -> list[Any]:
    (tmp_path / "go").write_text("")
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return results


def records_of(points: range, key: str = "m") -> list[list[Any]]:
    return [list(journal.Metrics.new(T0 + step, step, None, {key: float(step)})) for step in points]


def sized(records: list[list[Any]]) -> int:
    import msgpack

    return sum(len(msgpack.packb(record)) for record in records)


def test_eight_processes_creating_runs_in_one_new_project_get_distinct_gap_free_ids(
    store: Store, postgres_url: str, tmp_path: Path
) -> None:
    # The project does not exist yet: all eight also race to create it, and each run gets its own points.
    code = f"""
        import sys
        from runlane import journal
        from runlane.store import open_store
        from runlane.store.base import NewRun, WriterSpec
        worker = int(sys.argv[1])
        store = open_store({postgres_url!r})
        # GO
        made = []
        for i in range(5):
            uid = f"{{worker:016x}}{{i:016x}}"
            writer = f"w-{{worker}}-{{i}}"
            info = store.create_run(NewRun(uid=uid, project="race"), WriterSpec(writer, "h", 0, None, "j"))
            records = [list(journal.Metrics.new(1.0, s, None, {{"m": float(s * worker)}})) for s in range(100)]
            store.ingest(writer, info.id, records, 0, 1)
            made.append([info.id, info.display_id])
        store.close()
        print(json.dumps(made))
    """
    workers = start_workers(tmp_path, code, [[str(worker)] for worker in range(1, 9)])
    made = [run for result in go_and_collect(tmp_path, workers) for run in result]
    display_ids = sorted(int(display.rpartition("-")[2]) for _, display in made)
    assert display_ids == list(range(1, 41))  # distinct, and no number skipped
    assert len({display.rpartition("-")[0] for _, display in made}) == 1  # one project, one key
    assert [(p.name, p.run_count) for p in store.projects()] == [("race", 40)]
    for run_id, _ in made:
        series = store.run(RunRef("id", run_id)).metrics["m"]
        worker = int(store.run(RunRef("id", run_id)).uid[:16], 16)
        assert (series.count, series.max, series.max_step) == (100, 99.0 * worker, 99)


def test_four_processes_offering_the_same_batches_apply_each_exactly_once(
    store: Store, postgres_url: str, tmp_path: Path
) -> None:
    info = store.create_run(NewRun(uid="b" * 32, project="p"), WriterSpec("shared", "h", 0, None, "j"))
    batches = []
    offset = 0
    for number in range(30):
        records = records_of(range(number * 10, number * 10 + 10))
        records.append(list(journal.Text.new(T0, "stdout", f"batch {number}\n")))
        end = offset + sized(records)
        batches.append((records, offset, end))
        offset = end
    (tmp_path / "batches.json").write_text(json.dumps(batches))
    code = f"""
        from runlane.store import open_store
        store = open_store({postgres_url!r})
        batches = json.loads(Path({str(tmp_path / "batches.json")!r}).read_text())
        # GO
        applied = [store.ingest("shared", {info.id}, records, start, end) for records, start, end in batches]
        store.close()
        print(json.dumps(applied))
    """
    workers = start_workers(tmp_path, code, [[] for _ in range(4)])
    results = go_and_collect(tmp_path, workers)
    assert [sum(column) for column in zip(*results, strict=True)] == [1] * 30  # each batch applied by one process
    history = store.history(info.id, "m")
    assert history.steps == list(range(300))
    assert [line.text for line in store.logs(info.id)] == [f"batch {n}" for n in range(30)]
    assert store.run(RunRef("id", info.id)).metrics["m"].count == 300


def test_four_processes_attaching_to_one_ended_run_at_once_make_one_owner(
    store: Store, postgres_url: str, tmp_path: Path
) -> None:
    info = store.create_run(NewRun(uid="o" * 32, project="p"), WriterSpec("first", "h", 0, None, "j"))
    store.close_writer("first", "finished")
    code = f"""
        from runlane.naming import RunRef
        from runlane.store import open_store
        from runlane.store.base import WriterSpec
        store = open_store({postgres_url!r})
        # GO
        attached = store.attach(RunRef("id", {info.id}), WriterSpec(f"w-{{sys.argv[1]}}", "h", 0, None, "j"))
        store.close()
        print(json.dumps(attached.owner))
    """
    workers = start_workers(tmp_path, code, [[str(i)] for i in range(4)])
    assert sorted(go_and_collect(tmp_path, workers)) == [False, False, False, True]
    assert sum(writer.owner for writer in store.open_writers()) == 1


def test_processes_opening_a_brand_new_database_at_once_create_the_schema_once(tmp_path: Path) -> None:
    with fresh_database() as url:
        code = f"""
            from runlane.store import open_store
            # GO
            store = open_store({url!r})
            print(json.dumps([p.name for p in store.projects()]))
            store.close()
        """
        workers = start_workers(tmp_path, code, [[] for _ in range(4)])
        assert go_and_collect(tmp_path, workers) == [[]] * 4
        with psycopg.connect(url) as conn:
            names = [row[0] for row in conn.execute(f"SELECT name FROM {SCHEMA_TABLE}")]
        assert names == [m.name for m in MIGRATIONS]


def test_a_database_written_by_a_newer_runlane_is_refused(postgres_url: str) -> None:
    open_store(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SCHEMA_TABLE} VALUES ('9999_from_the_future', 0)")
    try:
        with pytest.raises(StoreError, match=r"newer runlane.*9999_from_the_future"):
            open_store(postgres_url)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DELETE FROM {SCHEMA_TABLE} WHERE name = '9999_from_the_future'")


def test_a_database_of_another_application_is_refused_and_left_alone() -> None:
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE invoices (id int)")
        with pytest.raises(StoreError, match=r"another application \(invoices\).*empty database"):
            open_store(url)
        with psycopg.connect(url) as conn:
            tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        assert tables == ["invoices"]


def test_bad_postgresql_locations_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="malformed PostgreSQL URL"):
        open_store("postgresql://[oops/db")
    with pytest.raises(StoreNotFoundError, match=r"no PostgreSQL database .*/no_such_db_here"):
        open_store("postgresql://postgres@127.0.0.1:5432/no_such_db_here")
    closed_port = "postgresql://postgres:secret@127.0.0.1:1/db"
    with pytest.raises(StoreUnavailableError, match="cannot connect to the PostgreSQL store") as caught:
        open_store(closed_port)
    assert "secret" not in str(caught.value)  # the password never appears in an error
    with pytest.raises(ValueError, match=r"no store backend for mysql://.*postgresql://"):
        open_store("mysql://localhost/db")


def test_a_role_that_may_only_read_reads_and_its_writes_are_store_errors(store: Store, postgres_url: str) -> None:
    store.create_run(NewRun(uid="r" * 32, project="p"), WriterSpec("w", "h", 0, None, "j"))
    role = f"runlane_reader_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        reader = open_store(postgres_url.replace("postgres@", f"{role}@"))
        try:
            assert [run.uid for run in reader.runs()] == ["r" * 32]
            with pytest.raises(StoreError, match=r"refused a request: permission denied"):
                reader.create_project("mine")
        finally:
            reader.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        with pytest.raises(StoreError, match=r"cannot set up the PostgreSQL store .*permission denied"):
            open_store(postgres_url.replace("postgres@", f"{role}@"))  # sees no tables: would create them
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            conn.execute(f"DROP ROLE {role}")


def test_without_the_driver_opening_a_postgresql_store_names_the_extra(postgres_url: str) -> None:
    code = f"""
        import sys
        sys.modules["psycopg"] = None  # as if psycopg were not installed
        from runlane.errors import StoreError
        from runlane.store import open_store
        try:
            open_store({postgres_url!r})
        except StoreError as exc:
            print(exc)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'runlane[postgres]'" in result.stdout


def test_the_sqlite_path_never_imports_psycopg(tmp_path: Path) -> None:
    code = f"""
        import sys
        import runlane
        from runlane.store import open_store
        from runlane.store.base import NewRun, WriterSpec
        from runlane.store.runs_query import RunsQuery
        store = open_store({str(tmp_path / "store")!r})
        info = store.create_run(NewRun(uid="a" * 32, project="p"), WriterSpec("w", "h", 0, None, "j"))
        store.runs_page(RunsQuery(sort="config.lr"))
        run = runlane.init(project="p", dir={str(tmp_path / "sdk")!r})
        run.log({{"x": 1.0}})
        run.finish()
        print(sorted(m for m in sys.modules if m.startswith(("psycopg", "runlane.store.postgres"))))
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_store_call_waiting_on_a_locked_row_gives_up_within_its_patience(store: Store, postgres_url: str) -> None:
    info = store.create_run(NewRun(uid="l" * 32, project="p"), WriterSpec("w", "h", 0, None, "j"))
    with psycopg.connect(postgres_url) as holder:
        holder.execute("SELECT 1 FROM run_writers WHERE id = 'w' FOR UPDATE")  # another process holds the writer
        # without patience this would wait for the lock as long as it is held
        with store.patience(0.2), pytest.raises(StoreUnavailableError, match="PostgreSQL store"):
            store.ingest("w", info.id, records_of(range(3)), 0, 10)
    assert store.ingest("w", info.id, records_of(range(3)), 0, 10)  # once released, the batch goes in


def test_the_sdk_on_postgresql_keeps_every_reported_point_once_through_sigkill(store: Store, postgres_url: str) -> None:
    # The crash test of tests/test_crash_safety.py with the training process's runs in PostgreSQL: its
    # journals in the spool, its drain writing through the same Store interface.
    for attempt in range(2):
        read_fd, write_fd = os.pipe()
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CRASH_CHILD.replace("fdopen(3", f"fdopen({write_fd}"))],
            env={**script_env(Path("unused")), "RUNLANE_DIR": postgres_url},
            pass_fds=(write_fd,),
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(write_fd)
        reported: list[int] = []
        with os.fdopen(read_fd) as pipe:
            run_id = int(pipe.readline())
            target = random.randint(300 * (attempt + 1), 3000 * (attempt + 1))
            for line in pipe:
                reported.append(int(line))
                if len(reported) >= target:
                    os.kill(child.pid, signal.SIGKILL)
                    break
            reported.extend(int(line) for line in pipe)  # reported before the kill landed
        _, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err
        assert reported == list(range(len(reported)))
        with runlane.Api(postgres_url) as api:
            api.recover()  # what the next init() does; the killed process's drain may have done it first
            info = api.run(run_id)
            assert info.status == "failed"
            steps = [p.step for p in api.history(run_id, "loss")]
            assert steps[: len(reported)] == reported  # everything acknowledged is there
            assert len(steps) - len(reported) in (0, 1)  # at most the step in flight at the kill besides
            assert [p.value for p in api.history(run_id, "loss")] == [1.0 / (s + 1) for s in steps]
            lines = [line.text for line in api.logs(run_id)]
            assert lines[: len(reported)] == [f"line {s}" for s in reported]
            assert len(lines) == len(set(lines)), "a log line was applied twice"
            assert api.recover() == []  # nothing is replayed twice
            assert len(api.history(run_id, "loss")) == len(steps)


CRASH_CHILD = """
    import os, runlane
    run = runlane.init(project="crash", name="victim", system_metrics_interval=None)
    report = os.fdopen(3, "w", buffering=1)
    report.write(f"{run.id}\\n")
    step = 0
    while True:
        run.log({"loss": 1.0 / (step + 1), "acc": step * 0.001})
        run.log_text(f"line {step}")
        report.write(f"{step}\\n")  # only after log() and log_text() have returned
        step += 1
"""


def test_the_contract_suite_fails_rather_than_skips_without_postgresql() -> None:
    env = {**os.environ, "RUNLANE_TEST_PGPORT": "1"}  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "nan_and_infinities and postgresql",
         "tests/contract/test_store_contract.py"],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "PostgreSQL is needed at 127.0.0.1:1" in result.stdout
    assert "1 failed" in result.stdout
    assert "skipped" not in result.stdout
