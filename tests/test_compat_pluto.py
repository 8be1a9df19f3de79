"""runlane.compat.pluto: the Pluto pages' examples run with only the import line changed."""

from __future__ import annotations

from pathlib import Path

import pytest

import runlane
import runlane.compat.pluto as pluto

from .conftest import run_script

IMPORT = "import runlane.compat.pluto as pluto\n"

# The examples from reference/000 and reference/003, verbatim but for the import line.
START_EXAMPLE = (
    IMPORT
    + """
run = pluto.init(
    project="my-project",
    name="experiment-1",
    config={"lr": 1e-3, "batch_size": 32},
    tags=["baseline"],
)
"""
)
RESUME_EXAMPLE = (
    IMPORT
    + """
run = pluto.init(project="my-project", run_id="MMP-42", resume=True)
run.log({"eval/accuracy": 0.94}, step=10000)
run.finish()
"""
)
SIDE_PROCESS_EXAMPLE = (
    IMPORT
    + """
current_train_step = 777  # defined by the surrounding script on the page
# In a side process attaching to a still-running training job
run = pluto.init(project="my-project", run_id="MMP-42", resume=True)
run.log({"eval/loss": 0.32}, step=current_train_step)
run.close()  # local teardown only, run stays active on the server
"""
)
FORK_EXAMPLE = (
    IMPORT
    + """
run = pluto.init(
    project="my-project",
    name="lr-sweep-v2",
    fork_run_id="MMP-42",    # Display ID or numeric ID of the parent run
    fork_step=500,           # Step to fork at
    inherit_config=True,     # Inherit parent's config (default: True)
    inherit_tags=False,      # Inherit parent's tags (default: False)
    config={"lr": 0.001},    # Override specific config keys
)

# Check fork metadata
print(f"Forked from run {run.fork_run_id} at step {run.fork_step}")

# Continue training from the fork point
for step in range(500, 1000):
    run.log({"loss": 0.4, "lr": 0.001})

run.finish()
"""
)


def _run(code: str, store: Path) -> str:
    result = run_script(code, store)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def mmp42(store_dir: Path) -> Path:
    """my-project (key MMP) with 41 earlier runs, then the start example as MMP-42, trained 1,000 steps."""
    with runlane.Api(store_dir, create=True) as api:
        api.create_project("my-project", key="MMP")
    for _ in range(41):
        runlane.init(project="my-project", dir=store_dir).finish()
    _run(START_EXAMPLE + "for step in range(1000):\n    run.log({'loss': 1.0 - step / 1000})\n", store_dir)
    return store_dir


def test_start_example_creates_a_run_with_config_tags_and_display_id(mmp42: Path) -> None:
    with runlane.Api(mmp42) as api:
        run = api.run("MMP-42")
    assert run.name == "experiment-1"
    assert run.config == {"lr": 1e-3, "batch_size": 32}
    assert run.tags == ("baseline",)
    assert run.status == "finished"  # finish() fired by the exit hook
    assert run.metrics["loss"].count == 1000


def test_resume_example_reopens_logs_and_completes(mmp42: Path) -> None:
    _run(RESUME_EXAMPLE, mmp42)
    with runlane.Api(mmp42) as api:
        run = api.run("MMP-42")
        accuracy = api.history("MMP-42", "eval/accuracy")
    assert [(p.step, p.value) for p in accuracy] == [(10000, 0.94)]
    assert run.status == "finished"
    assert len(run.writers) == 2


def test_side_process_example_leaves_the_run_active(mmp42: Path) -> None:
    training = pluto.init(project="my-project", run_id="MMP-42", resume=True, dir=mmp42)
    _run(SIDE_PROCESS_EXAMPLE, mmp42)
    with runlane.Api(mmp42) as api:
        assert api.run("MMP-42").status == "running"
        assert [(p.step, p.value) for p in api.history("MMP-42", "eval/loss")] == [(777, 0.32)]
    training.finish()
    assert training.status == "COMPLETED"
    with runlane.Api(mmp42) as api:
        assert api.run("MMP-42").status == "finished"


def test_fork_example_inherits_config_and_continues_after_the_fork_step(mmp42: Path) -> None:
    out = _run(FORK_EXAMPLE, mmp42)
    with runlane.Api(mmp42) as api:
        parent = api.run("MMP-42")
        fork = api.runs(project="my-project")[0]
        stitched = api.history(fork.id, "loss", stitched=True)
    assert out.strip() == f"Forked from run {parent.id} at step 500"
    assert fork.name == "lr-sweep-v2"
    assert (fork.fork_run_id, fork.fork_step) == (parent.id, 500)
    assert fork.config == {"lr": 0.001, "batch_size": 32}
    assert fork.tags == ()
    assert fork.metrics["loss"].first_step == 501
    assert fork.metrics["loss"].last_step == 1000
    assert stitched.steps == list(range(1, 1001))  # Pluto's automatic steps start at 1
    assert set(stitched.run_ids[:500]) == {parent.id}
    assert set(stitched.run_ids[500:]) == {fork.id}


def test_statuses_use_pluto_names_and_fork_properties_are_read_only(store_dir: Path) -> None:
    run = pluto.init(project="p", dir=store_dir)
    assert run.status == "RUNNING"
    run.log({"x": 1.0})
    with pytest.raises(AttributeError):
        run.fork_run_id = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        run.fork_step = 3  # type: ignore[misc]
    run.finish()
    assert run.status == "COMPLETED"
    with pytest.raises(ValueError, match="fork_run_id and fork_step must be provided together"):
        pluto.init(project="p", fork_step=3, dir=store_dir)
    with pytest.raises(ZeroDivisionError), pluto.init(project="p", dir=store_dir) as failing:
        1 / 0  # noqa: B018
    assert failing.status == "FAILED"


def test_update_config_and_tags(store_dir: Path) -> None:
    run = pluto.init(project="p", config={"model": {"depth": 4}}, tags=["a"], dir=store_dir)
    run.update_config({"model": {"width": 8}})
    run.add_tags(["b", "c"])
    run.remove_tags(["a"])
    run.finish()
    with runlane.Api(store_dir) as api:
        stored = api.run(run.id)
    assert stored.config == {"model": {"depth": 4, "width": 8}}
    assert stored.tags == ("b", "c")


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        ("run.finish()", "finished"),
        ("run.close()", "running"),
        ("pass", "finished"),
        ("import sys; sys.exit(2)", "failed"),
    ],
)
def test_finish_close_and_the_exit_hook(store_dir: Path, ending: str, status: str) -> None:
    result = run_script(f'{IMPORT}run = pluto.init(project="hooks")\nrun.log({{"x": 1}})\n{ending}\n', store_dir)
    assert result.returncode in (0, 2), result.stderr
    with runlane.Api(store_dir) as api:
        assert api.runs(project="hooks")[0].status == status
