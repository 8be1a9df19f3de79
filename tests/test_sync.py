"""``runlane sync``: runs copied to another store with everything they hold, exactly once, resumable."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runlane
from runlane import Api
from runlane.config import Settings
from runlane.recovery import recover
from runlane.sdk.run import Run
from runlane.spool import Spool
from runlane.store import open_store
from runlane.sync import sync_runs

from .conftest import run_script, write
from .readback import store_view
from .servers import running_server


def _start(**options: Any) -> Run:
    run = runlane.init(**options)
    assert isinstance(run, Run)
    return run


def _rich_store(store: Path, workspace: Path) -> None:
    """Runs holding every kind of data, with a fork chain, a nested run and every ending."""
    write(workspace, {"train.py": "print('train')\n", "lib/util.py": "X = 1\n"})
    root = _start(
        project="vision/base",
        name="root",
        alias="r0",
        notes="the baseline",
        config={"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}},
        tags=["base", "cv"],
        dir=store,
        system_metrics_interval=0.05,
        capture_env=True,
        snapshot_code=True,
        workspace_root=workspace,
    )
    root.set_primary_metric("acc", "max")
    for step in range(300):
        root.log({"loss": 1 / (step + 1), "acc": step / 300}, stage="train" if step < 200 else "val")
    root.log(weird=float("nan"), step=300)
    root.log(weird=float("inf"), step=301)
    root.log(weird=float("-inf"), step=302)
    root.log_text("first line\nsecond line\n\nafter an empty one")
    root.log_image("samples", np.arange(48, dtype=np.uint8).reshape(4, 4, 3), caption="four by four", step=10)
    root.log_image("samples", np.zeros((2, 3), dtype=np.uint8), step=10)
    root.update_config({"opt": {"momentum": 0.95}, "batch": 32})
    root.add_tags("extra")
    root.remove_tags("cv")
    root.summary({"note": "ok", "nan": float("nan"), "$float": "looks like a tag"})
    deadline = time.monotonic() + 60
    with Api(store) as api:
        while not api.system_metrics(root.uid) and time.monotonic() < deadline:
            time.sleep(0.05)
    root.finish()

    fork = _start(fork_run_id=root.id, fork_step=150, config={"lr": 0.01}, dir=store,
                        system_metrics_interval=None)  # fmt: skip
    for step in range(151, 400):
        fork.log(loss=0.5 / step)
    fork.finish(status="killed")
    grandchild = _start(fork_run_id=fork.id, fork_step=200, inherit_tags=True, dir=store,
                              system_metrics_interval=None)  # fmt: skip
    grandchild.log(loss=0.1)
    grandchild.finish()
    nested = _start(project="other", name="nested", parent_run_id=root.id, dir=store, system_metrics_interval=None)
    nested.log(x=1)
    nested.finish(status="failed")
    resumed = _start(run_id=nested.id, resume=True, dir=store, system_metrics_interval=None)
    resumed.log(x=2)
    resumed.finish(status="failed")
    crashed = run_script(
        """
        import runlane
        run = runlane.init(project="other", name="crash", system_metrics_interval=None)
        run.log(x=1.5)
        raise RuntimeError("boom")
        """,
        store,
    )
    assert crashed.returncode == 1
    assert "RuntimeError: boom" in crashed.stderr


@pytest.fixture
def rich_store(tmp_path: Path) -> Path:
    store = tmp_path / "source"
    _rich_store(store, tmp_path / "workspace")
    return store


def _sync(source: Path, target: Path, **kwargs: object) -> runlane.sync.SyncReport:
    settings = Settings.resolve(source)
    with open_store(source) as src, open_store(target) as tgt:
        recover(src, Spool(settings.spool, settings.store), settings.tunables)
        return sync_runs(src, tgt, **kwargs)  # type: ignore[arg-type]


def _view(store: Path) -> dict[str, dict[str, object]]:
    with Api(store) as api:
        return store_view(api)


def test_sync_copies_every_run_with_everything_it_holds(rich_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    report = _sync(rich_store, target)
    assert report.ok, report.failed
    assert len(report.copied) == 5
    assert not report.skipped
    source_view, target_view = _view(rich_store), _view(target)
    assert target_view == source_view
    root = next(view for view in source_view.values() if view["name"] == "root")
    assert root["images"]
    assert root["system"]
    assert root["environment"]
    assert root["code"]
    assert root["logs"]
    assert root["summary"]["$float"] == "looks like a tag"  # type: ignore[index]
    crash = next(view for view in target_view.values() if view["name"] == "crash")
    assert crash["status"] == "failed"
    assert "boom" in str(crash["status_reason"])


def test_a_second_sync_copies_nothing_and_changes_nothing(rich_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    _sync(rich_store, target)
    before = _view(target)
    again = _sync(rich_store, target)
    assert again.ok
    assert len(again.present) == 5
    assert again.records == 0
    assert not again.copied
    assert not again.continued
    assert _view(target) == before


def test_a_fork_is_synced_after_its_parent_and_waits_while_the_parent_runs(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    parent = _start(project="p", dir=source, system_metrics_interval=None)
    for step in range(10):
        parent.log(loss=step)
    deadline = time.monotonic() + 60
    with Api(source) as api:  # a fork's step is checked against what the store holds of its parent
        while "loss" not in api.run(parent.uid).metrics and time.monotonic() < deadline:
            time.sleep(0.01)
    fork = _start(fork_run_id=parent.id, fork_step=5, dir=source, system_metrics_interval=None)
    fork.log(loss=0.5)
    fork.finish()
    report = _sync(source, target, run=fork.display_id)
    assert report.skipped == {
        parent.display_id: "still running; sync it once it has ended",
        fork.display_id: f"its parent {parent.display_id} is not on the target",
    }
    assert _view(target) == {}
    parent.finish()
    report = _sync(source, target, run=fork.display_id)  # the fork alone was asked for: its parent comes first
    assert report.copied == [parent.display_id, fork.display_id]
    assert _view(target) == _view(source)
    with Api(target) as api:
        copied = api.run(fork.uid)
        assert copied.fork_run_id == api.run(parent.uid).id
        assert copied.fork_step == 5


def test_a_run_changed_after_it_was_synced_is_reported_not_merged(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    run = _start(project="p", dir=source, system_metrics_interval=None)
    run.log(loss=1.0)
    run.finish()
    assert _sync(source, target).copied == [run.display_id]
    before = _view(target)
    again = _start(run_id=run.id, resume=True, dir=source, system_metrics_interval=None)
    again.log(loss=2.0)
    again.finish()
    report = _sync(source, target)
    assert "another version of run" in report.failed[run.info.display_id]
    assert _view(target) == before


def _big_source(store: Path) -> None:
    """Two runs, one large enough that copying it takes many batches: points, log lines and images."""
    small = _start(project="big", name="small", dir=store, system_metrics_interval=None)
    small.log(loss=1.0)
    small.finish()
    run = _start(project="big", name="large", dir=store, system_metrics_interval=None)
    for step in range(60_000):
        run.log(loss=1 / (step + 1), acc=step * 1e-5)
    for i in range(100):
        run.log_text("\n".join(f"line {i}-{j} " + "x" * 40 for j in range(1000)))
    for step in range(5):
        run.log_image("img", np.full((3, 3), step, dtype=np.uint8), step=step)
    run.finish()


def _committed_lines(target: Path) -> int:
    """Log lines the target has committed, read from its file without recovery (which ``Api`` would run)."""
    if not (target / "runlane.db").exists():
        return 0
    conn = sqlite3.connect(f"file:{target / 'runlane.db'}?mode=ro", uri=True, timeout=60)
    try:
        return int(conn.execute("SELECT count(*) FROM log_lines").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        conn.close()


def _sync_command(source: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "runlane", "sync", "--dir", str(source), "--url", f"sqlite:///{target}"]


@contextmanager
def _target(kind: str, tmp_path: Path) -> Iterator[str]:
    """Where a sync copies to: a SQLite store in ``tmp_path / "target"``, or a server over that store."""
    target = tmp_path / "target"
    if kind == "sqlite":
        yield f"sqlite:///{target}"
        return
    with running_server(target, tmp_path / "server.log") as server:
        yield server.url


def _url_view(url: str) -> dict[str, dict[str, object]]:
    with Api(url) as api:  # a directory, sqlite:/// or a server's URL
        return store_view(api)


@pytest.mark.parametrize("kind", ["sqlite", "server"])
def test_a_sync_killed_with_sigkill_and_started_again_delivers_everything_once(tmp_path: Path, kind: str) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    _big_source(source)
    with _target(kind, tmp_path) as url:
        command = [*_sync_command(source, target)[:-1], url]
        for _ in range(2):  # killed twice, at different points of the large run
            already = _committed_lines(target)
            sync = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 120
            while _committed_lines(target) <= already and sync.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(sync.pid, signal.SIGKILL)
            sync.communicate(timeout=60)
            assert 0 < _committed_lines(target) < 100_000, "the kill must land in the middle of the copy"
        if kind == "sqlite":
            with Api(target) as api:  # recovery there fails the interrupted copy's run, as after any crash
                api.recover()
                assert api.run(next(r.uid for r in api.runs() if r.name == "large")).status == "failed"
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert "1 continued" in done.stdout
        assert _url_view(url) == _view(source)
        with Api(url) as api:
            assert len(api.logs(api.runs(project="big")[0].id)) == 100_000


def test_an_offline_store_with_forks_and_images_synced_to_a_server_reads_back_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNLANE_MODE", "offline")
    source = tmp_path / "offline"
    _rich_store(source, tmp_path / "workspace")
    monkeypatch.delenv("RUNLANE_MODE")
    with running_server(tmp_path / "server-store", tmp_path / "server.log") as server:
        done = subprocess.run([*_sync_command(source, tmp_path)[:-1], server.url], capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        with Api(url=server.url) as api:
            remote = store_view(api)
        assert remote == _view(source)
        forks = [view for view in remote.values() if view["fork"] != (None, None)]
        assert len(forks) == 2
        assert any(view["images"] for view in remote.values())


def test_the_sync_command_reports_what_it_did_and_names_bad_arguments(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    for project in ("a", "b"):
        run = _start(project=project, dir=source, system_metrics_interval=None)
        run.log(loss=1.0)
        run.finish()
    only_a = subprocess.run([*_sync_command(source, target), "--project", "a"], capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert only_a.returncode == 0, only_a.stderr
    assert only_a.stdout.startswith("synced 1 run(s) (1 new, 0 continued), 2 records;")
    assert only_a.stderr == ""  # no progress bar off a terminal
    every = subprocess.run([*_sync_command(source, target), "--json"], capture_output=True, text=True, timeout=120,
                           check=False)  # fmt: skip
    assert every.returncode == 0, every.stderr
    answer = json.loads(every.stdout)
    assert (answer["present"], answer["copied"], answer["records"]) == (["AA-1"], ["BB-1"], 2)
    missing = subprocess.run([sys.executable, "-m", "runlane", "sync", "--dir", str(source)], capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert missing.returncode == 2
    assert "--url" in missing.stderr
    unknown = subprocess.run([*_sync_command(source, target), "--run", "ZZ-9"], capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
    assert unknown.returncode == 1
    assert "ZZ-9" in unknown.stderr
    bad_url = subprocess.run([*_sync_command(source, target)[:-1], "ftp://host/x"], capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
    assert bad_url.returncode == 1
    assert "ftp" in bad_url.stderr


def test_the_sync_command_draws_progress_on_a_terminal(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    run = _start(project="a", dir=source, system_metrics_interval=None)
    run.log(loss=1.0)
    run.finish()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    try:
        done = subprocess.run(_sync_command(source, target), stdout=subprocess.PIPE, stderr=follower, text=True,
                              timeout=120, check=False)  # fmt: skip
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert b"sync" in drawn
    assert b"1/1" in drawn
