"""MLflow's fluent run API on runlane: ``import runlane.compat.mlflow as mlflow``.

``start_run``, ``end_run``, ``active_run``, ``last_active_run``, experiments, params, metrics and tags work
as in MLflow, with MLflow's vocabulary on the outside: upper-case statuses (RUNNING, SCHEDULED, FINISHED,
FAILED, KILLED), 32-character run ids, string experiment ids ("0" is the Default experiment), and a stack
of active runs per thread. Underneath, an experiment is a runlane project, a run id is the run's uid,
params are its config, and a tag ``key`` with ``value`` is the runlane tag ``"key=value"``.

Where MLflow is known to be wrong, runlane's lifecycle rules apply instead. The differences:

- A script that crashes with an active run leaves it FAILED with the exception as the reason (MLflow's
  exit hook marks it FINISHED); ``KeyboardInterrupt`` leaves it KILLED.
- At exit every active run is ended, nested parents included (MLflow leaves nested parents RUNNING).
- SIGTERM leaves active runs KILLED (MLflow leaves them RUNNING forever).
- A ``with mlflow.start_run():`` block interrupted by ``KeyboardInterrupt`` ends KILLED, not FAILED.
- ``log_metric``/``log_metrics`` without ``step`` use the run's step counter (0, 1, 2, ...) instead of
  piling every value onto step 0, because runlane keeps one value per metric and step.
- ``timestamp`` arguments are accepted and ignored: runlane stamps each point when it is logged.
- ``description`` describes new runs; resuming a run with ``start_run(run_id=..., description=...)`` keeps
  the description it has.
- Tags are stored as runlane tags ``"key=value"`` of at most 256 characters.
- System metrics (``log_system_metrics=True`` or ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true``) are
  runlane's ``sys/...`` series, sampled every 10 s; off by default, as in MLflow.
- The tracking URI is a local store directory (a path or a ``file://`` URI); the default is runlane's
  (``$RUNLANE_DIR``, else ``./.runlane``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlparse

import runlane

__all__ = [
    "ActiveRun",
    "Experiment",
    "MlflowException",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "active_run",
    "create_experiment",
    "end_run",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

DEFAULT_EXPERIMENT_NAME = "Default"
DEFAULT_EXPERIMENT_ID = "0"
SYSTEM_METRICS_INTERVAL_S = 10.0  # MLflow samples every 10 seconds


class MlflowException(runlane.RunlaneError, ValueError):
    """What MLflow raises for invalid requests; a ``ValueError`` too."""


class RunStatus:
    """MLflow's run statuses and their runlane names."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    TO_RUNLANE: Mapping[str, str] = {
        "RUNNING": "running",
        "SCHEDULED": "scheduled",
        "FINISHED": "finished",
        "FAILED": "failed",
        "KILLED": "killed",
    }
    FROM_RUNLANE: Mapping[str, str] = {v: k for k, v in TO_RUNLANE.items()}

    @staticmethod
    def is_terminated(status: str) -> bool:
        return status in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = "active"
    user_id: str = ""

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


class Run:
    """A snapshot of a run: ``info`` and ``data``, as ``mlflow.get_run`` returns it."""

    def __init__(self, info: RunInfo, data: RunData) -> None:
        self._info = info
        self._data = data

    @property
    def info(self) -> RunInfo:
        return self._info

    @property
    def data(self) -> RunData:
        return self._data

    def __repr__(self) -> str:
        return f"<Run: run_id={self.info.run_id!r}, status={self.info.status!r}>"


class ActiveRun(Run):
    """The run ``start_run`` returns: a context manager that ends it FINISHED, or FAILED on an exception."""

    def __init__(self, run: Run, native: runlane.Run | runlane.NoOpRun) -> None:
        super().__init__(run.info, run.data)
        self._native = native

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            status = RunStatus.FINISHED
        elif isinstance(exc, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        _end(self._native, status)


# -- where runs are stored ----------------------------------------------------------------------

_tracking_uri: str | None = None
_active_experiment_id: str | None = None
_globals_lock = threading.Lock()


def _uri_to_dir(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):  # C:\\ paths on Windows
        return unquote(parsed.path) if parsed.scheme == "file" else uri
    raise MlflowException(
        f"tracking URI {uri!r}: runlane.compat.mlflow stores runs in a local directory; pass a path or a file:// URI"
    )


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Store runs in this directory (a path or a ``file://`` URI)."""
    global _tracking_uri
    text = os.fspath(uri)
    _uri_to_dir(text)
    _tracking_uri = text


def get_tracking_uri() -> str:
    """The store directory as a ``file://`` URI."""
    return "file://" + os.path.abspath(_store_dir() or os.environ.get("RUNLANE_DIR") or ".runlane")


def _store_dir() -> str | None:
    uri = _tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return _uri_to_dir(uri) if uri else None


def _api() -> runlane.Api:
    return runlane.Api(_store_dir(), create=True)


# -- experiments --------------------------------------------------------------------------------


def _experiment(project: runlane.ProjectInfo) -> Experiment:
    experiment_id = DEFAULT_EXPERIMENT_ID if project.name == DEFAULT_EXPERIMENT_NAME else str(project.id)
    return Experiment(experiment_id, project.name, get_tracking_uri())


def _find(api: runlane.Api, *, name: str | None = None, experiment_id: str | None = None) -> Experiment | None:
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        name, experiment_id = DEFAULT_EXPERIMENT_NAME, None
    for project in api.projects():
        if (name is not None and project.name == name) or (
            experiment_id is not None and str(project.id) == experiment_id
        ):
            return _experiment(project)
    return None


def create_experiment(name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None) -> str:
    """Create an experiment and return its id; an existing name is an error."""
    with _api() as api:
        if _find(api, name=name) is not None:
            raise MlflowException(f"Experiment {name!r} already exists.")
        return _experiment(api.create_project(name)).experiment_id


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment of that name, or None."""
    with _api() as api:
        return _find(api, name=name)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with that id; an unknown id is an error."""
    with _api() as api:
        found = _find(api, experiment_id=str(experiment_id))
    if found is None:
        raise MlflowException(f"No Experiment with id={experiment_id} exists")
    return found


def _get_or_create(api: runlane.Api, name: str) -> Experiment:
    return _experiment(api.create_project(name, exist_ok=True))


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment the active one: by name (created if missing) or by id (must exist)."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise MlflowException("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    with _api() as api:
        if experiment_name is not None:
            experiment = _get_or_create(api, experiment_name)
        else:
            found = _find(api, experiment_id=str(experiment_id))
            if found is None:
                raise MlflowException(f"Experiment with ID '{experiment_id}' does not exist.")
            experiment = found
    with _globals_lock:
        _active_experiment_id = experiment.experiment_id
    return experiment


def _resolve_experiment(api: runlane.Api, experiment_id: str | None) -> Experiment:
    """start_run(experiment_id) > set_experiment > MLFLOW_EXPERIMENT_NAME > MLFLOW_EXPERIMENT_ID > Default."""
    explicit = experiment_id if experiment_id is not None else _active_experiment_id
    if explicit is not None:
        found = _find(api, experiment_id=str(explicit))
        if found is None:
            raise MlflowException(f"Experiment with ID '{explicit}' does not exist.")
        return found
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        return _get_or_create(api, name)
    env_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if env_id:
        found = _find(api, experiment_id=env_id)
        if found is None:
            raise MlflowException(f"MLFLOW_EXPERIMENT_ID={env_id}: no experiment with that id exists.")
        return found
    return _get_or_create(api, DEFAULT_EXPERIMENT_NAME)


# -- the per-thread stack of active runs --------------------------------------------------------


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.last_run_id: str | None = None


_state = _ThreadState()


def _tag_strings(tags: Mapping[str, Any] | None) -> list[str]:
    return [f"{key}={value}" for key, value in (tags or {}).items()]


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run, or resume ``run_id`` (its status goes back to RUNNING), and make it active.

    While a run is active in this thread, starting another needs ``nested=True``; the new run records
    the active one as its parent.
    """
    stack = _state.stack
    if stack and not nested:
        raise MlflowException(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a new run, first end the "
            "current run with mlflow.end_run(). To start a nested run, call start_run with nested=True"
        )
    if run_id is not None and experiment_id is not None:
        raise MlflowException("experiment_id cannot be specified together with run_id: a run keeps its experiment")
    parent_uid = stack[-1].info.run_id if (nested and stack) else None
    if parent_run_id is not None:
        if parent_uid is not None and parent_uid != parent_run_id:
            raise MlflowException(
                f"Current run with UUID {parent_uid} does not match the specified parent_run_id {parent_run_id}."
            )
        parent_uid = parent_run_id
    directory = _store_dir()
    interval = _system_metrics_interval(log_system_metrics)
    with _api() as api:
        if parent_uid is not None and api.run(parent_uid).status != "running":
            raise MlflowException(f"The parent run {parent_uid} must be active (RUNNING) to nest a run under it.")
        if run_id is not None:
            # As in MLflow, run_name only names new runs; tags given on resume are set on the run.
            native = runlane.init(run_id=run_id, resume=True, dir=directory, system_metrics_interval=interval)
            for key, value in (tags or {}).items():
                _set_native_tag(native, key, value)
        else:
            experiment = _resolve_experiment(api, experiment_id)
            native = runlane.init(
                project=experiment.name,
                name=run_name,
                tags=_tag_strings(tags),
                notes=description,
                parent_run_id=parent_uid,
                dir=directory,
                system_metrics_interval=interval,
            )
        if isinstance(native, runlane.NoOpRun):  # RUNLANE_MODE=disabled: same shape, nothing recorded
            active = ActiveRun(_disabled_run(run_name), native)
        else:
            active = ActiveRun(_snapshot(api, native.uid), native)
    stack.append(active)
    _state.last_run_id = active.info.run_id
    return active


def _disabled_run(run_name: str | None) -> Run:
    info = RunInfo("0" * 32, DEFAULT_EXPERIMENT_ID, run_name or "", RunStatus.RUNNING, 0, None, "")
    return Run(info, RunData({}, {}, {}))


def _system_metrics_interval(log_system_metrics: bool | None) -> float | None:
    """MLflow records system metrics only when asked (the argument, else its environment variable)."""
    if log_system_metrics is None:
        flag = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false").strip().lower()
        log_system_metrics = flag in ("true", "1", "yes")
    return SYSTEM_METRICS_INTERVAL_S if log_system_metrics else None


def _end(native: runlane.Run | runlane.NoOpRun, status: str) -> None:
    wanted = str(status).upper()
    if wanted not in RunStatus.TO_RUNLANE:
        raise MlflowException(
            f"Invalid run status {status!r}; use one of {', '.join(RunStatus.TO_RUNLANE)}. The run is still active."
        )
    native.finish(RunStatus.TO_RUNLANE[wanted])
    stack = _state.stack
    for index in range(len(stack) - 1, -1, -1):
        if stack[index]._native is native:
            del stack[index]
            break
    _state.last_run_id = native.uid or _state.last_run_id


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run of this thread with ``status`` (default FINISHED); does nothing if none is active."""
    if _state.stack:
        _end(_state.stack[-1]._native, status)


def active_run() -> ActiveRun | None:
    """The run active in this thread, or None."""
    return _state.stack[-1] if _state.stack else None


def last_active_run() -> Run | None:
    """The active run if there is one, else the run most recently active in this thread, as stored now."""
    if _state.stack:
        return _state.stack[-1]
    return None if _state.last_run_id is None else get_run(_state.last_run_id)


def _active_native() -> runlane.Run | runlane.NoOpRun:
    """The active run's runlane object; like MLflow, logging with no active run starts one."""
    if not _state.stack:
        start_run()
    return _state.stack[-1]._native


# -- params, metrics, tags ----------------------------------------------------------------------


def log_param(key: str, value: Any) -> Any:
    """Record a parameter; changing the value of a parameter already logged is an error, as in MLflow."""
    log_params({key: value})
    return value


def log_params(params: Mapping[str, Any]) -> None:
    native = _active_native()
    config = native.config
    for key, value in params.items():
        if key in config and str(config[key]) != str(value):
            raise MlflowException(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{config[key]}' for run ID='{native.uid}'. Attempted logging new value '{value}'."
            )
    native.update_config(dict(params))


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    """Record one metric value at ``step`` (default: the run's next step)."""
    _active_native().log({key: value}, step=step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    """Record several metrics at one step."""
    _active_native().log(dict(metrics), step=step)


def _set_native_tag(native: runlane.Run | runlane.NoOpRun, key: str, value: Any) -> None:
    if not isinstance(key, str) or not key or "=" in key:
        raise MlflowException(f"Invalid tag name {key!r}: a non-empty string without '='")
    stale = [tag for tag in native.tags if tag.split("=", 1)[0] == key]
    if stale:
        native.remove_tags(stale)
    native.add_tags(f"{key}={value}")


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run (replacing its previous value)."""
    _set_native_tag(_active_native(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    native = _active_native()
    for key, value in tags.items():
        _set_native_tag(native, key, value)


# -- reading runs back --------------------------------------------------------------------------


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def _snapshot(api: runlane.Api, run_id: str) -> Run:
    info = api.run(run_id)
    tags = dict(tag.split("=", 1) for tag in info.tags if "=" in tag)
    name = info.name or info.display_id
    tags["mlflow.runName"] = name
    if info.notes:
        tags["mlflow.note.content"] = info.notes
    if info.parent_run_id is not None:
        tags["mlflow.parentRunId"] = api.run(info.parent_run_id).uid
    experiment = _experiment(api.project(info.project))
    return Run(
        RunInfo(
            run_id=info.uid,
            experiment_id=experiment.experiment_id,
            run_name=name,
            status=RunStatus.FROM_RUNLANE[info.status],
            start_time=int(info.started_at * 1000),
            end_time=_ms(info.ended_at),
            artifact_uri=f"{get_tracking_uri()}/artifacts/{info.uid}",
        ),
        RunData(
            metrics={key: series.last_value for key, series in info.metrics.items()},
            params={key: str(value) for key, value in info.config.items()},
            tags=tags,
        ),
    )


def get_run(run_id: str) -> Run:
    """The run with this id, as stored now; an unknown id is an error."""
    with _api() as api:
        try:
            return _snapshot(api, run_id)
        except (runlane.RunNotFoundError, ValueError) as exc:
            raise MlflowException(f"Run {run_id!r} not found") from exc
