"""Console capture when the process dies without warning: the last output reaches the terminal and the run.

The console tee is a process of its own that outlives the training process: these tests crash, kill and
signal real processes and read what their terminal (a pipe of the test) and the store got.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

import runlane

from .conftest import script_env

FILLER_LINES = 1600  # 100 KiB: more than a pipe holds, so the terminal is behind when the process dies
CRASHES = {
    "abort": ("os.abort()", -signal.SIGABRT),
    "segfault": ("import ctypes; ctypes.string_at(0)", -signal.SIGSEGV),
    "os._exit": ("os._exit(1)", 1),
}


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _streams(store: Path) -> tuple[runlane.RunInfo, dict[str, list[str]]]:
    with runlane.Api(store) as api:
        api.recover()  # what the dead process left, unless its drain stored it first
        info = api.runs()[0]
        lines = api.logs(info.id)
    out: dict[str, list[str]] = {"stdout": [], "stderr": [], "log": []}
    for line in lines:
        out[line.stream].append(line.text)
    return info, out


def _start(code: str, store: Path, **popen: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", textwrap.dedent(code)],
        env=script_env(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


@contextmanager
def _reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """The process and its tee, killed and waited for if the test fails before they ended."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children():
                child.kill()
            proc.kill()
        proc.communicate()


def _filler(index: int) -> str:
    return f"filler {index:05d} ".ljust(63, ".")


@pytest.mark.parametrize("crash", list(CRASHES))
def test_the_last_output_before_a_hard_crash_reaches_the_terminal_and_the_run(store_dir: Path, crash: str) -> None:
    statement, returncode = CRASHES[crash]
    code = f"""
        import faulthandler, os, resource, runlane
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file to write: die at once
        run = runlane.init(project="crash", capture_console=True, system_metrics_interval=None)
        faulthandler.enable()
        filler = "".join(f"filler {{i:05d}} ".ljust(63, ".") + "\\n" for i in range({FILLER_LINES}))
        os.write(1, filler.encode())
        print("last stdout line", flush=True)
        os.write(2, b"last stderr line\\n")
        {statement}
    """
    with _reaped(_start(code, store_dir)) as proc:
        # The terminal reads nothing until the process is dead: what it is shown then comes from the tee.
        assert proc.wait(timeout=60) == returncode
        out, err = proc.communicate(timeout=60)
    filler = [_filler(i) for i in range(FILLER_LINES)]
    assert out.decode().splitlines() == [*filler, "last stdout line"]
    shown_err = err.decode().splitlines()
    assert shown_err[0] == "last stderr line"
    info, stored = _streams(store_dir)
    assert stored["stdout"] == [*filler, "last stdout line"]
    assert stored["stderr"][0] == "last stderr line"
    assert stored["stderr"] == shown_err
    if crash == "segfault":
        assert "Fatal Python error: Segmentation fault" in shown_err
    assert info.status == "failed"
    # The tee's journal carries the process's identity: the reason names the training process.
    assert info.status_reason == f"process {proc.pid} on {os.uname().nodename} exited without finishing the run"


def test_ctrl_c_to_the_whole_process_group_spares_the_tee_until_the_last_words(store_dir: Path) -> None:
    # A terminal's Ctrl-C (and SLURM's or a launcher's SIGTERM) reaches every process of the group, the tee
    # too; it must outlive the training process's KeyboardInterrupt, cleanup and traceback.
    code = """
        import time, runlane
        run = runlane.init(project="intr", capture_console=True, system_metrics_interval=None)
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            time.sleep(0.5)  # a checkpoint being saved: the tee must still be there afterwards
            print("cleaning up", flush=True)
    """
    with _reaped(_start(code, store_dir, start_new_session=True)) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert out == b"cleaning up\n"
    assert err.decode().splitlines()[-1] == "KeyboardInterrupt"
    assert b"tee.py" not in err  # the tee took no KeyboardInterrupt of its own
    info, stored = _streams(store_dir)
    assert info.status == "killed"
    assert stored["stdout"] == ["ready", "cleaning up"]
    assert stored["stderr"][-1] == "KeyboardInterrupt"


def test_a_killed_tee_gives_the_process_its_terminal_back(store_dir: Path) -> None:
    # Without its tee the process must not get EPIPE or block on a pipe nobody reads: it writes on, shown
    # but no longer stored, and the run ends as usual.
    code = """
        import os, time, psutil, runlane
        terminal = os.fstat(1).st_ino
        run = runlane.init(project="lost", capture_console=True, system_metrics_interval=None)
        print("captured", flush=True)
        with runlane.Api() as api:
            deadline = time.monotonic() + 60
            while [line.text for line in api.logs(run.id)] != ["captured"]:
                assert time.monotonic() < deadline, "the captured line was not stored within 60 s"
                time.sleep(0.01)
        # The drain process is a child too: the tee is the one running tee.py.
        (tee,) = [p for p in psutil.Process().children() if "capture.tee" in " ".join(p.cmdline())]
        tee.kill()
        deadline = time.monotonic() + 30
        while os.fstat(1).st_ino != terminal:  # the watcher puts the terminal back
            assert time.monotonic() < deadline, "fd 1 was not restored"
            time.sleep(0.01)
        for i in range(2000):  # far more than a pipe holds
            print(f"after the tee died {i}", flush=True)
        run.finish()
        print("finished", flush=True)
    """
    with _reaped(_start(code, store_dir)) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    shown = out.decode().splitlines()
    assert shown[-2001:] == [*(f"after the tee died {i}" for i in range(2000)), "finished"]
    assert "are shown but no longer stored" in err.decode()
    info, stored = _streams(store_dir)
    assert info.status == "finished"
    assert stored["stdout"] == ["captured"]


def test_a_journal_the_tee_still_holds_is_neither_replayed_nor_deleted(store_dir: Path, tmp_path: Path) -> None:
    # The training process is gone but its tee has not stored its last words yet (here: it is stopped).
    # Recovery must leave that journal alone and the run running, and finish the job once the tee let go.
    marker = tmp_path / "written"
    code = f"""
        import sys, time, runlane
        run = runlane.init(project="held", capture_console=True, system_metrics_interval=None)
        print("ready", flush=True)
        sys.stdin.readline()  # the test stops the tee meanwhile
        print("last words", flush=True)
        open({str(marker)!r}, "w").close()
        time.sleep(60)
    """
    with _reaped(_start(code, store_dir, stdin=subprocess.PIPE)) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        _wait_for(lambda: _streams(store_dir)[1]["stdout"] == ["ready"], "the first line to be stored")
        (tee,) = [p for p in psutil.Process(proc.pid).children() if "capture.tee" in " ".join(p.cmdline())]
        tee.suspend()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        _wait_for(marker.exists, "the last words to be written")
        proc.kill()
        proc.wait(timeout=60)
        journals = sorted((store_dir / "journals").iterdir())
        info, stored = _streams(store_dir)
        assert info.status == "running"
        assert stored["stdout"] == ["ready"]
        held = [path for path in journals if path.exists()]
        assert len(held) == 1  # the tee's: the process's own journal was replayed and deleted
        tee.resume()
        tee.wait(timeout=60)
        out, _ = proc.communicate(timeout=60)
    assert out == b"last words\n"  # "ready" was read above
    info, stored = _streams(store_dir)
    assert not held[0].exists()  # replayed, then deleted
    assert stored["stdout"] == ["ready", "last words"]
    assert info.status == "failed"
    assert info.status_reason == f"process {proc.pid} on {os.uname().nodename} exited without finishing the run"


def test_a_tee_that_cannot_start_leaves_the_console_as_it_was(store_dir: Path) -> None:
    code = """
        import os, sys, time, runlane
        terminal = os.fstat(1).st_ino
        sys.executable = "/nonexistent/python"  # what the tee is started with
        run = runlane.init(project="nostart", capture_console=True, system_metrics_interval=None)
        deadline = time.monotonic() + 30
        while os.fstat(1).st_ino != terminal:
            assert time.monotonic() < deadline, "fd 1 was not restored"
            time.sleep(0.01)
        print("shown anyway", flush=True)
        run.finish()
    """
    with _reaped(_start(code, store_dir)) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"shown anyway\n"
    assert b"could not be started" in err
    info, stored = _streams(store_dir)
    assert info.status == "finished"
    assert stored["stdout"] == []


def test_the_tees_journal_is_a_non_owner_writer_closed_by_its_end_record(store_dir: Path) -> None:
    # The tee's writer carries the process's identity (its drain tails it) but does not own the run: its END
    # record closes only itself, the run's status comes from the run's own END, and no journal is left.
    code = """
        import runlane
        run = runlane.init(project="end", capture_console=True, system_metrics_interval=None)
        print("stored", flush=True)
        run.finish()
    """
    with _reaped(_start(code, store_dir)) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"stored\n"
    with runlane.Api(store_dir) as api:
        info = api.run(api.runs()[0].id)
        assert [line.text for line in api.logs(info.id)] == ["stored"]
    assert info.status == "finished"
    assert info.status_reason is None
    assert sorted((w.pid, w.owner) for w in info.writers) == [(proc.pid, False), (proc.pid, True)]
    assert all(w.closed_at is not None for w in info.writers)
    assert list((store_dir / "journals").iterdir()) == []
