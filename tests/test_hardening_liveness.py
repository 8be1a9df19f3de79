"""Writers that live long, live in other PID namespaces or beside each other: liveness, recovery, ownership.

Issue 8, items 2, 3, 5, 7 and 8: resume and fork see everything the store will ever hold of a run; a live
writer is never declared dead from outside its PID namespace and its journal is never deleted; a record
too large for the journal is refused at the call and a damaged journal is kept; only a run's owner
decides its final status; a side process is told when its step counter may repeat the owner's.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import runlane
from runlane import journal, liveness
from runlane.journal import JournalFile

from .conftest import run_script, script_env, start_script


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _journals(store: Path) -> list[Path]:
    return sorted((store / "journals").iterdir())


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        _out, err = proc.communicate(timeout=30)
        raise AssertionError(f"the process ended (rc {proc.returncode}) without answering: {err}")
    return line.strip()


def _send(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(text + "\n")
    proc.stdin.flush()


@contextmanager
def _store_write_locked(store: Path) -> Iterator[None]:
    """Hold SQLite's write lock, so no writer thread can commit what processes journal meanwhile."""
    conn = sqlite3.connect(store / "runlane.db", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


# -- item 2: resume and fork from a process whose writer thread already runs -------------------------

# A notebook, a service, a sweep driver: its writer thread started long before it resumes or forks.
LONG_LIVED = """
    import sys, runlane
    keeper = runlane.init(project="service", name="in progress")
    keeper.log({"alive": 1.0})
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        try:
            if command == "resume":
                run = runlane.init(run_id=int(args[0]), resume=True)
                print(run.step, flush=True)
                for _ in range(100):
                    run.log({"loss": -1.0})
                run.finish()
            elif command == "fork":
                child = runlane.init(fork_run_id=int(args[0]), fork_step=int(args[1]))
                print(child.fork_step, child.step, flush=True)
                child.finish()
        except Exception as exc:
            print("error", repr(exc), flush=True)
    keeper.finish()
"""

CRASHER = """
    import os, signal, sys, runlane
    run = runlane.init(project="crashing")
    print(run.id, flush=True)
    sys.stdin.readline()
    for step in range(1000):
        run.log({"loss": float(step)})
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _crash_with_unreplayed_journal(store: Path) -> int:
    """A run whose process was SIGKILLed with all 1,000 of its points still only in its journal."""
    crasher = start_script(CRASHER, store, stdin=subprocess.PIPE)
    run_id = int(_line(crasher))
    with _store_write_locked(store):
        _send(crasher, "go")
        crasher.communicate(timeout=60)
    assert crasher.returncode == -signal.SIGKILL
    return run_id


def _long_lived(store: Path) -> subprocess.Popen[str]:
    proc = start_script(LONG_LIVED, store, stdin=subprocess.PIPE)
    assert _line(proc) == "ready"
    return proc


def _close(proc: subprocess.Popen[str]) -> None:
    _out, err = proc.communicate(timeout=60)  # closes its stdin: the end of its commands
    assert proc.returncode == 0, err


def test_resume_from_a_long_lived_process_replays_the_crashed_journal_before_counting_steps(store_dir: Path) -> None:
    service = _long_lived(store_dir)
    run_id = _crash_with_unreplayed_journal(store_dir)
    _send(service, f"resume {run_id}")
    next_step = _line(service)
    _close(service)
    assert next_step == "1000"
    with runlane.Api(store_dir) as api:
        points = [(p.step, p.value) for p in api.history(run_id, "loss")]
        assert points == [(s, float(s)) for s in range(1000)] + [(s, -1.0) for s in range(1000, 1100)]
        assert api.run(run_id).status == "finished"


def test_fork_from_a_long_lived_process_sees_the_crashed_runs_whole_range(store_dir: Path) -> None:
    service = _long_lived(store_dir)
    run_id = _crash_with_unreplayed_journal(store_dir)
    _send(service, f"fork {run_id} 999")
    answer = _line(service)
    _close(service)
    assert answer == "999 1000"


# -- item 3: a writer in another PID namespace, and journals a live process may still append to ---------

CONTAINED_TRAINER = """
    import sys, runlane
    run = runlane.init(project="container")
    for step in range(500):
        run.log({"x": float(step)})
    print(run.id, flush=True)
    sys.stdin.readline()
    for step in range(500, 1000):
        run.log({"x": float(step)})
    run.finish()
    print("finished", flush=True)
"""


def test_a_trainer_in_its_own_pid_namespace_is_not_declared_dead_by_readers_outside(store_dir: Path) -> None:
    # A container sharing the store's volume and the host name: its own PID namespace and /proc. No skip:
    # where unshare is missing this fails, and the check must be run where it is not.
    trainer = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", textwrap.dedent(CONTAINED_TRAINER)],
        env=script_env(store_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = int(_line(trainer))
        [journal_path] = _journals(store_dir)
        with runlane.Api(store_dir) as api:
            assert api.run(run_id).status == "running"
        listing = subprocess.run(
            [sys.executable, "-m", "runlane", "ls"],
            env=script_env(store_dir),
            capture_output=True,
            text=True,
            check=False,
        )
        assert listing.returncode == 0, listing.stderr
        other = runlane.init(project="outside", dir=store_dir)
        other.finish()
        assert journal_path.exists()
        with runlane.Api(store_dir) as api:
            assert api.run(run_id).status == "running"
        _send(trainer, "go")
        out, err = trainer.communicate(timeout=60)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.communicate(timeout=30)
    assert trainer.returncode == 0, err
    assert out.strip() == "finished"
    with runlane.Api(store_dir) as api:
        info = api.run(run_id)
        assert info.status == "finished"
        assert [p.value for p in api.history(run_id, "x")] == [float(s) for s in range(1000)]


def test_a_writer_in_another_pid_namespace_is_judged_by_its_heartbeat(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(gone.stdout)  # exited: on this side of the namespace boundary there is no such process
    now = time.time()
    here, mine = liveness.host_name(), liveness.current_pid_namespace()
    elsewhere = "pid:[1]"  # no real namespace has this inode
    assert mine != elsewhere

    def alive(namespace: str | None, heartbeat_age: float) -> bool:
        return liveness.writer_is_alive(
            host=here,
            pid_namespace=namespace,
            pid=dead_pid,
            pid_started=None,
            heartbeat_at=now - heartbeat_age,
            now=now,
            journal_path=tmp_path / "absent.rlj",
        )

    assert alive(elsewhere, heartbeat_age=10.0)  # its pid means nothing here: the heartbeat is fresh
    assert not alive(elsewhere, heartbeat_age=liveness.REMOTE_HEARTBEAT_TIMEOUT_S + 1)
    assert alive(None, heartbeat_age=10.0)  # a writer row that does not say: judged like another namespace
    assert not alive(mine, heartbeat_age=10.0)  # our own namespace: the pid is the truth


def test_a_journal_that_a_forked_child_still_appends_to_is_never_replayed_or_deleted(store_dir: Path) -> None:
    code = """
        import os, signal, sys, runlane
        run = runlane.init(project="forked")
        run.log({"x": 0.0}, step=0)
        child = os.fork()
        if child == 0:  # a worker that outlives its parent and still logs into the parent's run
            sys.stdin.readline()
            for step in range(1, 101):
                run.log({"x": float(step)}, step=step)
            os._exit(0)
        print(child, run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
    parent = start_script(code, store_dir, stdin=subprocess.PIPE)
    child_pid, run_id = map(int, _line(parent).split())
    try:
        parent.wait(timeout=60)
        [journal_path] = _journals(store_dir)
        with runlane.Api(store_dir) as api:
            assert api.run(run_id).status == "running"  # a live process may still append to its journal
        assert journal_path.exists()
        _send(parent, "go")  # the child shares the parent's stdin, and its stdout: EOF once it exited
        parent.communicate(timeout=60)
        _wait_until(lambda: liveness.process_start_time(child_pid) is None, "the forked child to exit")
    finally:
        if liveness.process_start_time(child_pid) is not None:
            os.kill(child_pid, signal.SIGKILL)
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
        assert [p.value for p in api.history(run_id, "x")] == [float(s) for s in range(101)]
    assert info.status == "failed"
    assert not journal_path.exists()


def test_a_journal_is_locked_while_its_file_is_open(tmp_path: Path) -> None:
    path = tmp_path / "j.rlj"
    file = JournalFile(path)
    assert journal.in_use(path)
    file.close()
    assert not journal.in_use(path)
    assert not journal.in_use(tmp_path / "missing.rlj")


# -- item 5: records too large for the journal reader; damaged journals ----------------------------------


def test_a_summary_too_large_for_the_journal_is_refused_at_the_call_naming_the_limit(store_dir: Path) -> None:
    run = runlane.init(project="big", dir=store_dir)
    run.log({"x": 1.0})
    with pytest.raises(ValueError, match=r"64 MiB") as refused:
        run.summary({"weights": np.zeros((80_000, 200))})  # 16 M floats, 144 MB of msgpack
    assert "summary.weights" in str(refused.value)
    with pytest.raises(ValueError, match=r"64 MiB"):
        run.update_config({"notes": ["n" * 1_000_000] * 70})  # each string is allowed, the record is not
    run.summary({"note": "after"})
    run.log({"x": 2.0})
    run.finish()
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
        assert info.status == "finished"
        assert info.summary == {"note": "after"}
        assert info.config == {}
        assert [p.value for p in api.history(run.id, "x")] == [1.0, 2.0]


def test_a_record_larger_than_one_journal_read_is_stored_by_an_immediate_finish(store_dir: Path) -> None:
    run = runlane.init(project="big", dir=store_dir)
    run.summary({"weights": np.arange(2_500_000, dtype=np.float64)})  # 22.5 MB: under the limit, over 8 MiB
    run.log({"x": 1.0})
    run.finish()
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
        assert info.status == "finished"
        assert len(info.summary["weights"]) == 2_500_000
        assert [p.value for p in api.history(run.id, "x")] == [1.0]


def test_a_record_larger_than_one_journal_read_is_replayed_after_a_crash(store_dir: Path) -> None:
    code = """
        import os, numpy, runlane
        run = runlane.init(project="big")
        run.summary({"weights": numpy.arange(2_500_000, dtype=numpy.float64)})
        run.log({"x": 1.0})
        print(run.id, flush=True)
        os._exit(1)
    """
    result = run_script(code, store_dir)
    run_id = int(result.stdout)
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
        assert len(info.summary["weights"]) == 2_500_000
        assert [p.value for p in api.history(run_id, "x")] == [1.0]
    assert info.status == "failed"
    assert _journals(store_dir) == []


def test_the_record_size_limit_is_exactly_max_record_bytes() -> None:
    with pytest.raises(ValueError, match=rf"log\(\): .* at most {journal.MAX_RECORD_BYTES} bytes \(64 MiB\)"):
        journal.check_record_size(b"\0" * (journal.MAX_RECORD_BYTES + 1), "log()")
    journal.check_record_size(b"\0" * journal.MAX_RECORD_BYTES, "log()")


def test_a_damaged_journal_of_a_dead_writer_is_kept_and_the_reason_says_so(store_dir: Path) -> None:
    code = """
        import os, runlane
        run = runlane.init(project="damaged")
        run.log({"x": 1.0})
        print(run.id, flush=True)
        os._exit(1)
    """
    # A drain thread dies with its process (as a drain process killed with it would): the journal is left
    # for the next reader, and damaged before it comes.
    result = run_script(code, store_dir, env=script_env(store_dir, RUNLANE_DRAIN="thread"))
    run_id = int(result.stdout)
    [journal_path] = _journals(store_dir)
    with open(journal_path, "ab") as out:
        out.write(b"\xc1garbage")  # 0xc1 is never valid msgpack
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
    assert info.status == "failed"
    assert "kept" in (info.status_reason or "")
    assert journal_path.name in (info.status_reason or "")
    assert journal_path.exists()
    with runlane.Api(store_dir) as api:  # a later recovery neither replays nor deletes it
        api.recover()
        assert [p.value for p in api.history(run_id, "x")] == [1.0]
    assert journal_path.exists()


def test_a_journal_damaged_under_a_live_run_is_kept_by_finish_and_the_reason_says_so(store_dir: Path) -> None:
    code = """
        import os, runlane
        run = runlane.init(project="damaged")
        for i in range(10):
            run.log({"x": float(i)})
        [name] = os.listdir(os.path.join(os.environ["RUNLANE_DIR"], "journals"))
        with open(os.path.join(os.environ["RUNLANE_DIR"], "journals", name), "ab") as out:
            out.write(b"\\xc1garbage")
        for i in range(10, 20):
            run.log({"x": float(i)})
        try:
            run.finish()
        except RuntimeError as exc:  # a JournalDamagedError is a RuntimeError too, for code written before it
            assert isinstance(exc, runlane.RunlaneError)
            print(run.id, type(exc).__name__, exc, flush=True)
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    run_id, kind, message = result.stdout.split(" ", 2)
    [journal_path] = _journals(store_dir)
    assert kind == "JournalDamagedError"
    assert "kept" in message
    assert journal_path.name in message
    with runlane.Api(store_dir) as api:
        info = api.run(int(run_id))
        assert [p.value for p in api.history(int(run_id), "x")] == [float(i) for i in range(10)]
    assert info.status == "failed"
    assert "kept" in (info.status_reason or "")
    assert journal_path.name in (info.status_reason or "")
    assert journal_path.exists()


# -- item 7: only the run's owner decides its final status ---------------------------------------------

OWNER = """
    import sys, runlane
    run = runlane.init(project="owned")
    run.log({"train/loss": 1.0}, step=0)
    print(run.id, flush=True)
    sys.stdin.readline()
    run.log({"train/loss": 0.5}, step=1)
    run.finish()
"""

SIDE = """
    import signal, runlane
    run = runlane.init(run_id={run_id}, resume=True)
    run.log({{"eval/acc": 0.5}}, step=0)
    print("attached", flush=True)
    {ending}
"""

SIDE_ENDINGS = {
    "sigterm": ("signal.pause()", -signal.SIGTERM),
    "exception": ("raise RuntimeError('the eval job crashed')", 1),
    "return": ("", 0),
    "sigkill": ("signal.pause()", -signal.SIGKILL),
}


@pytest.mark.parametrize("ending", list(SIDE_ENDINGS))
def test_a_side_process_ending_by_itself_leaves_the_owners_run_running(store_dir: Path, ending: str) -> None:
    owner = start_script(OWNER, store_dir, stdin=subprocess.PIPE)
    run_id = int(_line(owner))
    code, returncode = SIDE_ENDINGS[ending]
    side = start_script(SIDE.format(run_id=run_id, ending=code), store_dir)
    assert _line(side) == "attached"
    if ending in ("sigterm", "sigkill"):
        side.send_signal(signal.SIGTERM if ending == "sigterm" else signal.SIGKILL)
    _out, err = side.communicate(timeout=60)
    assert side.returncode == returncode, err
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
        assert info.status == "running"
        assert [p.value for p in api.history(run_id, "eval/acc")] == [0.5]
        assert [w.closed_at is None for w in info.writers] == [True, False]  # the owner's, the side's
    _send(owner, "go")
    _out, err = owner.communicate(timeout=60)
    assert owner.returncode == 0, err
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "finished"


def test_a_side_process_that_outlives_the_finished_run_leaves_its_status_alone(store_dir: Path) -> None:
    owner = start_script(OWNER, store_dir, stdin=subprocess.PIPE)
    run_id = int(_line(owner))
    side = start_script(SIDE.format(run_id=run_id, ending="signal.pause()"), store_dir)
    assert _line(side) == "attached"
    _send(owner, "go")
    owner.communicate(timeout=60)
    assert owner.returncode == 0
    side.send_signal(signal.SIGTERM)
    side.communicate(timeout=60)
    assert side.returncode == -signal.SIGTERM
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "finished"


def test_the_run_fails_when_its_owner_dies_even_while_a_side_process_is_attached(store_dir: Path) -> None:
    owner = start_script(OWNER, store_dir, stdin=subprocess.PIPE)
    run_id = int(_line(owner))
    side = runlane.init(run_id=run_id, resume=True, dir=store_dir)
    owner.kill()
    owner.communicate(timeout=60)
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
    assert info.status == "failed"
    assert f"process {owner.pid} " in (info.status_reason or "")
    side.log({"eval/acc": 0.9}, step=0)
    side.close()
    with runlane.Api(store_dir) as api:
        info = api.run(run_id)
        assert info.status == "failed"
        assert [p.value for p in api.history(run_id, "eval/acc")] == [0.9]


def test_the_owner_is_recorded_in_the_store(store_dir: Path) -> None:
    owner = runlane.init(project="p", dir=store_dir)
    side = runlane.init(run_id=owner.id, resume=True, dir=store_dir)
    with runlane.Api(store_dir) as api:
        assert [w.owner for w in api.run(owner.id).writers] == [True, False]
    side.close()
    owner.finish()
    again = runlane.init(run_id=owner.id, resume=True, dir=store_dir)  # nobody else writes: the new owner
    again.close()
    with runlane.Api(store_dir) as api:
        assert [w.owner for w in api.run(owner.id).writers] == [True, False, True]


# -- item 8: two processes resuming one run ------------------------------------------------------------


def test_a_second_resumer_is_warned_that_the_steps_it_counts_may_repeat_the_owners(
    store_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = run_script(
        """
        import os, runlane
        run = runlane.init(project="twice")
        for step in range(5):
            run.log({"loss": 1.0})
        print(run.id, flush=True)
        os._exit(1)
        """,
        store_dir,
    )
    run_id = int(crashed.stdout)
    first = runlane.init(run_id=run_id, resume=True, dir=store_dir)
    second = runlane.init(run_id=run_id, resume=True, dir=store_dir)
    assert (first.step, second.step) == (5, 5)
    caplog.set_level(logging.WARNING, logger="runlane")
    caplog.clear()  # recovery's note that the crashed run failed
    first.log({"loss": 0.5})  # the owner counts on
    second.log({"eval/acc": 0.9}, step=5)  # an explicit step is the side process's own choice
    assert not caplog.records
    second.log({"loss": 0.4})
    second.log({"loss": 0.3})
    [warning] = [r for r in caplog.records if r.name == "runlane"]
    message = warning.getMessage()
    assert f"process {os.getpid()}" in message
    assert "step=" in message
    second.close()
    first.finish()
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "finished"
