"""runlane.compat.pluto against upstream Pluto's own usage (its README, ``pluto.init`` docstring, tests and
multi-node worker), written here from those sources, read back through ``runlane.Api``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runlane
import runlane.compat.pluto as pluto

from .conftest import run_script, script_env

IMPORT = "import runlane.compat.pluto as pluto\n"


def _run(code: str, store: Path, **env: str) -> str:
    result = run_script(code, store, env=script_env(store, **env))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_readme_quickstart(store_dir: Path) -> None:
    _run(IMPORT + 'pluto.init(project="hello-world")\npluto.log({"e": 2.718})\npluto.finish()\n', store_dir)
    api = runlane.Api(store_dir)
    [run] = api.runs(project="hello-world")
    assert run.status == "finished"
    assert [(p.step, p.value) for p in api.history(run.id, "e")] == [(1, 2.718)]


def test_a_single_tag_string_is_one_tag(store_dir: Path) -> None:
    run = pluto.init(dir=store_dir, project="tags", name="t", tags="experiment")
    assert run.tags == ["experiment"]
    run.add_tags("experiment")
    run.add_tags(["experiment", "new-tag"])
    run.remove_tags("nonexistent")
    run.finish()
    assert runlane.Api(store_dir).run(run.id).tags == ("experiment", "new-tag")


def test_inside_a_konduktor_job_the_konduktor_tag_is_added(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KONDUKTOR_JOB_NAME", "my-job")
    run = pluto.init(dir=store_dir, project="tags", tags="experiment")
    run.finish()
    assert runlane.Api(store_dir).run(run.id).tags == ("experiment", "konduktor")


def test_automatic_steps_start_at_1_and_follow_an_explicit_step(store_dir: Path) -> None:
    # Upstream Op._log_via_sync: self._step = self._step + 1 if step is None else step, from 0.
    run = pluto.init(dir=store_dir, project="steps")
    run.log({"loss": 0.9})
    run.log({"loss": 0.8})
    run.log({"loss": 0.5}, step=10)
    run.log({"loss": 0.4})
    run.log({"warmup": 1.0}, step=-2)  # any int64 step, negative included
    run.log({"loss": 0.3})
    run.finish()
    api = runlane.Api(store_dir)
    assert [(p.step, p.value) for p in api.history(run.id, "loss")] == [
        (-1, 0.3),
        (1, 0.9),
        (2, 0.8),
        (10, 0.5),
        (11, 0.4),
    ]
    assert [p.step for p in api.history(run.id, "warmup")] == [-2]


def test_a_resumed_run_and_a_fork_continue_their_steps(store_dir: Path) -> None:
    first = pluto.init(dir=store_dir, project="steps")
    for _ in range(5):
        first.log({"x": 1.0})
    first.finish()
    again = pluto.init(dir=store_dir, project="steps", run_id=first.id, resume=True)
    again.log({"x": 2.0})
    again.finish()
    fork = pluto.init(dir=store_dir, project="steps", fork_run_id=first.id, fork_step=3)
    fork.log({"x": 3.0})
    fork.finish()
    api = runlane.Api(store_dir)
    assert [p.step for p in api.history(first.id, "x")] == [1, 2, 3, 4, 5, 6]
    assert [(p.step, p.run_id) for p in api.history(fork.id, "x", stitched=True)][-2:] == [(3, first.id), (4, fork.id)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fork_run_id": 12345}, "fork_run_id and fork_step must be provided together"),
        ({"fork_step": 500}, "fork_run_id and fork_step must be provided together"),
        (
            {"fork_run_id": "not-a-run", "fork_step": 5},
            r'fork_run_id must be a numeric run ID or display ID \(e.g. "T0-123"\)',
        ),
        ({"fork_run_id": 1.5, "fork_step": 5}, "fork_run_id must be a numeric run ID or display ID"),
    ],
)
def test_fork_argument_errors_use_plutos_wording(store_dir: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pluto.init(dir=store_dir, project="forks", name="f", **kwargs)  # type: ignore[arg-type]
    assert not store_dir.exists()


def test_module_level_log_and_finish_act_on_the_current_run(store_dir: Path) -> None:
    out = _run(
        IMPORT
        + """
try:
    pluto.log({"loss": 1.0})
except RuntimeError as exc:
    print("before init:", exc)
run = pluto.init(project="module", name="experiment-1")
for step in range(3):
    pluto.log({"loss": 0.5 / (step + 1)})
pluto.finish()
print(run.status, pluto.ops)
""",
        store_dir,
    )
    assert out.splitlines() == ["before init: pluto.log() needs a run: call pluto.init() first", "COMPLETED []"]
    api = runlane.Api(store_dir)
    [stored] = api.runs(project="module")
    assert stored.status == "finished"
    assert [(p.step, p.value) for p in api.history(stored.id, "loss")] == [(1, 0.5), (2, 0.25), (3, 0.5 / 3)]


def test_finish_with_no_argument_finishes_every_open_run(store_dir: Path) -> None:
    a = pluto.init(dir=store_dir, project="module")
    b = pluto.init(dir=store_dir, project="module")
    pluto.log({"x": 1.0})  # the latest run
    pluto.finish()
    assert (a.status, b.status) == ("COMPLETED", "COMPLETED")
    api = runlane.Api(store_dir)
    assert api.history(a.id, "x") == []
    assert [p.step for p in api.history(b.id, "x")] == [1]
    with pytest.raises(RuntimeError, match=r"call pluto\.init"):
        pluto.log({"x": 2.0})


WORKER = (
    IMPORT
    + """
import json, os, sys
rank = int(os.environ["RANK"])
run = pluto.init(
    project="ddp",
    name=f"ddp-training",
    run_id=os.environ.get("PLUTO_RUN_ID"),
    config={"rank": rank, "num_nodes": 3},
)
print("ready", flush=True)
sys.stdin.readline()  # every rank has initialised before any logs: the run is shared while all are open
for step in range(5):
    run.log({f"loss/rank{rank}": 1.0 - step * 0.1 - rank * 0.01})
print(json.dumps({"id": run.id, "run_id": run.run_id, "resumed": run.resumed}))
run.finish()
"""
)


def test_multi_node_ranks_sharing_an_external_run_id_log_to_one_run(store_dir: Path, tmp_path: Path) -> None:
    runlane.Api(store_dir, create=True).close()
    workers = []
    for rank in range(3):
        env = script_env(store_dir, RANK=str(rank), PLUTO_RUN_ID="ddp-experiment-20240101")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for worker in workers:  # a barrier, as a distributed job's first collective would be
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n", worker.communicate(timeout=60)[1]
    outputs = []
    for worker in workers:
        out, err = worker.communicate("\n", timeout=120)
        assert worker.returncode == 0, err
        outputs.append(json.loads(out))
    assert len({o["id"] for o in outputs}) == 1
    assert {o["run_id"] for o in outputs} == {"ddp-experiment-20240101"}
    assert sorted(o["resumed"] for o in outputs) == [False, True, True]
    api = runlane.Api(store_dir)
    [run] = api.runs(project="ddp")
    assert run.uid == "ddp-experiment-20240101"
    assert api.run("ddp-experiment-20240101").id == run.id
    assert run.name == "ddp-training"
    assert run.status == "finished"
    assert sorted(run.metrics) == ["loss/rank0", "loss/rank1", "loss/rank2"]
    for rank in range(3):
        assert [p.step for p in api.history(run.id, f"loss/rank{rank}")] == [1, 2, 3, 4, 5]
    assert len(run.writers) == 3


def test_reusing_an_external_id_without_resume_is_refused_as_upstream(store_dir: Path) -> None:
    first = pluto.init(dir=store_dir, project="ext", run_id="my-run", config={"lr": 0.1})
    assert (first.run_id, first.resumed) == ("my-run", False)
    for _ in range(3):
        first.log({"rank0": 1.0})
    with pytest.raises(pluto.RunExistsError, match="Run with externalId 'my-run' already exists"):
        pluto.init(dir=store_dir, project="ext", run_id="my-run")
    again = pluto.init(dir=store_dir, project="ext", name="ignored", run_id="my-run", resume=True)
    assert (again.id, again.resumed, again.name) == (first.id, True, None)
    again.log({"rank1": 1.0})  # a peer counts its own steps from 1, like the first rank did
    again.close()
    first.finish()
    api = runlane.Api(store_dir)
    assert api.run("my-run").config == {"lr": 0.1}
    assert [p.step for p in api.history(first.id, "rank1")] == [1]


def test_display_and_numeric_run_ids_resume_without_resume_true(store_dir: Path) -> None:
    first = pluto.init(dir=store_dir, project="res")
    first.log({"x": 1.0})
    first.finish()
    by_display = pluto.init(dir=store_dir, project="res", run_id=first.display_id)
    assert by_display.resumed
    assert by_display.id == first.id
    by_display.finish()
    by_number = pluto.init(dir=store_dir, run_id=str(first.id))
    assert by_number.id == first.id
    by_number.finish()


def test_images_in_log_are_stored_as_runlane_images(store_dir: Path, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    png = tmp_path / "sample.png"
    PILImage.new("RGB", (5, 4), (0, 128, 255)).save(png)
    run = pluto.init(dir=store_dir, project="media")
    noise = np.random.default_rng(0).integers(low=0, high=256, size=(10, 12, 3))
    run.log(
        {
            "loss": 0.5,
            "samples/array": pluto.Image(noise, caption="noise"),
            "samples/pil": pluto.Image(PILImage.new("RGB", (7, 3), (255, 0, 0))),
            "samples/file": pluto.Image(str(png), caption="from disk"),
            "samples/bytes": pluto.Image(png.read_bytes()),
            "grid": [pluto.Image(np.zeros((2, 2))), pluto.Image(np.ones((2, 2)))],
        }
    )
    run.log({"samples/array": pluto.Image(np.linspace(-1.0, 1.0, 12).reshape(3, 4))}, step=7)
    run.finish()
    api = runlane.Api(store_dir)
    images = api.images(run.id)
    found = {(i.key, i.step, i.caption, i.width, i.height) for i in images}
    assert found == {
        ("samples/array", 1, "noise", 12, 10),
        ("samples/pil", 1, None, 7, 3),
        ("samples/file", 1, "from disk", 5, 4),
        ("samples/bytes", 1, None, 5, 4),
        ("grid", 1, None, 2, 2),
        ("samples/array", 7, None, 4, 3),
    }
    assert len(images) == 7  # both images of the list
    assert [p.step for p in api.history(run.id, "loss")] == [1]
    grid = [api.open_image(i) for i in images if i.key == "grid"]
    assert sorted(np.asarray(g).max() for g in grid) == [0, 255]  # values up to 1 are scaled by 255
    scaled = np.asarray(api.open_image(next(i for i in images if i.step == 7)))
    assert (scaled.min(), scaled.max()) == (0, 255)  # negative values: min-max scaled
    assert np.array_equal(np.asarray(api.open_image(next(i for i in images if i.caption == "noise"))), noise)


def test_a_matplotlib_figure_and_a_torch_tensor_are_images(store_dir: Path) -> None:
    import matplotlib
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1), dpi=50)
    ax.imshow(np.random.default_rng(1).random((8, 8)))
    run = pluto.init(dir=store_dir, project="media")
    run.log({"figure": pluto.Image(fig), "tensor": pluto.Image(torch.linspace(-3, 3, 3 * 4 * 5).reshape(3, 4, 5))})
    plt.close(fig)
    with pytest.raises(ValueError, match="not a batch"):
        pluto.Image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(TypeError, match=r"pluto\.Image takes"):
        pluto.Image({"not": "an image"})
    with pytest.raises(TypeError, match="metric 'phase': str 'warmup' is not a number"):
        run.log({"phase": "warmup"})
    run.finish()
    api = runlane.Api(store_dir)
    found = {i.key: i for i in api.images(run.id)}
    assert (found["figure"].width, found["figure"].height) == (50, 50)
    assert (found["tensor"].width, found["tensor"].height) == (5, 4)
    pixels = np.asarray(api.open_image(found["tensor"]))
    assert (pixels.min(), pixels.max()) == (0, 255)
