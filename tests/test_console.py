"""Console capture: fd level, in order per stream, tqdm modes, one run at a time, a clean restore.

Capturing scripts run in their own process, so the test runner's fds are never swapped.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import runlane
from runlane.sdk.capture.lines import MAX_LINE, ConsoleLines

from .conftest import run_script, script_env, start_script


def _streams(store: Path, run_ref: int | str | None = None) -> dict[str, list[str]]:
    with runlane.Api(store) as api:
        ref = run_ref if run_ref is not None else api.runs()[0].id
        lines = api.logs(ref)
    out: dict[str, list[str]] = {"stdout": [], "stderr": [], "log": []}
    for line in lines:
        out[line.stream].append(line.text)
    return out


def test_print_os_write_c_and_child_output_are_captured_in_order_and_still_shown(store_dir: Path) -> None:
    code = """
        import ctypes, os, subprocess, sys, runlane
        print("before init", flush=True)
        run = runlane.init(project="console", capture_console=True, system_metrics_interval=None)
        print("1 print", flush=True)
        os.write(1, b"2 os.write\\n")
        child = "import os; print('3 child', flush=True); os.write(2, b'b child' + bytes([10]))"
        subprocess.run([sys.executable, "-c", child], check=True)
        libc = ctypes.CDLL(None)
        libc.printf(b"4 C printf\\n")
        libc.fflush(None)
        print("5 print, no newline yet", end="", flush=True)
        print(" ... done", flush=True)
        print()
        print("a print", file=sys.stderr, flush=True)
        os.write(2, b"c os.write\\n")
        run.log_text("not printed")
        run.finish()
        print("after finish", flush=True)
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    shown = ["1 print", "2 os.write", "3 child", "4 C printf", "5 print, no newline yet ... done", ""]
    assert result.stdout == "\n".join(["before init", *shown, "after finish"]) + "\n"
    assert result.stderr == "b child\na print\nc os.write\n"
    stored = _streams(store_dir)
    assert stored["stdout"] == shown
    assert stored["stderr"] == ["b child", "a print", "c os.write"]
    assert stored["log"] == ["not printed"]


def _tqdm_script(mode: str) -> str:
    return f"""
        import sys, runlane
        from tqdm import tqdm
        run = runlane.init(project="bars", capture_console=True, tqdm_mode={mode!r}, system_metrics_interval=None)
        print("start", flush=True)
        for _ in tqdm(range(4), desc="train", mininterval=0, miniters=1, ascii=True):
            pass
        print("end", file=sys.stderr, flush=True)
        run.finish()
    """


def test_tqdm_smart_mode_keeps_the_final_state_of_the_bar(store_dir: Path) -> None:
    result = run_script(_tqdm_script("smart"), store_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("train:") >= 5  # the terminal still got every redraw
    stored = _streams(store_dir)
    assert stored["stdout"] == ["start"]
    assert len(stored["stderr"]) == 2
    bar, end = stored["stderr"]
    assert bar.startswith("train: 100%")
    assert "4/4" in bar
    assert end == "end"


def test_tqdm_all_mode_keeps_every_update(store_dir: Path) -> None:
    result = run_script(_tqdm_script("all"), store_dir)
    assert result.returncode == 0, result.stderr
    *bars, end = _streams(store_dir)["stderr"]
    assert end == "end"
    assert len(bars) >= 5  # 0/4 .. 4/4, plus tqdm's own redraw at close
    assert all(bar.startswith("train:") for bar in bars)
    assert "0/4" in bars[0]
    assert [f"{i}/4" in "".join(bars) for i in range(5)] == [True] * 5
    assert "4/4" in bars[-1]


def test_tqdm_none_mode_drops_progress_updates(store_dir: Path) -> None:
    result = run_script(_tqdm_script("none"), store_dir)
    assert result.returncode == 0, result.stderr
    assert "4/4" in result.stderr  # shown, not stored
    assert _streams(store_dir) == {"stdout": ["start"], "stderr": ["end"], "log": []}


def test_an_unknown_tqdm_mode_is_refused_before_anything_is_created(store_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"tqdm_mode must be one of 'smart', 'all', 'none', got 'fancy'"):
        runlane.init(project="p", dir=store_dir, capture_console=True, tqdm_mode="fancy")
    with pytest.raises(ValueError, match="tqdm_mode"):
        runlane.init(project="p", dir=store_dir, tqdm_mode=None)  # type: ignore[arg-type]
    assert not store_dir.exists()


def test_one_run_at_a_time_captures_the_console(store_dir: Path) -> None:
    code = """
        import runlane
        first = runlane.init(project="busy", capture_console=True, system_metrics_interval=None)
        try:
            runlane.init(project="busy", capture_console=True, system_metrics_interval=None)
        except runlane.ConsoleBusyError as exc:
            print(f"refused: {exc}", flush=True)
        other = runlane.init(project="busy", system_metrics_interval=None)  # without the console: fine
        other.finish()
        first.finish()
        again = runlane.init(project="busy", capture_console=True, system_metrics_interval=None)
        print("captured again", flush=True)
        again.finish()
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    refusal = (
        "refused: the console of this process is already captured by run BUS-1: finish or close that run first, "
        "or pass capture_console=False"
    )
    assert result.stdout.splitlines()[0] == refusal
    with runlane.Api(store_dir) as api:
        assert [r.display_id for r in api.runs()] == ["BUS-3", "BUS-2", "BUS-1"]  # the refused run never existed
    assert _streams(store_dir, "BUS-1")["stdout"] == [refusal]
    assert _streams(store_dir, "BUS-2")["stdout"] == []
    assert _streams(store_dir, "BUS-3")["stdout"] == ["captured again"]


def test_no_thread_or_fd_is_left_after_finish_or_close(store_dir: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    workspace.mkdir()
    (workspace / "train.py").write_text("print('train')\n")
    code = f"""
        import os, threading, time
        import numpy as np
        import runlane

        def fds():
            found = {{}}
            for name in os.listdir("/proc/self/fd"):
                try:
                    found[int(name)] = os.readlink(f"/proc/self/fd/{{name}}")
                except OSError:  # the directory listdir had open
                    pass
            return found

        before = fds()
        for end in ("finish", "close", "finish"):
            run = runlane.init(
                project="clean", capture_console=True, capture_env=True, snapshot_code=True,
                workspace_root={str(workspace)!r}, system_metrics_interval=0.05,
            )
            print(f"captured before {{end}}", flush=True)
            run.log({{"x": 1.0}})
            run.log_image("img", np.zeros((2, 2), dtype=np.uint8))
            with runlane.Api() as api:  # wait for a system sample: the monitor has loaded psutil by then
                deadline = time.monotonic() + 60
                while not api.system_metrics(run.id):
                    assert time.monotonic() < deadline, "no system sample within 60 s"
                    time.sleep(0.02)
            getattr(run, end)()
            alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
            assert alive == [], alive
            assert fds() == before, (before, fds())
        print("clean", flush=True)
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "captured before finish",
        "captured before close",
        "captured before finish",
        "clean",
    ]
    with runlane.Api(store_dir) as api:
        runs = api.runs()
        assert [r.status for r in runs] == ["finished", "running", "finished"]
        for run in runs:
            assert api.logs(run.id)[0].text.startswith("captured before")
            assert api.system_metrics(run.id)
            assert api.environment(run.id) is not None
            assert api.code_snapshot(run.id) is not None


def test_an_uncaught_exception_still_stores_the_last_lines_and_the_traceback(store_dir: Path) -> None:
    code = """
        import runlane
        run = runlane.init(project="crash", capture_console=True, system_metrics_interval=None)
        print("last words")
        raise ValueError("boom")
    """
    result = run_script(code, store_dir)
    assert result.returncode == 1
    assert "ValueError: boom" in result.stderr  # still shown
    stored = _streams(store_dir)
    assert stored["stdout"] == ["last words"]  # print() buffered it; the capture flushed it on the way out
    assert stored["stderr"][0] == "Traceback (most recent call last):"
    assert stored["stderr"][-1] == "ValueError: boom"
    with runlane.Api(store_dir) as api:
        assert api.runs()[0].status == "failed"


def test_sigterm_ends_the_run_with_its_console_captured(store_dir: Path) -> None:
    code = """
        import sys, time, runlane
        run = runlane.init(project="term", capture_console=True, system_metrics_interval=None)
        print("working", file=sys.stderr, flush=True)
        print("ready", flush=True)  # last: the test sends SIGTERM when it reads this
        time.sleep(60)
    """
    with _reaped(start_script(code, store_dir)) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert err == "working\n"
    with runlane.Api(store_dir) as api:
        assert api.runs()[0].status == "killed"
    assert _streams(store_dir) == {"stdout": ["ready"], "stderr": ["working"], "log": []}


def _chatty(project: str, interval: str, then: str) -> str:
    """A capturing script whose second thread prints ``line 0``, ``line 1``, ... without end; the main
    thread says ``ready`` on stderr, then runs the one-line statement ``then``."""
    return f"""
        import sys, threading, runlane
        run = runlane.init(project={project!r}, capture_console=True, system_metrics_interval={interval})
        def chatter():
            i = 0
            while True:
                print(f"line {{i}}", flush=True)
                i += 1
        threading.Thread(target=chatter, daemon=True).start()
        print("ready", file=sys.stderr, flush=True)
        {then}
    """


def _killed_run_lines(store: Path) -> tuple[list[str], list[int]]:
    """The stdout lines of the only run, which must have been killed, and the numbers of the chatter's."""
    with runlane.Api(store) as api:
        info = api.runs()[0]
        lines = [line.text for line in api.logs(info.id) if line.stream == "stdout"]
    assert info.status == "killed"
    numbered = [int(text[5:]) for text in lines if text.startswith("line ") and text[5:].isdigit()]
    assert numbered == list(range(len(numbered)))  # every line up to the end, none lost on the way out
    return lines, numbered


def test_sigterm_inside_log_neither_hangs_nor_loses_captured_lines(store_dir: Path) -> None:
    # Regression: the SIGTERM handler ends the run on the main thread, which a tight loop keeps inside log()
    # holding the run lock; the console reader must not wait for that lock, nor drop its last lines.
    code = _chatty("term", "0.05", "while True: run.log({'x': 1.0})")
    with _reaped(_start(code, store_dir, stdout=subprocess.DEVNULL)) as proc:
        assert proc.stderr is not None
        assert proc.stderr.readline() == "ready\n"
        with runlane.Api(store_dir) as api:  # wait until some lines are stored
            while len(api.logs(api.runs()[0].id)) < 100:
                time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    lines, numbered = _killed_run_lines(store_dir)
    assert len(numbered) >= len(lines) - 1  # at most one line cut by the kill itself


def test_finish_does_not_hang_when_nobody_reads_the_terminal(store_dir: Path) -> None:
    # The parent never reads the child's stdout: the pipe fills, the tee blocks, and so would print().
    # Plain Python dies on SIGTERM there; with the console captured the run must end and the process too.
    code = _chatty("stuck", "None", "threading.Event().wait()")
    terminal_read, terminal_write = os.pipe()  # the child's stdout, read by nobody
    try:
        with _reaped(_start(code, store_dir, stdout=terminal_write)) as proc:
            assert proc.stderr is not None
            assert proc.stderr.readline() == "ready\n"
            full = select.poll()
            full.register(terminal_write, select.POLLOUT)
            while full.poll(0):  # writable: the child's tee still gets through (a pipe holds 64 KiB)
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        os.set_blocking(terminal_read, False)
        shown = os.read(terminal_read, 1 << 20).decode().splitlines()
    finally:
        os.close(terminal_read)
        os.close(terminal_write)
    assert proc.returncode == -signal.SIGTERM
    lines, _ = _killed_run_lines(store_dir)
    assert lines[:3] == ["line 0", "line 1", "line 2"]
    assert shown[0] == "line 0"  # the terminal got output until it stopped reading


@contextmanager
def _reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """The process, killed and waited for if the test fails before it ended (no stray process)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _start(code: str, store: Path, stdout: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=script_env(store),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_forked_child_is_captured_and_gets_epipe_once_the_run_is_over(store_dir: Path) -> None:
    # A forked child (a data-loader worker) writes into the parent's capture; if it outlives the run it
    # must get EPIPE, not fill a pipe nobody reads and block forever.
    code = """
        import os, signal, sys, runlane
        run = runlane.init(project="fork", capture_console=True, system_metrics_interval=None)
        # Before the fork: print() may write the text and the newline separately (PYTHONUNBUFFERED), and the
        # child's line must not land between them.
        print("parent", flush=True)
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)  # if this test ever fails by blocking here, the child still goes away
            print("child while the run lives", flush=True)
            os.read(go_read, 1)  # wait until the parent's run is over
            try:
                for _ in range(100):
                    os.write(1, b"x" * 4096 + b"\\n")
                os._exit(3)  # never blocked, never refused: someone kept a read end open
            except BrokenPipeError:
                os._exit(0)
        import time
        deadline = time.monotonic() + 60
        while "child while the run lives" not in [l.text for l in runlane.Api().logs(run.id)]:
            assert time.monotonic() < deadline, "the child's line was not stored within 60 s"
            time.sleep(0.01)
        run.finish()
        os.write(go_write, b"x")
        _, status = os.waitpid(pid, 0)
        print(f"child exit {os.waitstatus_to_exitcode(status)}", flush=True)
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "child exit 0"
    assert sorted(_streams(store_dir)["stdout"]) == ["child while the run lives", "parent"]


def test_capture_survives_a_process_without_stdout(store_dir: Path) -> None:
    code = """
        import os, sys, runlane
        run = runlane.init(project="daemon", capture_console=True, system_metrics_interval=None)
        os.write(2, b"only stderr\\n")
        run.finish()
    """
    # The shell closes fd 1 before Python starts: a daemon-like process with no stdout at all.
    result = subprocess.run(
        ["sh", "-c", 'exec "$0" -c "$1" 1>&-', sys.executable, textwrap.dedent(code)],
        env=script_env(store_dir),
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "only stderr\n"
    assert _streams(store_dir) == {"stdout": [], "stderr": ["only stderr"], "log": []}


# -- splitting console text into lines (pure) ---------------------------------------------------


def _feed(mode: str, *pieces: str) -> list[str]:
    lines = ConsoleLines(mode)  # type: ignore[arg-type]
    out: list[str] = []
    for piece in pieces:
        out += lines.feed(piece)
    return out + lines.flush()


def test_lines_split_on_newlines_in_any_piece_and_keep_empty_lines() -> None:
    for mode in ("smart", "all", "none"):
        assert _feed(mode, "a\nb", "c\n\n", "d\r", "\ne", "") == ["a", "bc", "", "d", "e"]


def test_redrawn_lines_follow_the_mode() -> None:
    bar = "\r 0%\r 50%\r100%\n"
    assert _feed("smart", "x\n", bar, "y\n") == ["x", "100%", "y"]
    assert _feed("all", "x\n", bar, "y\n") == ["x", " 0%", " 50%", "100%", "y"]
    assert _feed("none", "x\n", bar, "y\n") == ["x", "y"]


def test_a_bar_that_erases_itself_leaves_its_last_state_or_what_was_written_over_it() -> None:
    erased = "\r 50%\r100%\r    \r"
    assert _feed("smart", erased, "\n") == ["100%"]
    assert _feed("none", erased, "\n") == []
    assert _feed("smart", erased, "done\n") == ["done"]
    assert _feed("none", erased, "done\n") == ["done"]
    assert _feed("all", erased, "done\n") == [" 50%", "100%", "done"]


def test_a_runaway_line_is_cut() -> None:
    lines = _feed("smart", "x" * (2 * MAX_LINE + 5))
    assert [len(line) for line in lines] == [MAX_LINE, MAX_LINE, 5]
