"""Readers write nothing: opening ``runlane.Api`` leaves a dead process's run as it is; ``runlane recover``
(or ``Api.recover()``, or the next ``init()``) is what delivers and fails it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import runlane

from .conftest import run_script, script_env, stored_status

DIES_WITH_ITS_DRAIN = """
    import os, runlane
    run = runlane.init(project="gone", system_metrics_interval=None)
    for step in range(120):
        run.log({"x": float(step)})
    print(run.id, flush=True)
    os._exit(1)
"""


def _left_behind(store_dir: Path) -> tuple[int, Path]:
    # A drain thread dies with its process, as a drain process killed with it would.
    result = run_script(DIES_WITH_ITS_DRAIN, store_dir, env=script_env(store_dir, RUNLANE_DRAIN="thread"))
    assert result.returncode == 1, result.stderr
    [journal] = (store_dir / "journals").glob("*.rlj")
    return int(result.stdout), journal


def test_opening_an_api_leaves_a_dead_processes_run_alone(store_dir: Path) -> None:
    run_id, journal = _left_behind(store_dir)
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "running"
        stored = len(api.history(run_id, "x"))
    assert stored_status(store_dir, run_id) == "running"
    assert journal.exists()  # nothing replayed, nothing deleted
    with runlane.Api(store_dir) as api:
        assert len(api.history(run_id, "x")) == stored


def test_runlane_recover_delivers_and_fails_what_a_dead_process_left(store_dir: Path) -> None:
    run_id, journal = _left_behind(store_dir)
    recovered = subprocess.run(
        [sys.executable, "-m", "runlane", "recover", "--dir", str(store_dir)],
        env=script_env(store_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    assert recovered.returncode == 0, recovered.stderr
    assert recovered.stdout.startswith("GON-1 failed: process ")
    assert "exited without finishing the run" in recovered.stdout
    assert not journal.exists()
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "failed"
        assert [p.value for p in api.history(run_id, "x")] == [float(s) for s in range(120)]
        assert api.recover() == []  # once: nothing is left
    again = subprocess.run(
        [sys.executable, "-m", "runlane", "recover", "--dir", str(store_dir)],
        env=script_env(store_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.stdout == "nothing to recover\n"


def test_the_next_init_recovers_what_a_dead_process_left(store_dir: Path) -> None:
    run_id, journal = _left_behind(store_dir)
    runlane.init(project="next", dir=store_dir, system_metrics_interval=None).finish()
    assert not journal.exists()
    with runlane.Api(store_dir) as api:
        assert api.run(run_id).status == "failed"
        assert len(api.history(run_id, "x")) == 120
