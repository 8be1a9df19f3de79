"""Once log() has returned, the point survives SIGKILL; replay happens exactly once."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import runlane

from .conftest import start_script

CHILD = """
    import os, sys, runlane
    run = runlane.init(project="crash", name="victim")
    report = os.fdopen(3, "w", buffering=1)
    report.write(f"{run.id}\\n")
    step = 0
    while True:
        run.log({"loss": 1.0 / (step + 1), "acc": step * 0.001, "nested": {"x": float(step)}})
        run.log_text(f"line {step}")
        report.write(f"{step}\\n")  # only after log() and log_text() have returned
        step += 1
"""


def _kill_child_at_random(store: Path, min_steps: int) -> tuple[int, list[int]]:
    read_fd, write_fd = os.pipe()
    proc = start_script(CHILD.replace("fdopen(3", f"fdopen({write_fd}"), store, pass_fds=(write_fd,))
    os.close(write_fd)
    reported: list[int] = []
    with os.fdopen(read_fd) as pipe:
        run_id = int(pipe.readline())
        target = random.randint(min_steps, min_steps * 10)
        for line in pipe:
            reported.append(int(line))
            if len(reported) >= target:
                os.kill(proc.pid, signal.SIGKILL)
                break
        reported.extend(int(line) for line in pipe)  # whatever was reported before the kill landed
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return run_id, reported


def test_every_reported_point_survives_sigkill_exactly_once(store_dir: Path) -> None:
    for attempt in range(3):
        run_id, reported = _kill_child_at_random(store_dir, min_steps=200 * (attempt + 1))
        assert reported == list(range(len(reported)))
        with runlane.Api(store_dir) as api:
            info = api.run(run_id)
            assert info.status == "failed"
            assert info.status_reason is not None
            assert "exited without finishing the run" in info.status_reason
            loss = api.history(run_id, "loss")
            steps = [p.step for p in loss]
            # Everything reported is there; at most the one step in flight at the kill is extra.
            assert steps[: len(reported)] == reported
            assert len(steps) - len(reported) in (0, 1)
            assert [p.value for p in loss] == [1.0 / (s + 1) for s in steps]
            assert [p.step for p in api.history(run_id, "nested/x")] == steps
            lines = [line.text for line in api.logs(run_id)]
            assert lines[: len(reported)] == [f"line {s}" for s in reported]
            assert len(lines) == len(set(lines)), "a log line was replayed twice"
        # Opening the store again replays nothing twice.
        with runlane.Api(store_dir) as api:
            assert len(api.history(run_id, "loss")) == len(steps)
            assert len(api.logs(run_id)) == len(lines)


def test_concurrent_readers_replay_a_dead_journal_once(store_dir: Path) -> None:
    run_id, reported = _kill_child_at_random(store_dir, min_steps=2000)
    # Four processes open the store at the same moment; each finds the dead writer's journal.
    code = f"""
        import runlane
        with runlane.Api() as api:
            print(len(api.logs({run_id})))
    """
    readers = [start_script(code, store_dir) for _ in range(4)]
    for proc in readers:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    with runlane.Api(store_dir) as api:
        lines = [line.text for line in api.logs(run_id)]
        assert len(lines) == len(set(lines))
        assert len(lines) >= len(reported)
        assert len(api.history(run_id, "acc")) - len(lines) in (0, 1)


def test_a_live_writer_is_not_mistaken_for_a_dead_one(store_dir: Path) -> None:
    code = """
        import time, runlane
        run = runlane.init(project="alive")
        run.log({"x": 1.0})
        print(run.id, flush=True)
        time.sleep(60)
    """
    proc = start_script(code, store_dir)
    try:
        assert proc.stdout is not None
        run_id = int(proc.stdout.readline())
        with runlane.Api(store_dir) as api:
            deadline = time.monotonic() + 30
            while not api.history(run_id, "x").steps:  # the drain commits within its poll interval
                assert time.monotonic() < deadline, "the drain did not store the point"
                time.sleep(0.01)
            assert api.recover() == []  # alive: nothing to recover
            info = api.run(run_id)
            assert info.status == "running"
            assert [p.value for p in api.history(run_id, "x")] == [1.0]
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    with runlane.Api(store_dir) as api:
        assert api.recover() in ([run_id], [])  # [] if the drain of the killed process was first
        assert api.run(run_id).status == "failed"
