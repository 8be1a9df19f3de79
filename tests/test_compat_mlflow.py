"""runlane.compat.mlflow: MLflow's fluent run management with MLflow's semantics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runlane
import runlane.compat.mlflow as mlflow

from .conftest import run_script, script_env


@pytest.fixture(autouse=True)
def tracking(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store_dir))
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    yield store_dir
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow._active_experiment_id = None
    mlflow._tracking_uri = None
    mlflow._state.last_run_id = None


def test_start_log_end_and_read_back(store_dir: Path) -> None:
    run = mlflow.start_run(run_name="baseline", tags={"team": "vision"}, description="first try")
    assert mlflow.active_run() is run
    assert run.info.status == "RUNNING"
    assert len(run.info.run_id) == 32
    mlflow.log_param("lr", 0.01)
    mlflow.log_params({"batch": 32, "optimizer": "adam"})
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
    mlflow.set_tag("team", "nlp")
    mlflow.set_tags({"stage": "dev"})
    mlflow.end_run()
    assert mlflow.active_run() is None
    stored = mlflow.get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "baseline"
    assert stored.info.end_time is not None
    assert stored.info.end_time >= stored.info.start_time
    assert stored.data.params == {"lr": "0.01", "batch": "32", "optimizer": "adam"}
    assert stored.data.metrics == {"loss": 1.0 / 3, "acc": 0.9, "f1": 0.8}
    assert stored.data.tags == {
        "team": "nlp",
        "stage": "dev",
        "mlflow.runName": "baseline",
        "mlflow.note.content": "first try",
    }
    assert mlflow.get_experiment(stored.info.experiment_id).name == "Default"
    assert stored.info.experiment_id == "0"
    with runlane.Api(store_dir) as api:
        native = api.run(run.info.run_id)
        assert native.project == "Default"
        assert native.tags == ("team=nlp", "stage=dev")
        assert [p.step for p in api.history(native.id, "loss")] == [0, 1, 2]


def test_changing_a_logged_param_is_an_error() -> None:
    with mlflow.start_run():
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("lr", "0.1")  # the same value again is fine
        with pytest.raises(mlflow.MlflowException, match="Changing param values is not allowed"):
            mlflow.log_param("lr", 0.2)


def test_with_block_ends_finished_or_failed() -> None:
    with mlflow.start_run() as ok:
        mlflow.log_metric("x", 1.0)
    with pytest.raises(RuntimeError), mlflow.start_run() as bad:
        raise RuntimeError("boom")
    assert mlflow.get_run(ok.info.run_id).info.status == "FINISHED"
    assert mlflow.get_run(bad.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_starting_a_run_while_one_is_active_needs_nested() -> None:
    outer = mlflow.start_run()
    with pytest.raises(mlflow.MlflowException, match=f"Run with UUID {outer.info.run_id} is already active"):
        mlflow.start_run()
    assert mlflow.active_run() is outer


def test_nested_runs_record_their_parent(store_dir: Path) -> None:
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run() is child
            with mlflow.start_run(run_name="grandchild", nested=True) as grandchild:
                pass
        assert mlflow.active_run() is parent
    tags = mlflow.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert mlflow.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child.info.run_id
    assert "mlflow.parentRunId" not in mlflow.get_run(parent.info.run_id).data.tags
    with runlane.Api(store_dir) as api:
        assert api.run(child.info.run_id).parent_run_id == api.run(parent.info.run_id).id


def test_explicit_parent_run_id_must_match_the_active_run_and_may_be_finished() -> None:
    parent = mlflow.start_run()
    child = mlflow.start_run(nested=True, parent_run_id=parent.info.run_id)
    mlflow.end_run()
    with pytest.raises(mlflow.MlflowException, match="does not match the specified parent_run_id"):
        mlflow.start_run(nested=True, parent_run_id=child.info.run_id)
    mlflow.end_run()
    assert mlflow.get_run(parent.info.run_id).info.status == "FINISHED"
    # MLflow refuses only a deleted parent: a finished one takes more children (a sweep's summary runs).
    with mlflow.start_run(parent_run_id=parent.info.run_id) as late:
        pass
    assert mlflow.get_run(late.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    mlflow.delete_run(parent.info.run_id)
    with pytest.raises(mlflow.MlflowException, match="deleted state"):
        mlflow.start_run(parent_run_id=parent.info.run_id)


def test_active_run_is_per_thread_and_last_active_run_follows_end_run() -> None:
    run = mlflow.start_run()
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(mlflow.active_run()))
    worker.start()
    worker.join()
    assert seen == [None]
    assert mlflow.last_active_run() is run
    mlflow.end_run()
    last = mlflow.last_active_run()
    assert last is not None
    assert last.info.run_id == run.info.run_id
    assert last.info.status == "FINISHED"


def test_threads_keep_their_own_stacks() -> None:
    results: dict[str, str] = {}

    def work(name: str) -> None:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_metric("x", 1.0)
            results[name] = run.info.run_id

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 4
    for name, run_id in results.items():
        stored = mlflow.get_run(run_id)
        assert (stored.info.run_name, stored.info.status) == (name, "FINISHED")


def test_end_run_statuses_and_an_invalid_one() -> None:
    for status in ("FAILED", "KILLED", "SCHEDULED", "RUNNING", "finished"):
        run = mlflow.start_run()
        mlflow.end_run(status=status)
        assert mlflow.get_run(run.info.run_id).info.status == status.upper()
    run = mlflow.start_run()
    with pytest.raises(mlflow.MlflowException, match="Invalid run status 'DONE'"):
        mlflow.end_run(status="DONE")
    assert mlflow.active_run() is run
    assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"


def test_start_run_with_run_id_resumes() -> None:
    with mlflow.start_run() as first:
        mlflow.log_metric("loss", 0.5, step=0)
    resumed = mlflow.start_run(run_id=first.info.run_id, tags={"resumed": "yes"})
    assert resumed.info.run_id == first.info.run_id
    assert resumed.info.status == "RUNNING"
    mlflow.log_metric("loss", 0.25)
    mlflow.end_run()
    stored = mlflow.get_run(first.info.run_id)
    assert stored.data.metrics["loss"] == 0.25
    assert stored.data.tags["resumed"] == "yes"
    with pytest.raises(mlflow.MlflowException, match="together with run_id"):
        mlflow.start_run(run_id=first.info.run_id, experiment_id="0")
    with pytest.raises(mlflow.MlflowException, match="not found") as unknown:
        mlflow.start_run(run_id="f" * 32)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_experiments_create_get_and_set() -> None:
    experiment_id = mlflow.create_experiment("vision")
    assert mlflow.get_experiment(experiment_id).name == "vision"
    found = mlflow.get_experiment_by_name("vision")
    assert found is not None
    assert found.experiment_id == experiment_id
    assert mlflow.get_experiment_by_name("nope") is None
    with pytest.raises(mlflow.MlflowException, match="already exists"):
        mlflow.create_experiment("vision")
    with pytest.raises(mlflow.MlflowException, match="No Experiment with id=999"):
        mlflow.get_experiment("999")
    created = mlflow.set_experiment("audio")  # created when missing
    assert mlflow.get_experiment_by_name("audio") == created
    with pytest.raises(mlflow.MlflowException, match="does not exist"):
        mlflow.set_experiment(experiment_id="999")
    with pytest.raises(mlflow.MlflowException, match="exactly one"):
        mlflow.set_experiment()


def _experiment_of(run: mlflow.ActiveRun) -> str:
    return mlflow.get_experiment(run.info.experiment_id).name


def test_experiment_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = mlflow.create_experiment("explicit")
    by_env_id = mlflow.create_experiment("by-env-id")
    # 5. nothing set: the Default experiment
    with mlflow.start_run() as run:
        assert _experiment_of(run) == "Default"
    # 4. MLFLOW_EXPERIMENT_ID, which must exist
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", by_env_id)
    with mlflow.start_run() as run:
        assert _experiment_of(run) == "by-env-id"
    # 3. MLFLOW_EXPERIMENT_NAME beats it, and is created when missing
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "by-env-name")
    with mlflow.start_run() as run:
        assert _experiment_of(run) == "by-env-name"
    # 2. set_experiment beats the environment
    mlflow.set_experiment("chosen")
    with mlflow.start_run() as run:
        assert _experiment_of(run) == "chosen"
    # 1. start_run(experiment_id) beats everything
    with mlflow.start_run(experiment_id=explicit) as run:
        assert _experiment_of(run) == "explicit"


def test_an_unknown_experiment_id_from_the_environment_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "424242")
    with pytest.raises(mlflow.MlflowException, match="MLFLOW_EXPERIMENT_ID=424242"):
        mlflow.start_run()
    with pytest.raises(mlflow.MlflowException, match="does not exist"):
        mlflow.start_run(experiment_id="424242")
    assert mlflow.active_run() is None


def test_logging_without_an_active_run_starts_one() -> None:
    mlflow.log_metric("x", 1.0)
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).data.metrics == {"x": 1.0}


def test_tracking_uri_must_be_local(tmp_path: Path) -> None:
    mlflow.set_tracking_uri(f"file://{tmp_path / 'elsewhere'}")
    with mlflow.start_run() as run:
        pass
    assert (tmp_path / "elsewhere" / "runlane.db").exists()
    assert mlflow.get_tracking_uri() == f"file://{tmp_path / 'elsewhere'}"
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
    with pytest.raises(mlflow.MlflowException, match="local directory"):
        mlflow.set_tracking_uri("http://localhost:5000")


@pytest.mark.parametrize(
    ("body", "statuses"),
    [
        ("raise ValueError('crash')", {"outer": "FAILED", "inner": "FAILED"}),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", {"outer": "KILLED", "inner": "KILLED"}),
        ("pass", {"outer": "FINISHED", "inner": "FINISHED"}),
    ],
    ids=["crash", "sigterm", "normal-exit"],
)
def test_where_mlflow_is_wrong_runlane_lifecycle_rules_apply(
    store_dir: Path, body: str, statuses: dict[str, str]
) -> None:
    code = f"""
        import runlane.compat.mlflow as mlflow
        outer = mlflow.start_run(run_name="outer")
        inner = mlflow.start_run(run_name="inner", nested=True)
        mlflow.log_metric("x", 1.0)
        print(outer.info.run_id, inner.info.run_id, flush=True)
        {body}
    """
    result = run_script(code, store_dir, env=script_env(store_dir, MLFLOW_TRACKING_URI=str(store_dir)))
    outer_id, inner_id = result.stdout.split()
    assert mlflow.get_run(outer_id).info.status == statuses["outer"]
    assert mlflow.get_run(inner_id).info.status == statuses["inner"]


def test_system_metrics_only_when_asked(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with mlflow.start_run() as quiet:
        pass
    with mlflow.start_run(log_system_metrics=True) as sampled:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the first sample comes within a second of the start
            with runlane.Api(store_dir) as api:
                if api.system_metrics(sampled.info.run_id):
                    break
            time.sleep(0.2)
    with runlane.Api(store_dir) as api:
        assert api.system_metrics(quiet.info.run_id) == {}
        assert "sys/cpu_percent" in api.system_metrics(sampled.info.run_id)
