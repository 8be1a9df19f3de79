"""The spool: a process's journals may live outside the store, and what a dead process left there is
delivered to the store its spool targets."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

import runlane
from runlane.config import Settings, Tunables
from runlane.naming import RunRef
from runlane.recovery import close_dead_writers, deliver_leftovers
from runlane.spool import TARGET, Spool, SpoolMismatchError, read_target
from runlane.store import SCHEMES, open_store
from runlane.store.base import NewRun, WriterSpec
from runlane.store.sqlite import SQLiteStore

from .conftest import run_script, script_env, start_script, stored_status


def _spool_of(store_dir: Path, root: Path) -> Path:
    return Settings.resolve(store_dir, env={"RUNLANE_SPOOL": str(root)}).spool


def test_journals_live_in_the_spool_and_the_spool_names_its_store(store_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "spools"
    code = """
        import os, runlane
        run = runlane.init(project="p", system_metrics_interval=None)
        for step in range(300):
            run.log({"x": float(step)})
        journals = os.listdir(os.path.dirname(run._journal.path))
        print(run.id, run._journal.path, sorted(j for j in journals if j.endswith(".rlj")), flush=True)
        run.finish()
    """
    result = run_script(code, store_dir, env=script_env(store_dir, RUNLANE_SPOOL=str(root)))
    assert result.returncode == 0, result.stderr
    run_id, journal, _ = result.stdout.split(" ", 2)
    spool = _spool_of(store_dir, root)
    assert Path(journal).parent == spool  # the journal was in the spool while the run was open
    assert read_target(spool) == str(store_dir)
    assert [p.name for p in spool.iterdir()] == [TARGET]  # delivered and deleted at the end
    assert not (store_dir / "journals").exists()
    with runlane.Api(store_dir) as api:
        assert api.run(int(run_id)).status == "finished"
        assert [p.value for p in api.history(int(run_id), "x")] == [float(s) for s in range(300)]


def test_a_dead_process_leftovers_in_a_spool_are_delivered_by_the_next_process(store_dir: Path, tmp_path: Path) -> None:
    # The store is locked while the training process logs, so nothing of it can reach the store before it
    # is killed: every point is only in its journal, in a spool outside the store.
    root = tmp_path / "spools"
    code = """
        import sys, runlane
        run = runlane.init(project="p", system_metrics_interval=None)
        print(run.id, flush=True)
        sys.stdin.readline()
        for step in range(500):
            run.log({"x": float(step)})
        print("logged", flush=True)
        sys.stdin.readline()
    """
    proc = start_script(code, store_dir, stdin=-1, env=script_env(store_dir, RUNLANE_SPOOL=str(root)))
    assert proc.stdout is not None
    assert proc.stdin is not None
    run_id = int(proc.stdout.readline())
    blocker = sqlite3.connect(store_dir / "runlane.db", isolation_level=None, timeout=60)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "logged"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    spool = Spool(_spool_of(store_dir, root), str(store_dir))
    # Its drain process notices its owner is gone and delivers too; whoever is first, each point once.
    with open_store(read_target(spool.dir) or "") as store:
        failed = deliver_leftovers(store, spool)
    deadline = time.monotonic() + 30
    while stored_status(store_dir, run_id) == "running" or spool.journals():
        assert time.monotonic() < deadline, "the leftovers were not delivered"
        time.sleep(0.02)
    assert failed in ([run_id], [])
    with runlane.Api(store_dir) as api:
        run = api.run(run_id)
        assert run.status == "failed"
        assert "exited without finishing the run" in (run.status_reason or "")
        assert [p.value for p in api.history(run_id, "x")] == [float(s) for s in range(500)]


def test_leftovers_of_a_thread_drained_process_wait_in_the_spool_for_the_next_writer(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the drain on a thread, nothing outlives the killed process: the journal waits in the spool
    # until the next process that writes to the store opens it.
    root = tmp_path / "spools"
    code = """
        import sys, runlane
        run = runlane.init(project="p", system_metrics_interval=None)
        print(run.id, flush=True)
        sys.stdin.readline()
        for step in range(400):
            run.log({"x": float(step)})
        print("logged", flush=True)
        sys.stdin.readline()
    """
    env = script_env(store_dir, RUNLANE_SPOOL=str(root), RUNLANE_DRAIN="thread")
    proc = start_script(code, store_dir, stdin=-1, env=env)
    assert proc.stdout is not None
    assert proc.stdin is not None
    run_id = int(proc.stdout.readline())
    blocker = sqlite3.connect(store_dir / "runlane.db", isolation_level=None, timeout=60)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "logged"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    spool = _spool_of(store_dir, root)
    assert len(list(spool.glob("*.rlj"))) == 1
    assert stored_status(store_dir, run_id) == "running"
    monkeypatch.setenv("RUNLANE_SPOOL", str(root))
    runlane.init(project="p", dir=store_dir, system_metrics_interval=None).finish()
    assert list(spool.glob("*.rlj")) == []
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "failed"
        assert [p.value for p in api.history(run_id, "x")] == [float(s) for s in range(400)]


def test_a_spool_of_another_store_is_refused(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    Spool(spool_dir, str(tmp_path / "one")).prepare()
    Spool(spool_dir, str(tmp_path / "one")).prepare()  # the same store again: fine
    with pytest.raises(SpoolMismatchError, match="holds journals for the store"):
        Spool(spool_dir, str(tmp_path / "two")).prepare()


def test_a_drain_process_runs_with_the_tunables_of_its_owner(store_dir: Path) -> None:
    # A heartbeat every 0.05 s instead of 15 s: the drain process was handed the owner's setting.
    code = """
        import sys, time, runlane
        run = runlane.init(project="p", system_metrics_interval=None)
        run.log({"x": 1.0})
        print(run.id, flush=True)
        sys.stdin.readline()
        run.finish()
    """
    proc = start_script(code, store_dir, stdin=-1, env=script_env(store_dir, RUNLANE_HEARTBEAT_INTERVAL="0.05"))
    assert proc.stdout is not None
    assert proc.stdin is not None
    int(proc.stdout.readline())
    try:
        conn = sqlite3.connect(f"file:{store_dir / 'runlane.db'}?mode=ro", uri=True, timeout=60)
        try:
            (first,) = conn.execute("SELECT max(heartbeat_at) FROM run_writers").fetchone()
            deadline = time.monotonic() + 30
            while conn.execute("SELECT max(heartbeat_at) FROM run_writers").fetchone()[0] <= first + 0.1:
                assert time.monotonic() < deadline, "no heartbeat within 30 s"
                time.sleep(0.02)
        finally:
            conn.close()
    finally:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_the_store_side_fails_a_run_whose_remote_writer_went_quiet_past_the_timeout(store_dir: Path) -> None:
    with open_store(store_dir) as store:
        spec = WriterSpec("r" * 32, "another-host", 4242, 1.0, "/elsewhere/4242.rlj")
        run_id = store.create_run(NewRun(uid="q" * 32, project="p"), spec).id
        store.heartbeat([spec.id], time.time() - 60)  # its last sign of life, a minute ago
        assert close_dead_writers(store, store_dir, Tunables(remote_timeout_s=300)) == []
        assert store.run(RunRef("id", run_id)).status == "running"
        assert close_dead_writers(store, store_dir, Tunables(remote_timeout_s=30)) == [run_id]
        run = store.run(RunRef("id", run_id))
        assert run.status == "failed"
        assert run.status_reason == "process 4242 on another-host exited without finishing the run"


def test_a_run_on_a_store_named_by_a_url_needs_only_its_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a remote store will be: a URL whose scheme open_store resolves. Here it opens a SQLite store the
    # SDK knows nothing of, so everything must go through the Store interface: journals in the spool under
    # the cache directory, blobs by put_blob, the end by ingest.
    behind = tmp_path / "behind-the-url"

    def opener(url: str, *, create: bool, allow_read_only: bool) -> SQLiteStore:
        assert url == "http://tracking.example:8080"
        return SQLiteStore(behind, create=create, allow_read_only=allow_read_only)

    monkeypatch.setitem(SCHEMES, "http", opener)
    monkeypatch.setenv("RUNLANE_DRAIN", "thread")  # a drain process would not have this test's scheme
    run = runlane.init(project="p", dir="http://tracking.example:8080/", capture_env=True, system_metrics_interval=None)
    assert run.dir is None
    assert run.store == "http://tracking.example:8080"
    spool = Settings.resolve(run.store).spool
    assert spool.parent == tmp_path / "cache" / "runlane" / "spool"
    assert read_target(spool) == run.store
    assert [p.parent for p in spool.glob("*.rlj")] == [spool]
    for step in range(100):
        run.log({"x": float(step)})
    run.finish()
    assert list(spool.glob("*.rlj")) == []
    assert not (behind / "journals").exists()
    with runlane.Api("http://tracking.example:8080") as api:
        assert api.run(run.id).status == "finished"
        assert [p.value for p in api.history(run.id, "x")] == [float(s) for s in range(100)]
        assert "python" in api.environment(run.id)
