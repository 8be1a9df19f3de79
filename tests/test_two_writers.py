"""A training process and a side process write to one run at the same time (Pluto's close() pattern)."""

from __future__ import annotations

import time
from pathlib import Path

import runlane

from .conftest import start_script
from .remote import store_dir as _local_and_remote

store_dir = _local_and_remote  # every test here runs on a local store and on a server


def test_side_process_appends_eval_metrics_and_closes_while_training_continues(store_dir: Path, tmp_path: Path) -> None:
    done_flag = tmp_path / "side-done"
    training = start_script(
        f"""
        import os, time, runlane
        run = runlane.init(project="shared", name="train")
        print(run.display_id, flush=True)
        step = 0
        while not os.path.exists({str(done_flag)!r}) or step < 3000:
            run.log({{"train/loss": 1.0 / (step + 1)}}, step=step)
            step += 1
            if step % 100 == 0:
                time.sleep(0.01)
        print(step, flush=True)
        run.finish()
        """,
        store_dir,
    )
    assert training.stdout is not None
    display_id = training.stdout.readline().strip()
    side = start_script(
        f"""
        import runlane
        run = runlane.init(project="shared", run_id={display_id!r}, resume=True)
        for i in range(500):
            run.log({{"eval/acc": i / 500, "eval/loss": 1 - i / 500}}, step=i * 10)
        run.close()
        """,
        store_dir,
    )
    _, side_err = side.communicate(timeout=60)
    assert side.returncode == 0, side_err
    with runlane.Api(store_dir) as api:
        # The side process closed: the run is still the training process's, and still running.
        assert api.run(display_id).status == "running"
        assert len(api.history(display_id, "eval/acc")) == 500
    done_flag.touch()
    out, err = training.communicate(timeout=60)
    assert training.returncode == 0, err
    total_steps = int(out.strip())
    with runlane.Api(store_dir) as api:
        info = api.run(display_id)
        assert info.status == "finished"
        assert len(info.writers) == 2
        train = api.history(display_id, "train/loss")
        assert [p.step for p in train] == list(range(total_steps))
        acc = api.history(display_id, "eval/acc")
        assert [(p.step, p.value) for p in acc] == [(i * 10, i / 500) for i in range(500)]
        assert len(api.history(display_id, "eval/loss")) == 500


def test_resume_of_a_running_run_keeps_it_running_after_close(store_dir: Path) -> None:
    owner = runlane.init(project="p", dir=store_dir)
    owner.log({"x": 1.0})
    deadline = time.monotonic() + 30
    with runlane.Api(store_dir) as api:  # the side process counts on from what the store holds
        while not api.history(owner.id, "x"):
            assert time.monotonic() < deadline, "the owner's point never reached the store"
            time.sleep(0.02)
    side = runlane.init(run_id=owner.id, resume=True, dir=store_dir)
    assert side.step == 1
    side.log({"y": 2.0})
    side.close()
    with runlane.Api(store_dir) as api:
        assert api.run(owner.id).status == "running"
    owner.finish()
    with runlane.Api(store_dir) as api:
        info = api.run(owner.id)
        assert info.status == "finished"
        assert {k: s.last_value for k, s in info.metrics.items()} == {"x": 1.0, "y": 2.0}
