"""runlane.compat.mlflow runs code written the way MLflow's docs, docstrings and tests/tracking/fluent write it.

Each test is upstream-style usage (written from MLflow's documentation, with only the import changed) and
reads the result back through MLflow's own read calls and through ``runlane.Api``.
"""

from __future__ import annotations

import datetime
import enum
import os
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
    for name in (
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
        "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
    ):
        monkeypatch.delenv(name, raising=False)
    yield store_dir
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow._active_experiment_id = None
    mlflow._tracking_uri = None
    mlflow._state.last_run_id = None


# -- what was wrong ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Social NLP Experiments", "/Users/me/exp", "Exp\u00e9rience \u5b9e\u9a8c \u03b1"])
def test_experiment_names_are_free_text_and_round_trip_exactly(store_dir: Path, name: str) -> None:
    experiment_id = mlflow.create_experiment(name)
    assert mlflow.get_experiment(experiment_id).name == name
    found = mlflow.get_experiment_by_name(name)
    assert found is not None
    assert found.experiment_id == experiment_id
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    assert mlflow.get_experiment(mlflow.get_run(run.info.run_id).info.experiment_id).name == name
    with runlane.Api(store_dir) as api:
        assert api.run(run.info.run_id).project == name


def test_negative_steps_are_stored(store_dir: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("warmup", 0.5, step=-10)
        mlflow.log_metric("warmup", 0.7, step=0)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "warmup")
    assert [(m.step, m.value) for m in history] == [(-10, 0.5), (0, 0.7)]
    with runlane.Api(store_dir) as api:
        assert [p.step for p in api.history(run.info.run_id, "warmup")] == [-10, 0]


def test_get_run_of_the_active_run_reads_its_own_writes() -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_metric("loss", 0.5, step=3)
        mlflow.set_tag("team", "vision")
        now = mlflow.get_run(run.info.run_id)
        assert now.data.params == {"lr": "0.01"}
        assert now.data.metrics == {"loss": 0.5}
        assert now.data.tags["team"] == "vision"
        assert now.info.status == "RUNNING"
    resumed = mlflow.start_run(run_id=run.info.run_id, tags={"resumed": "yes"})
    assert mlflow.get_run(resumed.info.run_id).data.tags["resumed"] == "yes"
    mlflow.end_run()


class Opt(enum.Enum):
    ADAM = "adam"


def test_log_param_stores_str_of_the_value_and_compares_that_string() -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("input_shape", (3, 224, 224))
        mlflow.log_param("input_shape", (3, 224, 224))  # the same value again: fine, as in MLflow
        mlflow.log_param("date", datetime.date(2024, 1, 1))
        mlflow.log_param("optimizer", Opt.ADAM)
        mlflow.log_params({"layers": [64, 64], "dropout": None})
        with pytest.raises(mlflow.MlflowException, match="Changing param values is not allowed"):
            mlflow.log_param("input_shape", (1, 28, 28))
    params = mlflow.get_run(run.info.run_id).data.params
    assert params == {
        "input_shape": "(3, 224, 224)",
        "date": "2024-01-01",
        "optimizer": "Opt.ADAM",
        "layers": "[64, 64]",
        "dropout": "None",
    }


def test_description_and_a_note_tag_together_are_refused() -> None:
    with pytest.raises(mlflow.MlflowException, match=r"Description is already set via the tag mlflow\.note\.content"):
        mlflow.start_run(description="mine", tags={"mlflow.note.content": "theirs"})
    assert mlflow.active_run() is None
    with mlflow.start_run(tags={"mlflow.note.content": "from a tag"}) as run:
        pass
    assert mlflow.get_run(run.info.run_id).data.tags["mlflow.note.content"] == "from a tag"


@pytest.mark.parametrize("bad", [1.5, ["0"], "not-a-number"])
def test_an_invalid_experiment_id_is_mlflows_invalid_id_error(bad: object) -> None:
    with pytest.raises(mlflow.MlflowException, match=r"Invalid experiment (id|ID)") as caught:
        mlflow.start_run(experiment_id=bad)  # type: ignore[arg-type]
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert mlflow.active_run() is None


def test_an_int_experiment_id_is_accepted_as_mlflow_does() -> None:
    experiment_id = mlflow.create_experiment("by-int")
    with mlflow.start_run(experiment_id=int(experiment_id)) as run:  # type: ignore[arg-type]
        pass
    assert run.info.experiment_id == experiment_id


def test_leaving_a_with_block_ends_the_run_by_id() -> None:
    # A tool that ends the run and starts it again with the same id (MLflow's AutoML case): the block
    # still ends it.
    with mlflow.start_run() as run:
        mlflow.end_run()
        mlflow.start_run(run_id=run.info.run_id)
    assert mlflow.active_run() is None
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_forked_child_does_not_see_the_parents_active_run(store_dir: Path) -> None:
    code = """
        import os
        import runlane.compat.mlflow as mlflow
        run = mlflow.start_run()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if mlflow.active_run() is None else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), mlflow.active_run() is run, flush=True)
        mlflow.end_run()
    """
    result = run_script(code, store_dir, env=script_env(store_dir, MLFLOW_TRACKING_URI=str(store_dir)))
    assert result.stdout.split() == ["0", "True"]


def test_set_tracking_uri_is_exported_to_subprocesses(tmp_path: Path, store_dir: Path) -> None:
    target = tmp_path / "elsewhere"
    mlflow.set_tracking_uri(str(target))
    assert os.environ["MLFLOW_TRACKING_URI"] == str(target)
    code = """
        import runlane.compat.mlflow as mlflow
        with mlflow.start_run() as run:
            pass
        print(run.info.run_id)
    """
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    result = run_script(code, store_dir, env=env)
    assert mlflow.get_run(result.stdout.strip()).info.status == "FINISHED"
    assert (target / "runlane.db").exists()


def test_create_experiment_keeps_tags_and_artifact_location() -> None:
    experiment_id = mlflow.create_experiment(
        "tagged", artifact_location="s3://bucket/tagged", tags={"team": "nlp", "priority": 1}
    )
    experiment = mlflow.get_experiment(experiment_id)
    assert experiment.tags == {"team": "nlp", "priority": "1"}
    assert experiment.artifact_location == "s3://bucket/tagged"
    with mlflow.start_run(experiment_id=experiment_id) as run:
        pass
    assert mlflow.get_run(run.info.run_id).info.artifact_uri == f"s3://bucket/tagged/{run.info.run_id}/artifacts"
    (found,) = mlflow.search_runs([experiment_id], output_format="list")
    assert found.info.artifact_uri == f"s3://bucket/tagged/{run.info.run_id}/artifacts"


def test_the_default_experiment_exists_on_a_fresh_store() -> None:
    default = mlflow.get_experiment("0")
    assert (default.name, default.lifecycle_stage) == ("Default", "active")
    assert mlflow.get_experiment_by_name("Default") == default
    assert [e.experiment_id for e in mlflow.search_experiments()] == ["0"]


def test_system_metrics_show_in_get_run() -> None:
    with mlflow.start_run(log_system_metrics=True) as run:
        deadline = time.monotonic() + 30
        metrics: dict[str, float] = {}
        while time.monotonic() < deadline and "system/cpu_utilization_percentage" not in metrics:
            metrics = mlflow.get_run(run.info.run_id).data.metrics
            time.sleep(0.1)
    assert "system/cpu_utilization_percentage" in metrics
    assert "system/system_memory_usage_megabytes" in mlflow.get_run(run.info.run_id).data.metrics


# -- the APIs users hit first -----------------------------------------------------------------------


def _sweep() -> list[str]:
    ids = []
    for index, (model, lr) in enumerate([("tree", 0.1), ("tree", 0.01), ("linear", 0.1), ("forest", 0.5)]):
        with mlflow.start_run(run_name=f"run-{index}", tags={"family": model[:3]}) as run:
            mlflow.log_params({"model": model, "lr": lr})
            mlflow.log_metric("rmse", 1.0 - index * 0.2, step=0)
            if index != 3:
                mlflow.log_metric("r2", index * 0.1)
        ids.append(run.info.run_id)
    mlflow.end_run()
    return ids


def test_search_runs_filters_orders_and_limits() -> None:
    ids = _sweep()

    def names(**kwargs: object) -> list[str]:
        return [run.info.run_name for run in mlflow.search_runs(output_format="list", **kwargs)]  # type: ignore[arg-type]

    assert names() == ["run-3", "run-2", "run-1", "run-0"]  # newest first
    assert names(filter_string="metrics.rmse < 0.7") == ["run-3", "run-2"]
    assert names(filter_string="params.model = 'tree' and metrics.rmse > 0.7") == ["run-1", "run-0"]
    assert names(filter_string="params.model LIKE '%re%'") == ["run-3", "run-1", "run-0"]
    assert names(filter_string="tags.family = 'lin'") == ["run-2"]
    assert names(filter_string="tags.`mlflow.runName` ILIKE 'RUN-1'") == ["run-1"]
    assert names(filter_string="attributes.status = 'FINISHED' AND attributes.run_name != 'run-0'") == [
        "run-3",
        "run-2",
        "run-1",
    ]
    assert names(filter_string=f"attributes.run_id IN ('{ids[0]}', '{ids[2]}')") == ["run-2", "run-0"]
    assert names(filter_string="metrics.r2 >= 0") == ["run-2", "run-1", "run-0"]  # run-3 has no r2
    assert names(order_by=["metrics.r2 DESC"]) == ["run-2", "run-1", "run-0", "run-3"]  # missing last
    assert names(order_by=["params.model ASC", "metrics.rmse ASC"]) == ["run-3", "run-2", "run-1", "run-0"]
    assert names(max_results=2, order_by=["attributes.start_time ASC"]) == ["run-0", "run-1"]
    with pytest.raises(mlflow.MlflowException, match="Invalid attribute key 'colour'") as bad:
        mlflow.search_runs(filter_string="attributes.colour = 'red'")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(mlflow.MlflowException, match="no OR"):
        mlflow.search_runs(filter_string="metrics.rmse < 1 OR metrics.rmse > 2")


def test_search_runs_as_a_pandas_frame() -> None:
    _sweep()
    frame = mlflow.search_runs(filter_string="params.model = 'tree'", order_by=["metrics.rmse ASC"])
    assert list(frame["tags.mlflow.runName"]) == ["run-1", "run-0"]
    assert list(frame["params.lr"]) == ["0.01", "0.1"]
    assert list(frame["metrics.rmse"]) == pytest.approx([0.8, 1.0])
    assert frame["start_time"].dt.tz is not None
    assert {"run_id", "experiment_id", "status", "artifact_uri", "end_time"} <= set(frame.columns)


def test_search_experiments_by_name_and_tag() -> None:
    mlflow.create_experiment("cv/resnet", tags={"team": "vision"})
    mlflow.create_experiment("cv/vit", tags={"team": "vision"})
    mlflow.create_experiment("nlp/bert", tags={"team": "text"})
    found = mlflow.search_experiments(filter_string="name LIKE 'cv/%'", order_by=["name DESC"])
    assert [e.name for e in found] == ["cv/vit", "cv/resnet"]
    assert [e.name for e in mlflow.search_experiments(filter_string="tags.team = 'text'")] == ["nlp/bert"]
    experiment = mlflow.get_experiment_by_name("cv/vit")
    assert experiment is not None
    assert experiment.creation_time is not None
    assert experiment.last_update_time is not None
    assert experiment.last_update_time >= experiment.creation_time


def test_mlflow_client_over_any_run(store_dir: Path) -> None:
    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("client-made")
    assert client.get_experiment(experiment_id).name == "client-made"
    experiment = client.get_experiment_by_name("client-made")
    assert experiment is not None
    run = client.create_run(experiment_id, run_name="by-client", tags={"source": "client"})
    run_id = run.info.run_id
    client.log_param(run_id, "alpha", 0.5)
    client.log_metric(run_id, "loss", 0.9, step=1, timestamp=1_700_000_000_000)
    client.log_metric(run_id, "loss", 0.4, step=2, synchronous=False)
    client.log_batch(
        run_id,
        metrics=[mlflow.Metric("acc", 0.8, 1_700_000_000_500, 2)],
        params=[mlflow.Param("beta", "2")],
        tags=[mlflow.RunTag("stage", "dev")],
    )
    client.set_tag(run_id, "temporary", "x")
    client.delete_tag(run_id, "temporary")
    with pytest.raises(mlflow.MlflowException, match="No tag with name: temporary"):
        client.delete_tag(run_id, "temporary")
    with pytest.raises(mlflow.MlflowException, match="Changing param values is not allowed"):
        client.log_param(run_id, "alpha", 0.6)
    client.set_terminated(run_id, "KILLED")
    stored = client.get_run(run_id)
    assert stored.info.status == "KILLED"
    assert stored.info.end_time is not None
    assert stored.data.params == {"alpha": "0.5", "beta": "2"}
    assert stored.data.metrics == {"loss": 0.4, "acc": 0.8}
    assert stored.data.tags == {"source": "client", "stage": "dev", "mlflow.runName": "by-client"}
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.9), (2, 0.4)]
    assert history[0].timestamp == 1_700_000_000_000
    page = client.search_runs([experiment_id], "params.alpha = '0.5'", max_results=1)
    assert [r.info.run_id for r in page] == [run_id]
    assert page.token is None
    client.delete_run(run_id)
    assert client.search_runs([experiment_id]) == []
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=mlflow.ViewType.ALL)] == [run_id]
    client.restore_run(run_id)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]
    with runlane.Api(store_dir) as api:
        native = api.run(run_id)
        assert (native.project, native.name, native.status) == ("client-made", "by-client", "killed")
        assert native.config == {"alpha": "0.5", "beta": "2"}
        assert [p.value for p in api.history(run_id, "loss")] == [0.9, 0.4]


def test_client_search_runs_pages_with_tokens() -> None:
    client = mlflow.MlflowClient()
    for index in range(5):
        client.create_run("0", run_name=f"r{index}")
    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs(["0"], max_results=2, order_by=["attributes.run_name"], page_token=token)
        seen += [run.info.run_name for run in page]
        token = page.token
        if token is None:
            break
    assert seen == ["r0", "r1", "r2", "r3", "r4"]
    with pytest.raises(mlflow.MlflowException, match="Invalid page token"):
        client.search_runs(["0"], page_token="not a token")


def test_the_client_sees_runs_logged_by_the_runlane_sdk(store_dir: Path) -> None:
    native = runlane.init(
        project="Default", name="sdk-run", config={"optim": {"lr": 0.1}}, tags=["sweep", "k=v"], dir=store_dir
    )
    assert isinstance(native, runlane.Run)
    native.log({"loss": 0.5})
    native.finish()
    stored = mlflow.MlflowClient().get_run(native.uid)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"optim/lr": "0.1"}
    assert stored.data.tags == {"sweep": "", "k": "v", "mlflow.runName": "sdk-run"}
    mlflow.MlflowClient().set_tag(native.uid, "reviewed", "yes")  # and may write to it
    with runlane.Api(store_dir) as api:
        assert "reviewed=yes" in api.run(native.uid).tags


def test_get_parent_run_delete_tag_and_experiment_tags() -> None:
    mlflow.set_experiment("tagged-exp")
    mlflow.set_experiment_tag("owner", "me")
    mlflow.set_experiment_tags({"a": 1, "b": "two"})
    experiment = mlflow.get_experiment_by_name("tagged-exp")
    assert experiment is not None
    assert experiment.tags == {"owner": "me", "a": "1", "b": "two"}
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        mlflow.set_tag("scratch", "1", synchronous=False)
        mlflow.delete_tag("scratch")
        with pytest.raises(mlflow.MlflowException, match="No tag with name: scratch"):
            mlflow.delete_tag("scratch")
    found = mlflow.get_parent_run(child.info.run_id)
    assert found is not None
    assert found.info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None
    assert "scratch" not in mlflow.get_run(child.info.run_id).data.tags


def test_synchronous_is_accepted_on_every_log_and_tag_call() -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1, synchronous=True)
        mlflow.log_params({"q": 2}, synchronous=False)
        mlflow.log_metric("m", 1.0, synchronous=False)
        mlflow.log_metrics({"n": 2.0}, synchronous=True)
        mlflow.set_tag("t", "x", synchronous=False)
        mlflow.set_tags({"u": "y"}, synchronous=True)
    data = mlflow.get_run(run.info.run_id).data
    assert (data.params, data.metrics) == ({"p": "1", "q": "2"}, {"m": 1.0, "n": 2.0})


def test_enable_system_metrics_logging_and_run_status_helpers(store_dir: Path) -> None:
    mlflow.enable_system_metrics_logging()
    try:
        with mlflow.start_run() as run:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with runlane.Api(store_dir) as api:
                    if api.system_metrics(run.info.run_id):
                        break
                time.sleep(0.1)
    finally:
        mlflow.disable_system_metrics_logging()
    with runlane.Api(store_dir) as api:
        assert "sys/cpu_percent" in api.system_metrics(run.info.run_id)
    assert mlflow.RunStatus.to_string(mlflow.RunStatus.from_string("FINISHED")) == "FINISHED"
    assert mlflow.RunStatus.is_terminated(mlflow.RunStatus.from_string("KILLED"))
    assert not mlflow.RunStatus.is_terminated("RUNNING")
    assert sorted(mlflow.RunStatus.all_status()) == [1, 2, 3, 4, 5]


def test_delete_and_restore_experiments() -> None:
    experiment_id = mlflow.create_experiment("short-lived")
    mlflow.delete_experiment(experiment_id)
    assert mlflow.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert "short-lived" not in [e.name for e in mlflow.search_experiments()]
    with pytest.raises(mlflow.MlflowException, match="already exists in deleted state"):
        mlflow.create_experiment("short-lived")
    with pytest.raises(mlflow.MlflowException, match="deleted experiment"):
        mlflow.set_experiment("short-lived")
    mlflow.restore_experiment(experiment_id)
    assert mlflow.set_experiment("short-lived").experiment_id == experiment_id
    with pytest.raises(mlflow.MlflowException, match="Cannot delete the default experiment"):
        mlflow.delete_experiment("0")
