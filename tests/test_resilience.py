"""When the disk fills up or the database is locked, log() says so or carries on; nothing is lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import runlane

from .conftest import run_script, start_script


def test_a_full_disk_makes_log_raise_and_keeps_every_earlier_point(store_dir: Path) -> None:
    # RLIMIT_FSIZE makes writes past 200 kB fail with EFBIG, as a full disk fails them with ENOSPC.
    code = """
        import resource, signal, runlane
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = runlane.init(project="full")
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        logged = 0
        try:
            while True:
                run.log({"x": float(logged), "y": 1.0}, step=logged)
                logged += 1
        except runlane.JournalWriteError as exc:
            print(logged, flush=True)
            print(exc, flush=True)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        run.log({"x": -1.0}, step=logged)  # space is back: logging works again
        run.finish()
        print(run.id, flush=True)
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    logged_text, message, run_id_text = result.stdout.strip().splitlines()
    logged, run_id = int(logged_text), int(run_id_text)
    assert logged > 100
    assert "could not append to journal" in message
    assert "File too large" in message
    with runlane.Api(store_dir) as api:
        xs = api.history(run_id, "x")
        assert xs.steps == list(range(logged + 1))
        assert xs.values == [float(i) for i in range(logged)] + [-1.0]
        assert len(api.history(run_id, "y")) == logged  # the refused call stored nothing
        assert api.run(run_id).status == "finished"


def test_a_locked_database_never_blocks_log_and_loses_nothing(store_dir: Path, tmp_path: Path) -> None:
    runlane.init(project="locked", dir=store_dir).finish()  # create the store
    locker = sqlite3.connect(store_dir / "runlane.db", isolation_level=None, timeout=60)
    locked, release = tmp_path / "locked", tmp_path / "release"
    child = start_script(
        f"""
        import os, time, runlane
        run = runlane.init(project="locked")
        print("ready", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists({str(locked)!r}):
            assert time.monotonic() < deadline, "the test never locked the store"
            time.sleep(0.01)
        for i in range(5000):
            run.log({{"x": float(i)}})
        print("logged", flush=True)
        while not os.path.exists({str(release)!r}):
            assert time.monotonic() < deadline, "the test never released the store"
            time.sleep(0.01)
        run.finish()
        print(run.id, flush=True)
        """,
        store_dir,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    locker.execute("BEGIN EXCLUSIVE")
    locked.touch()
    try:
        # While nobody can write to the database, the training loop still logs everything.
        assert child.stdout.readline().strip() == "logged"
    finally:
        locker.execute("COMMIT")
        locker.close()
    release.touch()
    out, err = child.communicate(timeout=90)
    assert child.returncode == 0, err
    with runlane.Api(store_dir) as api:
        history = api.history(int(out.strip()), "x")
    assert history.values == [float(i) for i in range(5000)]
