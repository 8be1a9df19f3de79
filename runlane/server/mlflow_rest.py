"""MLflow's REST API (``/api/2.0/mlflow/...``) on the runlane server: point ``MLFLOW_TRACKING_URI`` at it.

The subset the real ``mlflow`` client uses for experiments, runs, params, metrics, tags, batches, search and
metric history (SPEC.md 6.6), in MLflow's JSON shapes (its protobuf messages as MLflow's server writes
them: snake_case fields, int64 as JSON numbers, NaN and +/-Inf as the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``; requests may send int64 as numbers or strings, as protobuf JSON allows). Every route is
one translation onto ``runlane.mlflow_tracking``, the model the compat module shares, so these runs are
ordinary runlane runs (experiment = project, params = config, tags = tags) and runlane's runs are visible
here.

Errors are ``{"error_code", "message"}`` with MLflow's codes and statuses (``INVALID_PARAMETER_VALUE`` and
``RESOURCE_ALREADY_EXISTS`` 400, ``RESOURCE_DOES_NOT_EXIST`` 404, ``ENDPOINT_NOT_FOUND`` 404, ...). A client
error is never a 5xx: the mlflow client retries those for minutes. The only 5xx a client meets is 503
``TEMPORARILY_UNAVAILABLE`` for a store that is briefly locked, which it should retry.

Artifacts are out of scope: a run's ``artifact_uri`` is ``file://<store dir>/mlflow-artifacts/<experiment
id>/<run id>/artifacts`` (for a store without a directory, ``mlflow-artifacts:/...``); nothing serves it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ..entities import RunInfo as NativeRun
from ..errors import RunlaneError, StoreError, StoreUnavailableError
from ..mlflow_entities import (
    BAD_REQUEST,
    ENDPOINT_NOT_FOUND,
    HTTP_STATUS,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    PERMISSION_DENIED,
    TEMPORARILY_UNAVAILABLE,
    UNAUTHENTICATED,
    Experiment,
    LifecycleStage,
    Metric,
    MlflowException,
    Param,
    Run,
    RunTag,
    ViewType,
)
from ..mlflow_search import page_offset, page_token
from ..mlflow_tracking import SEARCH_MAX_RESULTS_DEFAULT, Tracking
from ..store.base import Store
from .auth import require_write

log = logging.getLogger("runlane.server.mlflow")

PREFIX = "/api/2.0/mlflow"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: The most points one metrics/get-history page returns (MLflow's client asks for pages of 25,000).
HISTORY_PAGE_MAX = 25_000
_INT64 = (-(2**63), 2**63 - 1)

# Each writer's next offset, shared by every request of this process (see Tracking._ingest): a write costs
# one transaction; another server process moving the offset is found and corrected by the store's answer.
_OFFSETS: dict[str, int] = {}

Body = dict[str, Any]
Handler = Callable[[Tracking, Body], Mapping[str, Any]]


# -- the request's values -------------------------------------------------------------------------


def _missing(name: str) -> MlflowException:
    return MlflowException(
        f"Missing value for required parameter '{name}'. See the API docs for more information about request "
        "parameters."
    )


def _str(body: Body, name: str, *, required: bool = False, alias: str | None = None) -> str | None:
    value = body.get(name)
    if value is None and alias is not None:
        value = body.get(alias)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str):
        raise MlflowException(f"Invalid value {json.dumps(value)} for parameter '{name}' supplied: a string")
    return value


def _int64(body: Body, name: str, *, required: bool = False) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)  # protobuf JSON may send an int64 as a string
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
        raise MlflowException(f"Invalid value {json.dumps(value)} for parameter '{name}' supplied: an int64")
    return value


def _double(body: Body, name: str) -> float:
    value = body.get(name)
    if value is None:
        raise _missing(name)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MlflowException(f"Invalid value {json.dumps(value)} for parameter '{name}' supplied: a double")
    return float(value)


def _list(body: Body, name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]  # a GET query with one value
    return value


def _objects(body: Body, name: str) -> list[Body]:
    items = _list(body, name)
    for item in items:
        if not isinstance(item, dict):
            raise MlflowException(f"Invalid value for parameter '{name}': a list of objects")
    return items


def _view_type(body: Body, name: str) -> int:
    value = body.get(name)
    if value is None:
        return ViewType.ACTIVE_ONLY
    if isinstance(value, str):
        try:
            return ViewType.from_string(value)
        except MlflowException:
            raise MlflowException(
                f"Invalid value {value!r} for parameter '{name}': ACTIVE_ONLY, DELETED_ONLY or ALL"
            ) from None
    if value in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
        return int(value)
    raise MlflowException(f"Invalid value {value!r} for parameter '{name}': ACTIVE_ONLY, DELETED_ONLY or ALL")


def _max_results(body: Body, default: int, most: int) -> int:
    value = _int64(body, "max_results")
    if value is None:
        return default
    if not 1 <= value <= most:
        raise MlflowException(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be at most {most} and at least 1."
        )
    return value


def _run_id(body: Body) -> str:
    found = _str(body, "run_id", alias="run_uuid")
    if found is None:
        raise _missing("run_id")
    return found


# -- MLflow's JSON shapes -------------------------------------------------------------------------


def _number(value: float) -> float | str:
    """A double as protobuf JSON writes it: NaN and the infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _pairs(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def _experiment(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": experiment.last_update_time,
        "creation_time": experiment.creation_time,
        "tags": _pairs(experiment.tags),
    }


def _metric(metric: Metric) -> dict[str, Any]:
    return {"key": metric.key, "value": _number(metric.value), "timestamp": metric.timestamp, "step": metric.step}


def _run_info(run: Run) -> dict[str, Any]:
    info = run.info
    out: dict[str, Any] = {
        "run_uuid": info.run_id,
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def _run(run: Run, native: NativeRun) -> dict[str, Any]:
    metrics = []
    for key, value in run.data.metrics.items():
        series = native.metrics.get(key)
        if series is not None:  # the latest point: MLflow's is the one at the highest step
            metrics.append(_metric(Metric(key, value, int(series.last_time * 1000), series.last_step)))
        else:  # a system metric: sampled in time, not at steps
            metrics.append(_metric(Metric(key, value, run.info.start_time, 0)))
    return {
        "info": _run_info(run),
        "data": {"metrics": metrics, "params": _pairs(run.data.params), "tags": _pairs(run.data.tags)},
        "inputs": {},
    }


def _full_run(tracking: Tracking, run_id: str) -> dict[str, Any]:
    native = tracking.native(run_id)
    return _run(tracking.run_view(native, system=True), native)


# -- experiments ----------------------------------------------------------------------------------


def create_experiment(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    name = _str(body, "name", required=True)
    tags = {str(tag.get("key")): str(tag.get("value", "")) for tag in _objects(body, "tags")}
    return {"experiment_id": tracking.create_experiment(name, _str(body, "artifact_location"), tags)}


def get_experiment(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    experiment_id = _str(body, "experiment_id", required=True)
    return {"experiment": _experiment(tracking.get_experiment(experiment_id))}


def get_experiment_by_name(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    name = _str(body, "experiment_name", required=True)
    assert name is not None
    found = tracking.get_experiment_by_name(name)
    if found is None:
        raise MlflowException(f"Could not find experiment with name '{name}'", "RESOURCE_DOES_NOT_EXIST")
    return {"experiment": _experiment(found)}


def search_experiments(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    experiments, token = tracking.search_experiments(
        _view_type(body, "view_type"),
        _max_results(body, SEARCH_MAX_RESULTS_DEFAULT, 50_000),
        _str(body, "filter"),
        [str(item) for item in _list(body, "order_by")],
        _str(body, "page_token"),
    )
    out: dict[str, Any] = {"experiments": [_experiment(e) for e in experiments]}
    if token is not None:
        out["next_page_token"] = token
    return out


def update_experiment(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    experiment_id = _str(body, "experiment_id", required=True)
    new_name = _str(body, "new_name")
    if new_name is not None:
        tracking.rename_experiment(experiment_id, new_name)
    return {}


def delete_experiment(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.set_experiment_stage(_str(body, "experiment_id", required=True), LifecycleStage.DELETED)
    return {}


def restore_experiment(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.set_experiment_stage(_str(body, "experiment_id", required=True), LifecycleStage.ACTIVE)
    return {}


def set_experiment_tag(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    key = _str(body, "key", required=True)
    assert key is not None
    tracking.set_experiment_tag(_str(body, "experiment_id", required=True), key, body.get("value", ""))
    return {}


# -- runs -----------------------------------------------------------------------------------------


def create_run(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    experiment_id = _str(body, "experiment_id") or "0"
    tags = {str(tag.get("key")): str(tag.get("value", "")) for tag in _objects(body, "tags")}
    _int64(body, "start_time")  # checked; the store stamps the start itself
    run = tracking.create_run(experiment_id, run_name=_str(body, "run_name"), tags=tags, user_id=_str(body, "user_id"))
    return {"run": _full_run(tracking, run.info.run_id)}


def get_run(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    return {"run": _full_run(tracking, _run_id(body))}


def update_run(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    run_id = _run_id(body)
    _int64(body, "end_time")  # checked; the store stamps the end itself
    status = body.get("status")
    if status is not None and not isinstance(status, str):
        status = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}.get(status, str(status))
    tracking.update_run(run_id, status=status, run_name=_str(body, "run_name"))
    return {"run_info": _run_info(tracking.get_run(run_id))}


def delete_run(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.set_deleted(_run_id(body), True)
    return {}


def restore_run(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.set_deleted(_run_id(body), False)
    return {}


def search_runs(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    experiment_ids = [str(item) for item in _list(body, "experiment_ids")]
    found, token = tracking.search_runs_natives(
        experiment_ids,
        _str(body, "filter"),
        _view_type(body, "run_view_type"),
        _max_results(body, SEARCH_MAX_RESULTS_DEFAULT, 50_000),
        [str(item) for item in _list(body, "order_by")],
        _str(body, "page_token"),
    )
    out: dict[str, Any] = {"runs": [_run(run, native) for run, native in found]}
    if token is not None:
        out["next_page_token"] = token
    return out


def _metric_from(item: Body) -> Metric:
    key = _str(item, "key", required=True)
    assert key is not None
    timestamp = _int64(item, "timestamp", required=True)
    assert timestamp is not None
    return Metric(key, _double(item, "value"), timestamp, _int64(item, "step") or 0)


def _pair(item: Body, what: str) -> tuple[str, str]:
    key = _str(item, "key", required=True)
    assert key is not None
    value = item.get("value")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise MlflowException(f"Invalid value {json.dumps(value)} for {what} '{key}': a string")
    return key, value


def log_metric(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.log_batch(_run_id(body), metrics=[_metric_from(body)])
    return {}


def log_param(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.log_batch(_run_id(body), params=[Param(*_pair(body, "param"))])
    return {}


def set_tag(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.log_batch(_run_id(body), tags=[RunTag(*_pair(body, "tag"))])
    return {}


def delete_tag(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    key = _str(body, "key", required=True)
    assert key is not None
    tracking.delete_tag(_run_id(body), key)
    return {}


def log_batch(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    tracking.log_batch(
        _run_id(body),
        metrics=[_metric_from(item) for item in _objects(body, "metrics")],
        params=[Param(*_pair(item, "param")) for item in _objects(body, "params")],
        tags=[RunTag(*_pair(item, "tag")) for item in _objects(body, "tags")],
    )
    return {}


def metric_history(tracking: Tracking, body: Body) -> Mapping[str, Any]:
    key = _str(body, "metric_key", required=True)
    assert key is not None
    history = tracking.metric_history(_run_id(body), key)
    size = _max_results(body, HISTORY_PAGE_MAX, HISTORY_PAGE_MAX)
    start = _parse_token(_str(body, "page_token"))
    chosen = history[start : start + size]
    out: dict[str, Any] = {"metrics": [_metric(metric) for metric in chosen]}
    if start + size < len(history):
        out["next_page_token"] = page_token(start + size)
    return out


def _parse_token(token: str | None) -> int:
    try:
        return page_offset(token)
    except ValueError as exc:
        raise MlflowException(str(exc)) from exc


# -- wiring ---------------------------------------------------------------------------------------

ROUTES: dict[str, tuple[tuple[str, ...], Handler]] = {
    "experiments/create": (("POST",), create_experiment),
    "experiments/get": (("GET",), get_experiment),
    "experiments/get-by-name": (("GET",), get_experiment_by_name),
    "experiments/search": (("POST", "GET"), search_experiments),
    "experiments/update": (("POST",), update_experiment),
    "experiments/delete": (("POST",), delete_experiment),
    "experiments/restore": (("POST",), restore_experiment),
    "experiments/set-experiment-tag": (("POST",), set_experiment_tag),
    "runs/create": (("POST",), create_run),
    "runs/get": (("GET",), get_run),
    "runs/update": (("POST",), update_run),
    "runs/delete": (("POST",), delete_run),
    "runs/restore": (("POST",), restore_run),
    "runs/search": (("POST", "GET"), search_runs),
    "runs/log-metric": (("POST",), log_metric),
    "runs/log-parameter": (("POST",), log_param),
    "runs/set-tag": (("POST",), set_tag),
    "runs/delete-tag": (("POST",), delete_tag),
    "runs/log-batch": (("POST",), log_batch),
    "metrics/get-history": (("GET",), metric_history),
}


def error(code: str, message: str, status: int | None = None) -> Response:
    return JSONResponse({"error_code": code, "message": message}, status_code=status or HTTP_STATUS.get(code, 400))


async def _body(request: Request) -> Body:
    if request.method == "GET":
        query: Body = {}
        for key, value in request.query_params.multi_items():
            if key in query:
                query[key] = [*(query[key] if isinstance(query[key], list) else [query[key]]), value]
            else:
                query[key] = value
        return query
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise MlflowException(f"Malformed request: the body is not JSON ({exc})", BAD_REQUEST) from exc
    if not isinstance(parsed, dict):
        raise MlflowException("Malformed request: the body must be a JSON object", BAD_REQUEST)
    return parsed


def _artifact_root(store: Store) -> str:
    directory = getattr(store, "dir", None)
    return f"file://{directory}/mlflow-artifacts" if directory is not None else "mlflow-artifacts:"


def _answer(request: Request, handler: Handler, body: Body) -> Response:
    with request.app.state.pool.lease() as store:
        tracking = Tracking(store, _artifact_root(store), offsets=_OFFSETS)
        return JSONResponse(dict(handler(tracking, body)))


def _endpoint(handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await _body(request)
            return await run_in_threadpool(_answer, request, handler, body)
        except MlflowException as exc:
            return error(exc.error_code, exc.message)
        except StoreUnavailableError as exc:
            return JSONResponse(
                {"error_code": TEMPORARILY_UNAVAILABLE, "message": str(exc)},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        except StoreError as exc:  # a read-only store and the like: the state of the store, not a bad request
            return error(INVALID_STATE, str(exc))
        except (RunlaneError, ValueError, TypeError) as exc:  # runlane's own checks name what was wrong
            return error(INVALID_PARAMETER_VALUE, str(exc))

    endpoint.__name__ = f"mlflow_{handler.__name__}"
    return endpoint


#: Routes that only read although MLflow's client sends them with POST.
READS = frozenset({"experiments/search", "runs/search"})

# The app includes this router with ``require_read`` (any valid key once the store has keys); writes need a
# key that is not read-only.
for _path, (_methods, _handler) in ROUTES.items():
    _guards = [] if _path in READS or _methods == ("GET",) else [Depends(require_write)]
    router.add_api_route(f"/{_path}", _endpoint(_handler), methods=list(_methods), dependencies=_guards)


def refused(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The app's own refusals (API keys, body limits) in MLflow's shape, for the mlflow client to read."""
    code = {401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 503: TEMPORARILY_UNAVAILABLE}.get(
        status, INVALID_PARAMETER_VALUE
    )
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers)


def endpoint_not_found(request: Request, status: int) -> Response:
    """MLflow's answer for an endpoint it does not have (this server answers the tracking subset only).

    Called by the app's 404/405 handler for paths under ``PREFIX`` rather than from a catch-all route here,
    which would shadow routes another module includes later under the same prefix.
    """
    log.warning("mlflow: no endpoint %s %s (answered ENDPOINT_NOT_FOUND)", request.method, request.url.path)
    return error(
        ENDPOINT_NOT_FOUND, f"No API endpoint {request.method} {request.url.path} on this runlane server", status
    )
