"""MLflow's fluent run API and ``MlflowClient`` on runlane: ``import runlane.compat.mlflow as mlflow``.

``start_run``, ``end_run``, ``active_run``, ``last_active_run``, experiments, params, metrics, tags,
``search_runs``/``search_experiments`` (MLflow's filter grammar, ``runlane.mlflow_search``) and the
``MlflowClient`` calls the fluent docs use work as in MLflow, with MLflow's vocabulary on the outside:
upper-case statuses (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED), 32-character run ids, string
experiment ids ("0" is the Default experiment, present on every store), and a stack of active runs per
thread. Underneath, an experiment is a runlane project (any name MLflow takes, kept exactly), a run id is
the run's uid, params are its config (stored as ``str(value)``, as MLflow does), and a tag ``key`` with
``value`` is the runlane tag ``"key=value"``; ``runlane.mlflow_tracking`` holds the whole mapping, which
the tracking server's MLflow REST routes share.

Where MLflow is known to be wrong, runlane's lifecycle rules apply instead. The differences:

- A script that crashes with an active run leaves it FAILED with the exception as the reason (MLflow's
  exit hook marks it FINISHED); ``KeyboardInterrupt`` leaves it KILLED.
- At exit every active run is ended, nested parents included (MLflow leaves nested parents RUNNING).
- SIGTERM leaves active runs KILLED (MLflow leaves them RUNNING forever).
- A ``with mlflow.start_run():`` block interrupted by ``KeyboardInterrupt`` ends KILLED, not FAILED.
- Fluent ``log_metric``/``log_metrics`` without ``step`` use the run's step counter (0, 1, 2, ...) instead
  of piling every value onto step 0, because runlane keeps one value per metric and step; for the same
  reason a metric logged twice at one step keeps the last value (MLflow keeps both in its history).
  ``MlflowClient.log_metric`` and ``log_batch`` keep MLflow's default step 0 and their timestamps.
- Fluent ``timestamp`` arguments are accepted and ignored: runlane stamps each point when it is logged.
- ``synchronous=`` is accepted everywhere and changes nothing: every call is durable once it returns
  (it is in the run's journal), and reads in this process see it (``get_run`` applies the journal first).
- Tags set on the active run are runlane tags ``"key=value"`` of at most 256 characters (``MlflowClient``
  and the REST API take MLflow's 8,000-character values).
- System metrics (``log_system_metrics=True``, ``enable_system_metrics_logging()`` or
  ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true``) are runlane's ``sys/...`` series, sampled every 10 s and
  shown as ``system/...`` metrics; off by default, as in MLflow.
- The tracking URI is a local store directory (a path or a ``file://`` URI); the default is runlane's
  (``$RUNLANE_DIR``, else ``./.runlane``). To log to a runlane server, point the real ``mlflow`` client at
  it instead. Artifacts are not stored: ``artifact_uri`` names a directory under the store.
- Run start and end times are runlane's (when the store created and ended the run):
  ``MlflowClient.create_run(start_time=)`` and ``set_terminated(end_time=)`` are accepted and not used.
- System metrics appear in ``get_run`` (their latest samples); ``search_runs`` filters and returns the
  runs' own metrics only, since a search would otherwise read every sample of every run.
- ``rename_experiment`` keeps the project's display key (run ids like ``AB-12`` do not change), and the
  Default experiment cannot be renamed.
- ``delete_run`` is MLflow's soft delete: the run stays in the store (``runlane ls`` still lists it) with
  a hidden tag, and ``restore_run`` takes it back.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import runlane
from runlane.mlflow_entities import (
    RESOURCE_DOES_NOT_EXIST,
    Experiment,
    LifecycleStage,
    Metric,
    MlflowException,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from runlane.mlflow_tracking import (
    DEFAULT_EXPERIMENT_ID,
    NOTE_TAG,
    PARENT_TAG,
    RUN_NAME_TAG,
    SEARCH_MAX_RESULTS_DEFAULT,
    Tracking,
    check_experiment_id,
    flatten_params,
    generate_run_name,
    now_ms,
)

__all__ = [
    "ActiveRun",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "MlflowClient",
    "MlflowException",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "end_run",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

DEFAULT_EXPERIMENT_NAME = "Default"
SYSTEM_METRICS_INTERVAL_S = 10.0  # MLflow samples every 10 seconds
SEARCH_MAX_RESULTS_PANDAS = 100000  # MLflow's default for fluent search_runs
_SYSTEM_METRICS_ENV = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"


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
        # As MLflow: by run id, since a tool may have ended the run and started it again with the same id.
        if any(run.info.run_id == self.info.run_id for run in _state.stack):
            end_run(status)


# -- where runs are stored ----------------------------------------------------------------------

_tracking_uri: str | None = None
_active_experiment_id: str | None = None
_globals_lock = threading.Lock()


def _uri_to_dir(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):  # C:\\ paths on Windows
        return unquote(parsed.path) if parsed.scheme == "file" else uri
    raise MlflowException(
        f"tracking URI {uri!r}: runlane.compat.mlflow stores runs in a local directory; pass a path or a file:// "
        "URI (for a runlane server, use the real mlflow client with MLFLOW_TRACKING_URI)"
    )


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Store runs in this directory (a path or a ``file://`` URI); exported to subprocesses as
    ``MLFLOW_TRACKING_URI``, as MLflow does."""
    global _tracking_uri
    text = os.fspath(uri)
    _uri_to_dir(text)
    _tracking_uri = text
    os.environ["MLFLOW_TRACKING_URI"] = text


def get_tracking_uri() -> str:
    """The store directory as a ``file://`` URI."""
    return "file://" + os.path.abspath(_store_dir() or os.environ.get("RUNLANE_DIR") or ".runlane")


def _store_dir() -> str | None:
    uri = _tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return _uri_to_dir(uri) if uri else None


def _api() -> runlane.Api:
    return runlane.Api(_store_dir(), create=True)


@contextmanager
def _tracking() -> Iterator[Tracking]:
    with _api() as api:
        yield Tracking.over(api, get_tracking_uri() + "/artifacts")


def _flush_if_active(run_id: str) -> None:
    """A process reads its own writes: apply what an active run of this process has journaled."""
    native = _natives.get(run_id)
    if native is not None:
        native.flush()


# -- experiments --------------------------------------------------------------------------------


def create_experiment(name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None) -> str:
    """Create an experiment (any name MLflow takes, kept exactly) and return its id; a taken name is an error."""
    with _tracking() as tracking:
        return tracking.create_experiment(name, artifact_location, tags)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment of that name, or None."""
    with _tracking() as tracking:
        return tracking.get_experiment_by_name(name)


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with that id; an unknown id is an error."""
    with _tracking() as tracking:
        return tracking.get_experiment(experiment_id)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """Experiments matching an MLflow filter (``name LIKE 'cv%'``, ``tags.team = 'x'``), newest first."""
    out: list[Experiment] = []
    token: str | None = None
    with _tracking() as tracking:
        while True:
            size = SEARCH_MAX_RESULTS_DEFAULT if max_results is None else min(max_results - len(out), 50000)
            found, token = tracking.search_experiments(view_type, size, filter_string, order_by, token)
            out += found
            if token is None or (max_results is not None and len(out) >= max_results):
                return out


def delete_experiment(experiment_id: str) -> None:
    with _tracking() as tracking:
        tracking.set_experiment_stage(experiment_id, LifecycleStage.DELETED)


def restore_experiment(experiment_id: str) -> None:
    with _tracking() as tracking:
        tracking.set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment the active one: by name (created if missing) or by id (must exist)."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise MlflowException("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    with _tracking() as tracking:
        if experiment_name is not None:
            experiment = tracking.get_experiment_by_name(experiment_name)
            if experiment is None:
                experiment = tracking.get_experiment(tracking.create_experiment(experiment_name))
        else:
            try:
                experiment = tracking.get_experiment(experiment_id)
            except MlflowException as exc:
                if exc.error_code != RESOURCE_DOES_NOT_EXIST:
                    raise
                raise MlflowException(f"Experiment with ID '{experiment_id}' does not exist.", exc.error_code) from None
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise MlflowException(
            f"Cannot set a deleted experiment '{experiment.name}' as the active experiment. You can restore the "
            "experiment, or permanently delete the experiment to create a new one."
        )
    with _globals_lock:
        _active_experiment_id = experiment.experiment_id
    return experiment


def _current_experiment_id(tracking: Tracking) -> str:
    return _resolve_experiment(tracking, None).experiment_id


def set_experiment_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the active experiment (set_experiment's, else the environment's, else Default)."""
    with _tracking() as tracking:
        tracking.set_experiment_tag(_current_experiment_id(tracking), key, value)


def set_experiment_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    with _tracking() as tracking:
        experiment_id = _current_experiment_id(tracking)
        for key, value in tags.items():
            tracking.set_experiment_tag(experiment_id, key, value)


def _resolve_experiment(tracking: Tracking, experiment_id: str | None) -> Experiment:
    """start_run(experiment_id) > set_experiment > MLFLOW_EXPERIMENT_NAME > MLFLOW_EXPERIMENT_ID > Default."""
    explicit = experiment_id if experiment_id is not None else _active_experiment_id
    if explicit is not None:
        try:
            return tracking.get_experiment(explicit)
        except MlflowException as exc:
            if exc.error_code != RESOURCE_DOES_NOT_EXIST:
                raise
            raise MlflowException(f"Experiment with ID '{explicit}' does not exist.", exc.error_code) from None
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        found = tracking.get_experiment_by_name(name)
        return found if found is not None else tracking.get_experiment(tracking.create_experiment(name))
    env_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if env_id:
        try:
            return tracking.get_experiment(env_id)
        except MlflowException as exc:
            raise MlflowException(f"MLFLOW_EXPERIMENT_ID={env_id}: no experiment with that id exists.") from exc
    return tracking.get_experiment(DEFAULT_EXPERIMENT_ID)


# -- the per-thread stack of active runs --------------------------------------------------------


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.stack: list[ActiveRun] = []
        self.last_run_id: str | None = None


_state = _ThreadState()
# Every run active in this process (any thread), by run id: reads of these apply their journal first.
_natives: dict[str, runlane.Run] = {}


def _forget_in_child() -> None:
    # As MLflow: a forked child starts with no active run (it must not end or log into its parent's run by
    # accident); the child's thread is the one that forked, so its thread-local stack is the one to clear.
    _state.stack = []
    _natives.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _tag_strings(tags: Mapping[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in tags.items()]


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
    the active one as its parent. ``parent_run_id`` names a parent explicitly (any run not deleted).
    """
    stack = _state.stack
    if experiment_id is not None:
        experiment_id = check_experiment_id(experiment_id)
    if stack and not nested:
        raise MlflowException(
            f"Run with UUID {stack[0].info.run_id} is already active. To start a new run, first end the "
            "current run with mlflow.end_run(). To start a nested run, call start_run with nested=True"
        )
    if run_id is None and os.environ.get("MLFLOW_RUN_ID"):
        run_id = os.environ.pop("MLFLOW_RUN_ID")
    if run_id is not None and experiment_id is not None:
        raise MlflowException("experiment_id cannot be specified together with run_id: a run keeps its experiment")
    given = {str(key): str(value) for key, value in (tags or {}).items()}
    if description:
        if NOTE_TAG in given:
            raise MlflowException(
                f"Description is already set via the tag {NOTE_TAG} in tags."
                f"Remove the key {NOTE_TAG} from the tags or omit the description."
            )
        given[NOTE_TAG] = description
    directory = _store_dir()
    interval = _system_metrics_interval(log_system_metrics)
    with _tracking() as tracking:
        if run_id is not None:
            existing = tracking.get_run(run_id)
            if existing.info.lifecycle_stage == LifecycleStage.DELETED:
                raise MlflowException(f"Cannot start run with ID {run_id} because it is in the deleted state.")
            if _active_experiment_id is not None and _active_experiment_id != existing.info.experiment_id:
                raise MlflowException(
                    f"Cannot start run with ID {run_id} because active experiment ID does not match environment "
                    "run ID. Make sure --experiment-name or --experiment-id matches experiment set with "
                    "set_experiment(), or just use command-line arguments"
                )
            native = runlane.init(run_id=run_id, resume=True, dir=directory, system_metrics_interval=interval)
            for key, value in given.items():  # as in MLflow, tags (and the description) given on resume are set
                _set_native_tag(native, key, value)
        else:
            parent_uid = _parent(tracking, stack, nested, parent_run_id)
            experiment = _resolve_experiment(tracking, experiment_id)
            if experiment.lifecycle_stage == LifecycleStage.DELETED:
                raise MlflowException(f"Cannot start a run in the deleted experiment {experiment.experiment_id}")
            name = run_name or given.pop(RUN_NAME_TAG, None) or generate_run_name()
            given.pop(RUN_NAME_TAG, None)
            notes = given.pop(NOTE_TAG, None)
            native = runlane.init(
                project=_project_of(tracking, experiment),
                name=name,
                tags=_tag_strings(given),
                notes=notes,
                parent_run_id=parent_uid,
                dir=directory,
                system_metrics_interval=interval,
            )
        if isinstance(native, runlane.NoOpRun):  # RUNLANE_MODE=disabled: same shape, nothing recorded
            active = ActiveRun(_disabled_run(run_name), native)
        else:
            native.flush()
            active = ActiveRun(tracking.get_run(native.uid), native)
            _natives[native.uid] = native
    stack.append(active)
    _state.last_run_id = active.info.run_id
    return active


def _project_of(tracking: Tracking, experiment: Experiment) -> str:
    return tracking._project_by_id(experiment.experiment_id).name


def _parent(tracking: Tracking, stack: list[ActiveRun], nested: bool, parent_run_id: str | None) -> str | None:
    if parent_run_id is None:
        return stack[-1].info.run_id if (nested and stack) else None
    if stack and stack[-1].info.run_id != parent_run_id:
        current = stack[-1].info.run_id
        raise MlflowException(
            f"Current run with UUID {current} does not match the specified parent_run_id {parent_run_id}. To start "
            f"a new nested run under the parent run with UUID {current}, first end the current run with "
            "mlflow.end_run()."
        )
    _flush_if_active(parent_run_id)
    parent = tracking.get_run(parent_run_id)  # MLflow refuses only a deleted parent; a finished one is fine
    if parent.info.lifecycle_stage == LifecycleStage.DELETED:
        raise MlflowException(
            f"Cannot start run under parent run with ID {parent_run_id} because it is in the deleted state."
        )
    return parent_run_id


def _disabled_run(run_name: str | None) -> Run:
    info = RunInfo("0" * 32, DEFAULT_EXPERIMENT_ID, run_name or "", RunStatus.RUNNING, 0, None, "")
    return Run(info, RunData({}, {}, {}))


def _system_metrics_interval(log_system_metrics: bool | None) -> float | None:
    """MLflow records system metrics only when asked (the argument, else its environment variable)."""
    if log_system_metrics is None:
        flag = os.environ.get(_SYSTEM_METRICS_ENV, "false").strip().lower()
        log_system_metrics = flag in ("true", "1", "yes")
    return SYSTEM_METRICS_INTERVAL_S if log_system_metrics else None


def enable_system_metrics_logging() -> None:
    """Record system metrics for every run started from now on (MLflow sets the same variable)."""
    os.environ[_SYSTEM_METRICS_ENV] = "true"


def disable_system_metrics_logging() -> None:
    os.environ[_SYSTEM_METRICS_ENV] = "false"


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
    if native.uid:
        _natives.pop(native.uid, None)
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


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Record a parameter as ``str(value)``; logging another value for a logged key is an error, as in MLflow."""
    log_params({key: value})
    return value


def log_params(params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    if run_id is not None and run_id not in _natives:
        MlflowClient().log_batch(run_id, params=[Param(str(k), str(v)) for k, v in params.items()])
        return
    native = _natives[run_id] if run_id is not None else _active_native()
    have = flatten_params(native.config)
    update: dict[str, str] = {}
    for key, value in params.items():
        text = str(value)
        old = have.get(key, update.get(key))
        if old is not None and old != text:
            raise MlflowException(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{old}' for run ID='{native.uid}'. Attempted logging new value '{text}'."
            )
        update[key] = text
    native.update_config(update)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
) -> None:
    """Record one metric value at ``step`` (default: the run's next step)."""
    log_metrics({key: value}, step=step, timestamp=timestamp, run_id=run_id)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
) -> None:
    """Record several metrics at one step."""
    if run_id is not None and run_id not in _natives:
        at = now_ms() if timestamp is None else int(timestamp)
        MlflowClient().log_batch(run_id, metrics=[Metric(k, v, at, step or 0) for k, v in metrics.items()])
        return
    native = _natives[run_id] if run_id is not None else _active_native()
    native.log(dict(metrics), step=step)


def _set_native_tag(native: runlane.Run | runlane.NoOpRun, key: str, value: Any) -> None:
    if not isinstance(key, str) or not key or "=" in key:
        raise MlflowException(f"Invalid tag name {key!r}: a non-empty string without '='")
    stale = [tag for tag in native.tags if tag.partition("=")[0] == key]
    if stale:
        native.remove_tags(stale)
    native.add_tags(f"{key}={value}")


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set a tag on the active run (replacing its previous value)."""
    _set_native_tag(_active_native(), key, value)


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    native = _active_native()
    for key, value in tags.items():
        _set_native_tag(native, key, value)


def delete_tag(key: str) -> None:
    """Delete a tag of the active run; a tag it does not have is an error, as in MLflow."""
    native = _active_native()
    stale = [tag for tag in native.tags if tag.partition("=")[0] == key]
    if not stale:
        raise MlflowException(f"No tag with name: {key} in run with id {native.uid}", RESOURCE_DOES_NOT_EXIST)
    native.remove_tags(stale)


# -- reading runs back --------------------------------------------------------------------------


def get_run(run_id: str) -> Run:
    """The run with this id as stored now, this process's own writes included; an unknown id is an error."""
    _flush_if_active(run_id)
    with _tracking() as tracking:
        return tracking.get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    """The parent of a nested run, or None."""
    parent = get_run(run_id).data.tags.get(PARENT_TAG)
    return None if parent is None else get_run(parent)


def delete_run(run_id: str) -> None:
    """MLflow's soft delete: the run leaves searches (``run_view_type=ViewType.ALL`` still finds it)."""
    MlflowClient().delete_run(run_id)


def restore_run(run_id: str) -> None:
    MlflowClient().restore_run(run_id)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_PANDAS,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs matching an MLflow filter string, as a pandas DataFrame (``output_format="pandas"``, needs pandas)
    or a list of ``Run`` (``"list"``). Without experiments: the active experiment's runs."""
    if output_format not in ("pandas", "list"):
        raise MlflowException(
            f"Unsupported output format: {output_format}. Supported string values are 'pandas' or 'list'"
        )
    for native in list(_natives.values()):
        native.flush()
    with _tracking() as tracking:
        ids = [check_experiment_id(e) for e in experiment_ids or ()]
        for name in experiment_names or ():
            found = tracking.get_experiment_by_name(name)
            if found is not None:
                ids.append(found.experiment_id)
        if not ids and not experiment_names:
            if search_all_experiments:
                ids = [e.experiment_id for e in tracking.search_experiments(ViewType.ALL, 50000)[0]]
            else:
                ids = [_current_experiment_id(tracking)]
        runs: list[Run] = []
        token: str | None = None
        while len(runs) < max_results:
            size = min(max_results - len(runs), 50000)
            found_runs, token = tracking.search_runs(ids, filter_string, run_view_type, size, order_by, token)
            runs += found_runs
            if token is None:
                break
    return runs if output_format == "list" else _frame(runs)


def _frame(runs: list[Run]) -> Any:
    try:
        import pandas as pd
    except ImportError as exc:
        raise MlflowException("search_runs(output_format='pandas') needs pandas: pip install pandas, or pass "
                              "output_format='list'") from exc  # fmt: skip

    def when(ms: int | None) -> Any:
        return None if ms is None else datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)

    rows = []
    for run in runs:
        info = run.info
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": info.status,
            "artifact_uri": info.artifact_uri,
            "start_time": when(info.start_time),
            "end_time": when(info.end_time),
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [c for row in rows for c in row])))


class MlflowClient:
    """MLflow's lower-level client over the same store: any run by id, not only the active one."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._dir = _uri_to_dir(tracking_uri) if tracking_uri is not None else None

    @contextmanager
    def _tracking(self) -> Iterator[Tracking]:
        if self._dir is None:
            with _tracking() as tracking:
                yield tracking
            return
        with runlane.Api(self._dir, create=True) as api:
            yield Tracking.over(api, "file://" + os.path.abspath(self._dir) + "/artifacts")

    # experiments
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        with self._tracking() as tracking:
            return tracking.create_experiment(name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._tracking() as tracking:
            return tracking.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._tracking() as tracking:
            return tracking.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        with self._tracking() as tracking:
            found, token = tracking.search_experiments(view_type, max_results, filter_string, order_by, page_token)
        return PagedList(found, token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        with self._tracking() as tracking:
            tracking.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        with self._tracking() as tracking:
            tracking.set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        with self._tracking() as tracking:
            tracking.set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        with self._tracking() as tracking:
            tracking.set_experiment_tag(experiment_id, key, value)

    # runs
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        with self._tracking() as tracking:
            return tracking.create_run(experiment_id, run_name=run_name, tags=tags)

    def get_run(self, run_id: str) -> Run:
        _flush_if_active(run_id)
        with self._tracking() as tracking:
            return tracking.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get(PARENT_TAG)
        return None if parent is None else self.get_run(parent)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        for native in list(_natives.values()):
            native.flush()
        with self._tracking() as tracking:
            found, token = tracking.search_runs(
                list(experiment_ids), filter_string, run_view_type, max_results, order_by, page_token
            )
        return PagedList(found, token)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        _flush_if_active(run_id)
        with self._tracking() as tracking:
            return tracking.metric_history(run_id, key)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        self._write(run_id, lambda tracking: tracking.update_run(run_id, status=status, run_name=name))

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> None:
        """End a run (default FINISHED); ending the run active in this process ends it there too."""
        native = _natives.get(run_id)
        if native is not None and _state.stack and _state.stack[-1]._native is native:
            _end(native, status or RunStatus.FINISHED)
            return
        self._write(run_id, lambda tracking: tracking.set_terminated(run_id, status or RunStatus.FINISHED))

    def delete_run(self, run_id: str) -> None:
        self._write(run_id, lambda tracking: tracking.set_deleted(run_id, True))

    def restore_run(self, run_id: str) -> None:
        self._write(run_id, lambda tracking: tracking.set_deleted(run_id, False))

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        at = now_ms() if timestamp is None else int(timestamp)
        self.log_batch(run_id, metrics=[Metric(key, value, at, step or 0)])

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self.log_batch(run_id, params=[Param(key, str(value))])
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self.log_batch(run_id, tags=[RunTag(key, str(value))])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._write(run_id, lambda tracking: tracking.delete_tag(run_id, key))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        self._write(run_id, lambda tracking: tracking.log_batch(run_id, metrics, params, tags))

    def _write(self, run_id: str, write: Any) -> None:
        _flush_if_active(run_id)
        with self._tracking() as tracking:
            write(tracking)


T = TypeVar("T")


class PagedList(list[T]):
    """A page of results with the ``token`` of the next page (None after the last), as MLflow's."""

    def __init__(self, items: Sequence[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token
