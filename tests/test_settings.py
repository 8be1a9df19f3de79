"""Settings are resolved once, from arguments and RUNLANE_* variables, and bad values name the key."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import runlane
from runlane.config import Settings, Tunables
from runlane.store import open_store

from .conftest import script_env, stored_status


def test_a_store_can_be_named_by_a_sqlite_url(tmp_path: Path) -> None:
    store = tmp_path / "by-url"
    run = runlane.init(project="p", dir=f"sqlite://{store}", system_metrics_interval=None)
    run.log({"x": 1.0})
    run.finish()
    with runlane.Api(f"sqlite://{store}") as api, runlane.Api(store) as same:
        assert [r.id for r in api.runs()] == [r.id for r in same.runs()] == [run.id]
    assert (store / "runlane.db").exists()


@pytest.mark.parametrize("url", ["ftp://localhost/runs", "sqlite://", "http://"])
def test_a_store_location_that_is_no_store_is_a_clear_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match=r"a store is a directory, sqlite:///path to one, postgresql://\.\.\. or http"):
        runlane.init(project="p", dir=url)
    assert not list(tmp_path.glob("*/runlane.db"))


def test_a_scheme_without_a_backend_is_refused_by_open_store_naming_it() -> None:
    with pytest.raises(ValueError, match=r"no store backend for gopher:// locations"):
        open_store("gopher://example.org/runs")


@pytest.mark.parametrize("url", ["postgresql://db.example/runs", "https://track.example/", "http://localhost:8080"])
def test_a_url_store_has_its_spool_in_the_users_cache(tmp_path: Path, url: str) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    settings = Settings.resolve(url, env=env)
    assert settings.store == url.rstrip("/")
    assert settings.dir is None
    assert settings.spool.parent == tmp_path / "cache" / "runlane" / "spool"
    # One spool per store: the same location gives the same one, another store another.
    assert Settings.resolve(url + "/", env=env).spool == settings.spool
    assert Settings.resolve("postgresql://other.example/runs", env=env).spool != settings.spool
    home = Settings.resolve(url, env={"HOME": str(tmp_path / "home")})
    assert home.spool.parent == tmp_path / "home" / ".cache" / "runlane" / "spool"


def test_an_embedded_store_spools_into_itself_unless_runlane_spool_says_otherwise(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert Settings.resolve(store, env={}).spool == store / "journals"
    assert Settings.resolve(f"sqlite://{store}", env={}).store == str(store)
    elsewhere = Settings.resolve(store, env={"RUNLANE_SPOOL": str(tmp_path / "spools")})
    assert elsewhere.spool.parent == tmp_path / "spools"


def test_tunables_come_from_the_environment_and_bad_ones_name_their_variable() -> None:
    env = {
        "RUNLANE_POLL_INTERVAL": "0.01",
        "RUNLANE_HEARTBEAT_INTERVAL": "0.5",
        "RUNLANE_RETRY_MAX": "0.2",
        "RUNLANE_REMOTE_TIMEOUT": "3",
        "RUNLANE_FINISH_TIMEOUT": "7",
    }
    tunables = Settings.resolve("x", env=env).tunables
    assert tunables == Tunables(
        poll_s=0.01, heartbeat_s=0.5, retry_max_s=0.2, remote_timeout_s=3.0, finish_timeout_s=7.0
    )
    assert Tunables.from_env(tunables.as_env()) == tunables  # what a drain process is handed
    assert Settings.resolve("x", env={}).tunables == Tunables()
    with pytest.raises(ValueError, match="RUNLANE_REMOTE_TIMEOUT='0' must be a positive number of seconds"):
        Settings.resolve("x", env={"RUNLANE_REMOTE_TIMEOUT": "0"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RUNLANE_DRAIN", "fibre", "RUNLANE_DRAIN='fibre' is not a drain kind"),
        ("RUNLANE_FINISH_TIMEOUT", "soon", "RUNLANE_FINISH_TIMEOUT='soon' must be a positive number"),
        ("RUNLANE_FINISH_TIMEOUT", "-5", "RUNLANE_FINISH_TIMEOUT='-5' must be a positive number"),
        ("RUNLANE_FINISH_TIMEOUT", "nan", "RUNLANE_FINISH_TIMEOUT='nan' must be a positive number"),
    ],
)
def test_a_bad_setting_names_its_variable(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        runlane.init(project="p", dir=store_dir)
    assert not store_dir.exists()


def test_the_drain_runs_on_a_thread_when_asked(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLANE_DRAIN", "Thread")
    assert Settings.resolve(store_dir).drain == "thread"
    run = runlane.init(project="p", dir=store_dir, system_metrics_interval=None)
    assert "runlane-drain" in [t.name for t in threading.enumerate()]
    run.log({"x": 1.0})
    run.finish()
    assert "runlane-drain" not in [t.name for t in threading.enumerate()]
    with runlane.Api(store_dir) as api:
        assert [p.value for p in api.history(run.id, "x")] == [1.0]


def test_finish_keeps_its_timeout_on_a_locked_store_and_nothing_is_lost(store_dir: Path) -> None:
    # Another program holds the store's write lock far longer than finish() may wait (SQLite itself would
    # wait 60 s): finish() returns after RUNLANE_FINISH_TIMEOUT saying where the rest is, and the drain
    # stores everything, the ending included, once the lock is gone.
    code = """
        import sys, runlane
        run = runlane.init(project="p", system_metrics_interval=None)
        for step in range(200):
            run.log({"x": float(step)})
        print(run.id, flush=True)
        sys.stdin.readline()  # the test holds the store's write lock from now on
        run.finish()
        print("returned", flush=True)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=script_env(store_dir, RUNLANE_FINISH_TIMEOUT="1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    run_id = int(proc.stdout.readline())
    blocker = sqlite3.connect(store_dir / "runlane.db", isolation_level=None, timeout=60)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=50)  # well before SQLite's own 60 s wait would have ended
        assert proc.returncode == 0, err
        assert out.strip() == "returned"
        assert "did not take everything within 1 s" in err
        assert ".rlj" in err  # where the rest is
        assert stored_status(store_dir, run_id) == "running"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    deadline = time.monotonic() + 30
    while stored_status(store_dir, run_id) == "running":
        assert time.monotonic() < deadline, "the drain did not store the rest once the lock was gone"
        time.sleep(0.05)
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "finished"
        assert [p.value for p in api.history(run_id, "x")] == [float(s) for s in range(200)]
