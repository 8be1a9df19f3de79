"""MLflow's REST API on ``runlane server``, driven by the real ``mlflow`` client (black box).

A real server subprocess on a free port; the real client (mlflow-skinny) pointed at it through
``MLFLOW_TRACKING_URI``, with retries off (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``: a 5xx would fail the test
at once instead of being retried for minutes) and telemetry off. Raw HTTP checks the error codes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runlane

from .servers import Server, running_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the client's own imports may warn about its optional extras
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
    from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")

CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("mlflow-rest")
    store = root / "store"
    with running_server(store, root / "server.log") as server:
        yield server, store


@pytest.fixture(autouse=True)
def client_env(served: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server, _ = served
    for key, value in CLIENT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(server.url)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _post(server: Server, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/2.0/mlflow/{path}", json=body, timeout=30)


def _get(server: Server, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}/api/2.0/mlflow/{path}", params=params, timeout=30)


# -- the fluent lifecycle -----------------------------------------------------------------------


def test_fluent_runs_round_trip_with_params_metrics_tags_and_nesting(served: tuple[Server, Path]) -> None:
    _, store = served
    experiment = mlflow.set_experiment("Social NLP Experiments")
    assert mlflow.set_experiment(experiment_id=experiment.experiment_id).name == "Social NLP Experiments"
    with mlflow.start_run(run_name="parent", description="the sweep") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"batch": 32, "optimizer": "adam"})
        mlflow.log_param("lr", 0.01)  # the same value again is fine
        with pytest.raises(MlflowException, match="Changing param values is not allowed") as conflict:
            mlflow.log_param("lr", 0.02)
        assert conflict.value.error_code == "INVALID_PARAMETER_VALUE"
        mlflow.log_metric("loss", 0.9)  # no step: MLflow's client sends step 0
        mlflow.log_metric("loss", 0.5, step=5, timestamp=1_700_000_000_000)
        mlflow.log_metric("loss", 0.7, step=3)  # not the latest: a lower step
        mlflow.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf}, step=1)
        mlflow.set_tag("team", "nlp")
        mlflow.set_tags({"stage": "dev", "scratch": "x"})
        mlflow.delete_tag("scratch")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("x", 1.0)
        explicit = mlflow.start_run(run_name="explicit", nested=True, parent_run_id=parent.info.run_id)
        mlflow.end_run()
    run = mlflow.get_run(parent.info.run_id)
    assert (run.info.status, run.info.run_name, run.info.experiment_id) == (
        "FINISHED",
        "parent",
        experiment.experiment_id,
    )
    assert run.data.params == {"lr": "0.01", "batch": "32", "optimizer": "adam"}
    assert run.data.metrics["loss"] == 0.5
    assert math.isnan(run.data.metrics["nan"])
    assert (run.data.metrics["inf"], run.data.metrics["ninf"]) == (math.inf, -math.inf)
    assert run.data.tags["team"] == "nlp"
    assert run.data.tags["mlflow.note.content"] == "the sweep"
    assert "scratch" not in run.data.tags
    assert run.data.tags["mlflow.user"]  # the client's context tags arrive
    history = MlflowClient().get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (3, 0.7), (5, 0.5)]
    assert history[-1].timestamp == 1_700_000_000_000
    for nested in (child, explicit):
        assert mlflow.get_run(nested.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    # One data set: the same runs through runlane's own reads.
    with runlane.Api(store) as api:
        native = api.run(parent.info.run_id)
        assert (native.project, native.name, native.notes, native.status) == (
            "Social NLP Experiments",
            "parent",
            "the sweep",
            "finished",
        )
        assert native.config == {"lr": "0.01", "batch": "32", "optimizer": "adam"}
        assert "team=nlp" in native.tags
        assert api.run(child.info.run_id).parent_run_id == native.id
        assert [p.step for p in api.history(native.id, "loss")] == [0, 3, 5]


def test_end_run_with_every_status_and_resume_sets_running(served: tuple[Server, Path]) -> None:
    mlflow.set_experiment("statuses")
    for status in ("FINISHED", "FAILED", "KILLED", "SCHEDULED", "RUNNING"):
        run = mlflow.start_run()
        mlflow.end_run(status=status)
        assert mlflow.get_run(run.info.run_id).info.status == status
        if RunStatus.is_terminated(RunStatus.from_string(status)):
            assert mlflow.get_run(run.info.run_id).info.end_time is not None
    with mlflow.start_run() as first:
        mlflow.log_metric("loss", 1.0, step=0)
    resumed = mlflow.start_run(run_id=first.info.run_id)
    assert mlflow.get_run(first.info.run_id).info.status == "RUNNING"
    assert resumed.info.run_id == first.info.run_id
    mlflow.log_metric("loss", 0.5, step=1)
    mlflow.end_run()
    stored = mlflow.get_run(first.info.run_id)
    assert (stored.info.status, stored.data.metrics["loss"]) == ("FINISHED", 0.5)


def test_the_server_names_runs_and_default_experiment_zero_exists(served: tuple[Server, Path]) -> None:
    client = MlflowClient()
    default = client.get_experiment("0")
    assert (default.name, default.lifecycle_stage) == ("Default", "active")
    run = client.create_run("0")
    assert run.info.run_name
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    assert run.info.artifact_uri.startswith("file://")
    assert run.info.artifact_uri.endswith(f"/mlflow-artifacts/0/{run.info.run_id}/artifacts")


def test_log_batch_beyond_one_requests_limits(served: tuple[Server, Path]) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("batches")
    run = client.create_run(experiment_id)
    metrics = [Metric(f"m{i % 5}", float(i), 1_700_000_000_000 + i, i // 5) for i in range(2_500)]
    params = [Param(f"p{i}", str(i)) for i in range(250)]
    tags = [RunTag(f"t{i}", "v") for i in range(150)]
    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)  # the client splits it
    stored = client.get_run(run.info.run_id)
    assert len(stored.data.params) == 250
    assert sum(1 for key in stored.data.tags if key.startswith("t")) == 150
    assert stored.data.metrics["m4"] == 2_499.0
    assert len(client.get_metric_history(run.info.run_id, "m0")) == 500


@pytest.mark.slow
def test_search_runs_filters_orders_and_pages_across_2500_runs(served: tuple[Server, Path]) -> None:
    server, _ = served
    client = MlflowClient()
    experiment_id = client.create_experiment("sweep-2500")

    def make(indices: range) -> None:
        with httpx.Client(base_url=f"{server.url}/api/2.0/mlflow", timeout=60) as http:
            for i in indices:
                created = http.post("runs/create", json={"experiment_id": experiment_id, "run_name": f"r{i:04d}"})
                body = {
                    "run_id": created.json()["run"]["info"]["run_id"],
                    "metrics": [{"key": "score", "value": i / 10, "timestamp": 1, "step": 0}],
                    "params": [{"key": "model", "value": "tree" if i % 2 else "linear"}],
                    "tags": [{"key": "bucket", "value": str(i % 10)}],
                }
                assert http.post("runs/log-batch", json=body).status_code == 200

    workers = [threading.Thread(target=make, args=(range(k, 2_500, 8),)) for k in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    everything = mlflow.search_runs([experiment_id], output_format="list")  # the client pages by itself
    assert len(everything) == 2_500
    tree_high = mlflow.search_runs(
        [experiment_id],
        filter_string="params.model = 'tree' and metrics.score >= 200 and tags.bucket != '1'",
        order_by=["metrics.score DESC"],
        output_format="list",
    )
    expected = [f"r{i:04d}" for i in range(2_499, 1_999, -1) if i % 2 and i % 10 != 1]
    assert [run.info.run_name for run in tree_high] == expected
    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], order_by=["attributes.run_name ASC"], max_results=300, page_token=token
        )
        seen += [run.info.run_name for run in page]
        token = page.token
        if not token:
            break
    assert seen == [f"r{i:04d}" for i in range(2_500)]
    found = client.search_runs([experiment_id], "attributes.run_name LIKE 'r000%'", order_by=["params.model"])
    assert [run.data.params["model"] for run in found] == ["linear"] * 5 + ["tree"] * 5
    assert sorted(run.info.run_name for run in found) == [f"r000{i}" for i in range(10)]


def test_metric_history_of_25000_points_comes_back_in_pages(served: tuple[Server, Path]) -> None:
    server, _ = served
    client = MlflowClient()
    run = client.create_run("0")
    for start in range(0, 25_000, 1_000):
        batch = [Metric("long", float(i), 1_700_000_000_000 + i, i) for i in range(start, start + 1_000)]
        client.log_batch(run.info.run_id, metrics=batch)
    history = client.get_metric_history(run.info.run_id, "long")
    assert [m.step for m in history] == list(range(25_000))
    first = _get(server, "metrics/get-history", run_id=run.info.run_id, metric_key="long", max_results=10_000)
    body = first.json()
    assert len(body["metrics"]) == 10_000
    assert body["metrics"][0] == {"key": "long", "value": 0.0, "timestamp": 1_700_000_000_000, "step": 0}
    second = _get(
        server, "metrics/get-history", run_id=run.info.run_id, metric_key="long", max_results=20_000,
        page_token=body["next_page_token"],
    ).json()  # fmt: skip
    assert [m["step"] for m in second["metrics"]] == list(range(10_000, 25_000))
    assert "next_page_token" not in second


def test_delete_and_restore_runs_and_experiments(served: tuple[Server, Path]) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment("to-delete", tags={"team": "a"})
    client.set_experiment_tag(experiment_id, "owner", "me")
    assert client.get_experiment(experiment_id).tags == {"team": "a", "owner": "me"}
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)) == 1
    with pytest.raises(MlflowException, match="deleted"):
        client.log_param(run.info.run_id, "a", "1")
    client.restore_run(run.info.run_id)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run.info.run_id]
    client.rename_experiment(experiment_id, "renamed")
    assert client.get_experiment(experiment_id).name == "renamed"
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert "renamed" not in [e.name for e in client.search_experiments()]
    assert "renamed" in [e.name for e in client.search_experiments(view_type=ViewType.ALL)]
    client.restore_experiment(experiment_id)
    assert client.get_experiment_by_name("renamed") is not None


def test_runs_logged_by_the_runlane_sdk_are_visible_to_the_mlflow_client(served: tuple[Server, Path]) -> None:
    _, store = served
    native = runlane.init(
        project="sdk/side", name="sdk-run", config={"optim": {"lr": 0.1}, "seed": 1}, tags=["k=v"], dir=store
    )
    assert isinstance(native, runlane.Run)
    for step in range(3):
        native.log({"loss": 1.0 / (step + 1)}, step=step)
    native.finish("killed")
    client = MlflowClient()
    run = client.get_run(native.uid)
    assert (run.info.status, run.info.run_name) == ("KILLED", "sdk-run")
    assert run.data.params == {"optim/lr": "0.1", "seed": "1"}
    assert run.data.metrics == {"loss": pytest.approx(1 / 3)}
    assert run.data.tags["k"] == "v"
    experiment = client.get_experiment_by_name("sdk/side")
    assert experiment is not None
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id], "metrics.loss < 0.5")] == [native.uid]


def test_mlflow_runs_show_in_runlane_ls_and_through_api_url(served: tuple[Server, Path]) -> None:
    server, store = served
    mlflow.set_experiment("listed")
    with mlflow.start_run(run_name="visible") as run:
        mlflow.log_metric("acc", 0.75)
    listing = subprocess.run(
        [sys.executable, "-m", "runlane", "ls", "--dir", str(store)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert any("visible" in line and "finished" in line for line in listing.stdout.splitlines()), listing.stdout
    with runlane.Api(url=server.url) as remote:
        read = remote.run(run.info.run_id)
        assert (read.project, read.name, read.status) == ("listed", "visible", "finished")
        assert read.metrics["acc"].last_value == 0.75
        assert [p.value for p in remote.history(read.id, "acc")] == [0.75]
        assert "listed" in [project.name for project in remote.projects()]


# -- errors in MLflow's codes -------------------------------------------------------------------


MISSING = "RESOURCE_DOES_NOT_EXIST"
INVALID = "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "experiments/get", {"experiment_id": "987654"}, 404, MISSING),
        ("GET", "experiments/get", {"experiment_id": "abc"}, 400, INVALID),
        ("GET", "experiments/get", {}, 400, INVALID),
        ("GET", "experiments/get-by-name", {"experiment_name": "no such"}, 404, MISSING),
        ("POST", "experiments/create", {"name": "Default"}, 400, "RESOURCE_ALREADY_EXISTS"),
        ("POST", "experiments/create", {}, 400, INVALID),
        ("POST", "experiments/delete", {"experiment_id": "0"}, 400, INVALID),
        ("GET", "runs/get", {"run_id": "f" * 32}, 404, MISSING),
        ("POST", "runs/create", {"experiment_id": "987654"}, 404, MISSING),
        (
            "POST",
            "runs/log-metric",
            {"run_id": "f" * 32, "key": "a", "value": 1, "timestamp": 1},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ("POST", "runs/search", {"experiment_ids": ["0"], "filter": "metrics.a < 'x'"}, 400, INVALID),
        (
            "POST",
            "runs/search",
            {"experiment_ids": ["0"], "filter": "attributes.colour = 'red'"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            "runs/search",
            {"experiment_ids": ["0"], "order_by": ["metrics.a UP"]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("POST", "runs/search", {"experiment_ids": ["0"], "page_token": "garbage"}, 400, INVALID),
        ("POST", "runs/search", {"experiment_ids": ["0"], "max_results": 50_001}, 400, INVALID),
        ("POST", "experiments/search", {"filter": "metrics.a < 1"}, 400, INVALID),
        ("GET", "registered-models/search", {}, 404, "ENDPOINT_NOT_FOUND"),
        ("GET", "runs/create", {}, 405, "ENDPOINT_NOT_FOUND"),
    ],
)
def test_bad_requests_get_mlflows_error_codes(
    served: tuple[Server, Path], method: str, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    server, _ = served
    response = _get(server, path, **body) if method == "GET" else _post(server, path, body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error_code"] == code
    assert answer["message"]


def test_bad_writes_to_a_run_get_mlflows_error_codes(served: tuple[Server, Path]) -> None:
    server, _ = served
    run_id = _post(server, "runs/create", {"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    cases: list[tuple[str, Any]] = [
        ("runs/log-metric", {"run_id": run_id, "key": "a", "value": "high", "timestamp": 1}),
        ("runs/log-metric", {"run_id": run_id, "key": "a", "value": 1.0}),  # no timestamp
        ("runs/log-metric", {"run_id": run_id, "key": "a", "value": 1.0, "timestamp": 1, "step": 2**64}),
        ("runs/log-parameter", {"run_id": run_id, "key": "a", "value": "x" * 6_001}),
        ("runs/set-tag", {"run_id": run_id, "key": "a=b", "value": "x"}),
        ("runs/delete-tag", {"run_id": run_id, "key": "never-set"}),
        ("runs/update", {"run_id": run_id, "status": "DONE"}),
        ("runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 1_001}),
        ("runs/log-batch", {"run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}),
        ("runs/log-batch", {"run_id": run_id, "metrics": "not a list"}),
    ]
    for path, body in cases:
        response = _post(server, path, body)
        expected = 404 if path == "runs/delete-tag" else 400
        assert response.status_code == expected, (path, response.text)
        assert response.json()["error_code"] == (
            "RESOURCE_DOES_NOT_EXIST" if path == "runs/delete-tag" else "INVALID_PARAMETER_VALUE"
        ), path
    assert _post(server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}).status_code == 200
    conflict = _post(server, "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert (conflict.status_code, conflict.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    broken = httpx.post(f"{server.url}/api/2.0/mlflow/runs/log-metric", content=b"{not json", timeout=30)
    assert (broken.status_code, broken.json()["error_code"]) == (400, "BAD_REQUEST")
    nothing_logged = MlflowClient().get_run(run_id)
    assert nothing_logged.data.metrics == {}
    assert nothing_logged.data.params == {"p": "1"}


def test_int64_fields_go_out_as_numbers_and_come_in_as_numbers_or_strings(served: tuple[Server, Path]) -> None:
    server, _ = served
    run_id = _post(server, "runs/create", {"experiment_id": "0", "start_time": "1700000000000"}).json()["run"]["info"][
        "run_id"
    ]
    body = {"run_id": run_id, "key": "big", "value": "NaN", "timestamp": "1700000000001", "step": str(2**62)}
    assert _post(server, "runs/log-metric", body).status_code == 200
    answer = _get(server, "runs/get", run_id=run_id).json()["run"]
    assert isinstance(answer["info"]["start_time"], int)
    assert answer["data"]["metrics"] == [{"key": "big", "value": "NaN", "timestamp": 1_700_000_000_001, "step": 2**62}]
    raw = httpx.get(f"{server.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=30).text
    json.loads(raw)  # strict JSON: no bare NaN
    assert "NaN" in raw


def _key(store: Path, name: str, *flags: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "runlane", "keys", "create", name, "--store", str(store), *flags],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return made.stdout.strip().splitlines()[-1]


def test_api_keys_guard_the_mlflow_routes_in_mlflows_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    writer = _key(store, "trainer")
    reader = _key(store, "dashboard", "--read-only")
    with running_server(store, tmp_path / "server.log") as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        mlflow.set_tracking_uri(server.url)
        denied = _get(server, "experiments/get", experiment_id="0")
        assert (denied.status_code, denied.json()["error_code"]) == (401, "UNAUTHENTICATED")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", writer)  # the client sends it as a Bearer token
        with mlflow.start_run(experiment_id="0") as run:  # this store has only the Default experiment
            mlflow.log_param("lr", 0.1)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", reader)
        client = MlflowClient()
        assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}
        assert [r.info.run_id for r in client.search_runs(["0"])] == [run.info.run_id]  # a POST that reads
        with pytest.raises(MlflowException) as refused:
            client.log_param(run.info.run_id, "other", "1")
        assert refused.value.error_code == "PERMISSION_DENIED"
