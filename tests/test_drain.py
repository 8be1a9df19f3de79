"""The drain: journals reach the store exactly once, whatever the store or the training process does."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import runlane
from runlane import journal
from runlane.drain.loop import Drain, Owner, Tunables
from runlane.errors import StoreError, StoreUnavailableError
from runlane.journal import JournalFile
from runlane.liveness import host_name, process_start_time
from runlane.naming import RunRef
from runlane.recovery import replay_journal
from runlane.store.base import NewRun, WriterSpec
from runlane.store.sqlite import SQLiteStore

from .conftest import run_script, script_env, start_script, stored_status


class LosesAcknowledgements(SQLiteStore):
    """A store whose answer to ``ingest`` is lost now and then after it committed, as a server's can be."""

    def __init__(self, directory: Path, seed: int) -> None:
        super().__init__(directory)
        self.random = random.Random(seed)
        self.lost = 0

    def ingest(self, writer_id: str, run_id: int, records: list[list[Any]], start: int, end: int) -> bool:
        applied = super().ingest(writer_id, run_id, records, start, end)
        if self.random.random() < 0.3:
            self.lost += 1
            raise StoreUnavailableError("connection reset after the commit")
        return applied


def _owner() -> Owner:
    return Owner(host_name(), os.getpid(), process_start_time(os.getpid()))


def _register(store: SQLiteStore, writer_id: str, uid: str) -> int:
    owner = _owner()
    spec = WriterSpec(writer_id, owner.host, owner.pid, owner.pid_started, f"journals/{writer_id}.rlj")
    return store.create_run(NewRun(uid=uid, project="drain"), spec).id


def _metrics(step: int) -> bytes:
    return journal.new_packer().pack(journal.Metrics.new(time.time(), step, None, {"loss": float(step)}))


def test_a_lost_acknowledgement_never_wedges_the_drain_and_every_point_arrives_once(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = LosesAcknowledgements(store_dir, seed=7)
    run_id = _register(store, "w" * 32, "a" * 32)
    file = JournalFile(store_dir / "journals" / f"{'w' * 32}.rlj")
    drain = Drain(store, store_dir, _owner(), Tunables(retry_max_s=0.0))
    step = 0
    for _ in range(60):  # the training loop keeps logging between the drain's batches
        for _ in range(random.randint(1, 400)):
            file.append(_metrics(step))
            step += 1
        drain.pump()
    file.append(journal.new_packer().pack(journal.End.new(time.time(), "finished", None)))
    deadline = time.monotonic() + 30
    while drain.following and time.monotonic() < deadline:
        drain.pump()
    assert drain.following == 0
    assert store.lost > 5  # the test did lose acknowledgements
    assert [p.step for p in store.history(run_id, "loss")] == list(range(step))
    assert store.run(RunRef("id", run_id)).status == "finished"
    assert not file.path.exists()
    store.close()


def test_replay_with_a_deadline_retries_lost_acknowledgements(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = LosesAcknowledgements(store_dir, seed=3)
    run_id = _register(store, "v" * 32, "b" * 32)
    file = JournalFile(store_dir / "journals" / f"{'v' * 32}.rlj")
    for step in range(20_000):
        file.append(_metrics(step))
    file.append(journal.new_packer().pack(journal.End.new(time.time(), "finished", None)))
    [writer] = store.open_writers()
    replay = replay_journal(store, writer, file.path, deadline=time.monotonic() + 60)
    assert replay.ended
    assert replay.complete
    assert store.lost > 0
    assert [p.step for p in store.history(run_id, "loss")] == list(range(20_000))
    store.close()


def test_a_batch_for_another_writers_run_is_refused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store")
    mine = _register(store, "m" * 32, "c" * 32)
    other = _register(store, "o" * 32, "d" * 32)
    with pytest.raises(StoreError, match=f"writes to run {mine}, not to run {other}"):
        store.ingest("m" * 32, other, [[journal.METRICS, 1.0, 0, None, {"x": 1.0}]], 0, 10)
    assert len(store.history(other, "x")) == 0
    assert [w.offset for w in store.open_writers()] == [0, 0]
    store.close()


def test_a_killed_training_process_is_drained_and_failed_without_any_reader(store_dir: Path) -> None:
    code = """
        import runlane, sys
        run = runlane.init(project="crash", system_metrics_interval=None)
        for step in range(5000):
            run.log({"loss": float(step)})
        print(run.id, flush=True)
        sys.stdin.readline()
    """
    proc = start_script(code, store_dir, stdin=-1)
    assert proc.stdout is not None
    run_id = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while stored_status(store_dir, run_id) == "running":
        assert time.monotonic() < deadline, "the drain did not fail the run"
        time.sleep(0.05)
    assert stored_status(store_dir, run_id) == "failed"
    assert list((store_dir / "journals").iterdir()) == []
    with runlane.Api(store_dir) as api:
        assert [p.step for p in api.history(run_id, "loss")] == list(range(5000))
        assert "exited without finishing" in (api.run(run_id).status_reason or "")


def test_the_thread_drain_stores_everything_where_no_process_can_be_started(store_dir: Path) -> None:
    code = """
        import threading, runlane
        run = runlane.init(project="thread", system_metrics_interval=None)
        for step in range(30_000):
            run.log({"loss": float(step)}, stage="train")
        assert [t.name for t in threading.enumerate() if t.name.startswith("runlane")] == ["runlane-drain"]
        run.finish()
        assert not [t.name for t in threading.enumerate() if t.name.startswith("runlane")]
        print(run.id)
    """
    result = run_script(code, store_dir, env=script_env(store_dir, RUNLANE_DRAIN="thread"))
    assert result.returncode == 0, result.stderr
    with runlane.Api(store_dir) as api:
        run_id = int(result.stdout)
        assert api.run(run_id).status == "finished"
        assert len(api.history(run_id, "loss")) == 30_000


def test_points_reach_the_store_while_the_run_is_live(store_dir: Path) -> None:
    run = runlane.init(project="live", dir=store_dir, system_metrics_interval=None)
    run.log({"loss": 0.5})
    deadline = time.monotonic() + 30
    with runlane.Api(store_dir) as api:
        while len(api.history(run.id, "loss")) == 0:
            assert time.monotonic() < deadline, "the drain did not apply a live run's point"
            time.sleep(0.02)
    run.finish()
