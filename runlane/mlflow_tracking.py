"""MLflow's tracking model over any runlane ``Store``: experiments, runs, params, metrics and tags.

One translation used by ``runlane.compat.mlflow`` (``MlflowClient``, ``search_runs``, reads) and by the
server's MLflow REST routes, so a run looks the same whichever way it was logged or is read:

- An experiment is a project. Its id is the project's numeric id as a string, except the project named
  ``Default``, which is experiment ``"0"`` and exists on every store once anything MLflow-shaped looks.
  Experiment tags, the artifact location, the lifecycle stage and the last update time are the
  project's metadata (``Store.project_meta``), under ``mlflow.`` keys. A name the project rules would
  change (a leading ``/``) is kept exactly in ``mlflow.name``.
- A run id is the run's uid. Params are the config flattened with ``/`` and shown as strings; MLflow params
  are stored as the strings MLflow made of them. A tag ``key`` with ``value`` is the runlane tag
  ``"key=value"``, a runlane tag without ``=`` is an MLflow tag with an empty value. ``mlflow.runName``,
  ``mlflow.note.content`` and ``mlflow.parentRunId`` come from the run's name, notes and parent unless set
  as tags. A deleted run (MLflow's soft delete) carries the hidden tag ``mlflow.lifecycleStage=deleted``.
- A metric's value is the one at its highest step. System metrics (``sys/...``) appear as ``system/...``.

Writes to a run that no process of this module's owner is writing (REST calls, ``MlflowClient`` on any run)
go through a writer registered per run, ``mlflow:<uid>``, closed right away: the store's recovery never
fails such a run (MLflow clients send no heartbeats), and each write is one ``ingest`` of journal records
at the writer's next offset, exactly once even with several server processes (an offset conflict says
where the writer is, see ``_ingest``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import journal
from . import mlflow_search as search
from .entities import ProjectInfo
from .entities import RunInfo as NativeRun
from .errors import OffsetConflictError, RunNotFoundError, StoreError
from .mlflow_entities import (
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
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
from .naming import RunRef, normalize_project
from .statuses import normalize_status
from .steps import in_range
from .store.base import NewRun, Store, WriterSpec

if TYPE_CHECKING:
    from .api import Api

DEFAULT_EXPERIMENT_NAME = "Default"
DEFAULT_EXPERIMENT_ID = "0"
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
DELETED_TAG = "mlflow.lifecycleStage=deleted"  # hidden from MLflow's view of the tags
_HIDDEN_TAG_KEYS = frozenset({"mlflow.lifecycleStage"})

# MLflow's limits (mlflow/utils/validation.py), so a request MLflow refuses is refused here too.
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_ENTITY_KEY_LENGTH = 250
MAX_EXPERIMENT_NAME_LENGTH = 500
SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000

_META_TAG = "mlflow.tag."
_META_NAME = "mlflow.name"
_META_ARTIFACTS = "mlflow.artifact_location"
_META_STAGE = "mlflow.lifecycle_stage"
_META_UPDATED = "mlflow.last_update_time"

# What MLflow's system metrics monitor calls the series runlane's monitor records.
_SYSTEM_NAMES = {
    "sys/cpu_percent": "system/cpu_utilization_percentage",
    "sys/memory_percent": "system/system_memory_usage_percentage",
    "sys/memory_used_mib": "system/system_memory_usage_megabytes",
}

_ADJECTIVES = ("amazing", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "gentle", "glad",
               "honest", "keen", "lively", "lucky", "merry", "nimble", "proud", "quick", "sharp", "silent",
               "smooth", "sunny", "swift", "tidy", "witty")  # fmt: skip
_NOUNS = ("ant", "bat", "bear", "bee", "carp", "crab", "deer", "dove", "eel", "finch", "fox", "gnu", "hawk",
          "hen", "koi", "lark", "lynx", "mole", "moth", "newt", "owl", "ram", "seal", "swan", "wolf")  # fmt: skip


def generate_run_name() -> str:
    """A readable name for a run started without one, in MLflow's style (``bold-fox-123``)."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A config as MLflow params: nested dicts joined with ``/``, values as strings."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, f"{name}/"))
        else:
            out[name] = str(value)
    return out


def tag_map(tags: Iterable[str]) -> dict[str, str]:
    """Runlane tags as MLflow's key/value tags (hidden bookkeeping tags left out)."""
    out: dict[str, str] = {}
    for tag in tags:
        key, _, value = tag.partition("=")
        if key not in _HIDDEN_TAG_KEYS:
            out[key] = value
    return out


def check_key(key: object, what: str) -> str:
    """MLflow's rule for metric, param and tag names: a non-empty string of at most 250 characters."""
    if not isinstance(key, str) or not key:
        raise MlflowException(f"Invalid {what} name: {key!r}. Names must be non-empty strings.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise MlflowException(
            f"{what.capitalize()} name '{key[:40]}...' had length {len(key)}, which exceeded length limit of "
            f"{MAX_ENTITY_KEY_LENGTH}"
        )
    if "=" in key or any(ord(ch) < 32 for ch in key):
        raise MlflowException(f"Invalid {what} name: '{key}'. Names may not contain '=' or control characters.")
    return key


def check_experiment_id(experiment_id: object) -> str:
    """An experiment id as a string; anything but a str or int is MLflow's invalid-id error."""
    if isinstance(experiment_id, bool) or not isinstance(experiment_id, (str, int)):
        raise MlflowException(
            f"Invalid experiment id: {experiment_id} of type {type(experiment_id)}. Must be one of str, int, or None."
        )
    text = str(experiment_id)
    if not text.isdigit():
        raise MlflowException(f"Invalid experiment ID '{text}'. Experiment ID must be a valid integer.")
    return text


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 256:
        raise MlflowException(f"Invalid run ID: {run_id!r}")
    return run_id


class Tracking:
    """MLflow's view of one store. ``artifact_root`` prefixes each experiment's artifact location."""

    def __init__(self, store: Store, artifact_root: str, *, offsets: dict[str, int] | None = None) -> None:
        self.store = store
        self.artifact_root = artifact_root.rstrip("/")
        # writer id -> its next offset, as far as we know; a server shares one dict between its requests
        self._offsets: dict[str, int] = {} if offsets is None else offsets

    @classmethod
    def over(cls, api: Api, artifact_root: str) -> Tracking:
        """MLflow's view of the store an ``Api`` has open (the compat module's way in)."""
        return cls(api._store, artifact_root)

    # -- experiments ----------------------------------------------------------------------------

    def default_project(self) -> ProjectInfo:
        return self.store.create_project(DEFAULT_EXPERIMENT_NAME, exist_ok=True)

    def _experiment_id(self, project: ProjectInfo) -> str:
        return DEFAULT_EXPERIMENT_ID if project.name == DEFAULT_EXPERIMENT_NAME else str(project.id)

    def _view(self, project: ProjectInfo) -> Experiment:
        meta = self.store.project_meta(project.name)
        experiment_id = self._experiment_id(project)
        created = _ms(project.created_at) or 0
        return Experiment(
            experiment_id=experiment_id,
            name=meta.get(_META_NAME, project.name),
            artifact_location=meta.get(_META_ARTIFACTS, f"{self.artifact_root}/{experiment_id}"),
            lifecycle_stage=meta.get(_META_STAGE, LifecycleStage.ACTIVE),
            tags={key[len(_META_TAG) :]: value for key, value in meta.items() if key.startswith(_META_TAG)},
            creation_time=created,
            last_update_time=int(meta.get(_META_UPDATED, created)),
        )

    def _project_by_id(self, experiment_id: object) -> ProjectInfo:
        wanted = check_experiment_id(experiment_id)
        if wanted == DEFAULT_EXPERIMENT_ID:
            return self.default_project()
        for project in self.store.projects():
            if str(project.id) == wanted:
                return project
        raise MlflowException(f"No Experiment with id={wanted} exists", RESOURCE_DOES_NOT_EXIST)

    def _project_by_name(self, name: str) -> ProjectInfo | None:
        if name == DEFAULT_EXPERIMENT_NAME:
            return self.default_project()
        try:
            wanted = normalize_project(name)
        except ValueError:
            return None
        return next((p for p in self.store.projects() if p.name == wanted), None)

    def get_experiment(self, experiment_id: object) -> Experiment:
        return self._view(self._project_by_id(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if not isinstance(name, str):
            raise MlflowException(f"Invalid experiment name: {name!r}. An experiment name must be a string")
        project = self._project_by_name(name)
        return None if project is None else self._view(project)

    def create_experiment(
        self, name: object, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        if not isinstance(name, str) or not name.strip():
            raise MlflowException(f"Invalid experiment name: {name!r}. An experiment name must be a non-empty string.")
        if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
            raise MlflowException(f"Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH}")
        existing = self._project_by_name(name)
        if existing is not None:
            stage = self.store.project_meta(existing.name).get(_META_STAGE, LifecycleStage.ACTIVE)
            suffix = " in deleted state" if stage == LifecycleStage.DELETED else ""
            raise MlflowException(f"Experiment '{name}' already exists{suffix}.", RESOURCE_ALREADY_EXISTS)
        try:
            project = self.store.create_project(name)
        except ValueError as exc:
            raise MlflowException(f"Invalid experiment name {name!r}: {exc}") from exc
        meta: dict[str, str | None] = {_META_UPDATED: str(_ms(project.created_at))}
        if project.name != name:
            meta[_META_NAME] = name
        if artifact_location:
            meta[_META_ARTIFACTS] = str(artifact_location)
        for key, value in (tags or {}).items():
            meta[_META_TAG + check_key(key, "tag")] = str(value)
        self.store.update_project(project.name, meta=meta)
        return self._experiment_id(project)

    def set_experiment_tag(self, experiment_id: object, key: str, value: Any) -> None:
        project = self._active_project(experiment_id)
        text = str(value)
        if len(text) > MAX_TAG_VAL_LENGTH:
            raise MlflowException(f"Tag value exceeded length limit of {MAX_TAG_VAL_LENGTH}")
        meta = {_META_TAG + check_key(key, "tag"): text, _META_UPDATED: str(now_ms())}
        self.store.update_project(project.name, meta=meta)

    def delete_experiment_tag(self, experiment_id: object, key: str) -> None:
        project = self._active_project(experiment_id)
        self.store.update_project(project.name, meta={_META_TAG + key: None, _META_UPDATED: str(now_ms())})

    def _active_project(self, experiment_id: object) -> ProjectInfo:
        project = self._project_by_id(experiment_id)
        if self.store.project_meta(project.name).get(_META_STAGE) == LifecycleStage.DELETED:
            raise MlflowException(
                f"The experiment {self._experiment_id(project)} must be in the 'active' state. "
                "Current state is deleted.",
                INVALID_STATE,
            )
        return project

    def rename_experiment(self, experiment_id: object, new_name: object) -> None:
        project = self._active_project(experiment_id)
        if not isinstance(new_name, str) or not new_name.strip():
            raise MlflowException(f"Invalid experiment name: {new_name!r}")
        if self._project_by_name(new_name) is not None:
            raise MlflowException(f"Experiment '{new_name}' already exists.", RESOURCE_ALREADY_EXISTS)
        if project.name == DEFAULT_EXPERIMENT_NAME:
            raise MlflowException("The Default experiment (id 0) keeps its name in runlane")
        try:
            renamed = normalize_project(new_name)
        except ValueError as exc:
            raise MlflowException(f"Invalid experiment name {new_name!r}: {exc}") from exc
        meta = {_META_NAME: new_name if renamed != new_name else None, _META_UPDATED: str(now_ms())}
        self.store.update_project(project.name, rename=renamed, meta=meta)

    def set_experiment_stage(self, experiment_id: object, stage: str) -> None:
        project = self._project_by_id(experiment_id)
        if stage == LifecycleStage.DELETED and project.name == DEFAULT_EXPERIMENT_NAME:
            raise MlflowException(
                "Cannot delete the default experiment '0'. This is an internally reserved experiment."
            )
        meta = {_META_STAGE: None if stage == LifecycleStage.ACTIVE else stage, _META_UPDATED: str(now_ms())}
        self.store.update_project(project.name, meta=meta)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]:
        clauses = _parse(lambda: search.parse_filter(filter_string, search.EXPERIMENTS))
        order = _parse(lambda: search.parse_order_by(order_by, search.EXPERIMENTS))
        _check_max_results(max_results)
        self.default_project()
        views = [self._view(project) for project in self.store.projects()]
        by_id = {view.experiment_id: view for view in views if _stage_wanted(view.lifecycle_stage, view_type)}
        rows = [
            search.Row(
                attributes={
                    "experiment_id": view.experiment_id,
                    "name": view.name,
                    "creation_time": view.creation_time,
                    "last_update_time": view.last_update_time,
                },
                tags=view.tags,
            )
            for view in by_id.values()
        ]
        default = [
            search.OrderKey("attribute", "creation_time", False),
            search.OrderKey("attribute", "experiment_id", True),
        ]
        found = search.sort_rows(search.filter_rows(rows, clauses), order, default)
        chosen, token = _parse(lambda: search.page(found, max_results, page_token))
        return [by_id[row.attributes["experiment_id"]] for row in chosen], token

    # -- runs: reads ----------------------------------------------------------------------------

    def native(self, run_id: object) -> NativeRun:
        try:
            return self.store.run(RunRef("uid", check_run_id(run_id)))
        except RunNotFoundError:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from None

    def run_view(self, info: NativeRun, *, system: bool = False, projects: Mapping[str, ProjectInfo] | None = None,
                 parents: Mapping[int, str] | None = None, location: str | None = None) -> Run:  # fmt: skip
        """MLflow's view of a runlane run; ``system`` adds the latest system metrics (one more read).

        A search passes what it read once for many runs: their ``projects``, the ``parents``' uids and the
        experiment's artifact ``location`` (None: the default one)."""
        tags = tag_map(info.tags)
        name = tags.get(RUN_NAME_TAG) or info.name or info.display_id
        tags[RUN_NAME_TAG] = name
        if info.notes:
            tags.setdefault(NOTE_TAG, info.notes)
        if info.parent_run_id is not None and PARENT_TAG not in tags:
            parent = parents.get(info.parent_run_id) if parents is not None else None
            tags[PARENT_TAG] = parent or self.store.run(RunRef("id", info.parent_run_id)).uid
        project = (projects or {}).get(info.project) or next(p for p in self.store.projects() if p.name == info.project)
        experiment_id = self._experiment_id(project)
        if projects is None:
            location = self.store.project_meta(project.name).get(_META_ARTIFACTS)
        location = location or f"{self.artifact_root}/{experiment_id}"
        metrics = {key: series.last_value for key, series in info.metrics.items()}
        if system:
            metrics.update(self._system_metrics(info.id))
        return Run(
            RunInfo(
                run_id=info.uid,
                experiment_id=experiment_id,
                run_name=name,
                status=RunStatus.FROM_RUNLANE[info.status],
                start_time=_ms(info.started_at) or 0,
                end_time=_ms(info.ended_at),
                artifact_uri=f"{location}/{info.uid}/artifacts",
                lifecycle_stage=LifecycleStage.DELETED if DELETED_TAG in info.tags else LifecycleStage.ACTIVE,
                user_id=tags.get(USER_TAG, ""),
            ),
            RunData(metrics=metrics, params=flatten_params(info.config), tags=tags),
        )

    def _system_metrics(self, run_id: int) -> dict[str, float]:
        latest: dict[str, float] = {}
        for key, points in self.store.system_metrics(run_id).items():
            if points:
                latest[_SYSTEM_NAMES.get(key, "system/" + key.removeprefix("sys/"))] = points[-1].value
        return latest

    def get_run(self, run_id: object) -> Run:
        return self.run_view(self.native(run_id), system=True)

    def metric_history(self, run_id: object, key: str) -> list[Metric]:
        info = self.native(run_id)
        if key.startswith("system/"):
            wanted = {name: native for native, name in _SYSTEM_NAMES.items()}.get(key, "sys/" + key[len("system/") :])
            points = self.store.system_metrics(info.id, wanted).get(wanted, [])
            return [Metric(key, point.value, int(point.time * 1000), 0) for point in points]
        history = self.store.history(info.id, key)
        return [
            Metric(key, value, int(at * 1000), step)
            for step, value, at in zip(history.steps, history.values, history.times, strict=True)
        ]

    def search_runs(
        self,
        experiment_ids: Sequence[object],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        found, token = self.search_runs_natives(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )
        return [run for run, _ in found], token

    def search_runs_natives(
        self,
        experiment_ids: Sequence[object],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[tuple[Run, NativeRun]], str | None]:
        """``search_runs`` with each run's runlane record beside it (the REST API reports each latest
        metric's step and time from it)."""
        clauses = _parse(lambda: search.parse_filter(filter_string, search.RUNS))
        order = _parse(lambda: search.parse_order_by(order_by, search.RUNS))
        _check_max_results(max_results)
        projects = [self._project_by_id(experiment_id) for experiment_id in experiment_ids]
        by_name = {project.name: project for project in projects}
        locations = {name: self.store.project_meta(name).get(_META_ARTIFACTS) for name in by_name}
        natives = [info for project in by_name.values() for info in self.store.runs(project.name)]
        uids = {info.id: info.uid for info in natives}
        by_id: dict[str, tuple[Run, NativeRun]] = {}
        rows: list[search.Row] = []
        for info in natives:
            run = self.run_view(info, projects=by_name, parents=uids, location=locations[info.project])
            if not _stage_wanted(run.info.lifecycle_stage, run_view_type):
                continue
            by_id[run.info.run_id] = (run, info)
            rows.append(search.Row(dict(vars(run.info)), run.data.metrics, run.data.params, run.data.tags))
        default = [search.OrderKey("attribute", "start_time", False), search.OrderKey("attribute", "run_id", True)]
        found = search.sort_rows(search.filter_rows(rows, clauses), order, default)
        chosen, token = _parse(lambda: search.page(found, max_results, page_token))
        return [by_id[row.attributes["run_id"]] for row in chosen], token

    # -- runs: writes ---------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: object,
        *,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        uid: str | None = None,
    ) -> Run:
        """A new RUNNING run; ``mlflow.runName``, ``mlflow.note.content`` and ``mlflow.parentRunId`` in
        ``tags`` become its name, notes and parent (a parent this store does not hold stays a tag)."""
        import uuid

        project = self._active_project(DEFAULT_EXPERIMENT_ID if experiment_id is None else experiment_id)
        given = {check_key(key, "tag"): _tag_value(value) for key, value in (tags or {}).items()}
        name = run_name or given.pop(RUN_NAME_TAG, None) or generate_run_name()
        if run_name and given.get(RUN_NAME_TAG, run_name) != run_name:
            raise MlflowException(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{given[RUN_NAME_TAG]}')."
            )
        given.pop(RUN_NAME_TAG, None)
        notes = given.pop(NOTE_TAG, None)
        parent_id: int | None = None
        if PARENT_TAG in given:
            try:
                parent_id = self.store.resolve(RunRef("uid", given[PARENT_TAG]))
                del given[PARENT_TAG]
            except (RunNotFoundError, ValueError):
                pass  # a parent in another store: kept as the tag MLflow sent
        if user_id and USER_TAG not in given:
            given[USER_TAG] = user_id
        new = NewRun(
            uid=uid or uuid.uuid4().hex,
            project=project.name,
            name=name,
            notes=notes,
            tags=tuple(f"{key}={value}" for key, value in given.items()),
            parent_run_id=parent_id,
        )
        writer = _writer_spec(new.uid)
        info = self.store.create_run(new, writer)
        self.store.close_writer(writer.id)
        return self.run_view(info)

    def update_run(self, run_id: object, status: str | None = None, run_name: str | None = None) -> RunInfo:
        info = self.native(run_id)
        self._check_writable(info)
        if run_name:
            self._ingest(
                info, [journal.Tags.new(time.time(), [f"{RUN_NAME_TAG}={run_name}"], _stale(info.tags, RUN_NAME_TAG))]
            )
        if status is not None:
            if status not in RunStatus.TO_RUNLANE:
                raise MlflowException(f"Invalid run status {status!r}; use one of {', '.join(RunStatus.TO_RUNLANE)}")
            self._close(info, RunStatus.TO_RUNLANE[status])
        return self.get_run(info.uid).info

    def set_terminated(self, run_id: object, status: str = RunStatus.FINISHED) -> None:
        self.update_run(run_id, status=status)

    def set_deleted(self, run_id: object, deleted: bool) -> None:
        info = self.native(run_id)
        tag = [DELETED_TAG]
        if deleted:
            self._ingest(info, [journal.Tags.new(time.time(), tag, [])])
        else:
            self._ingest(info, [journal.Tags.new(time.time(), [], tag)])

    def log_batch(
        self,
        run_id: object,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """MLflow's log-batch: its limits, params immutable, all of it one transaction."""
        if (
            len(metrics) > MAX_METRICS_PER_BATCH
            or len(params) > MAX_PARAMS_TAGS_PER_BATCH
            or len(tags) > MAX_PARAMS_TAGS_PER_BATCH
        ):
            raise MlflowException(
                f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics, "
                f"{MAX_PARAMS_TAGS_PER_BATCH} params and {MAX_PARAMS_TAGS_PER_BATCH} tags. Got {len(metrics)} "
                f"metrics, {len(params)} params and {len(tags)} tags."
            )
        if len(metrics) + len(params) + len(tags) > MAX_ENTITIES_PER_BATCH:
            raise MlflowException(
                f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} entities in all."
            )
        info = self.native(run_id)
        self._check_writable(info)
        records: list[tuple[Any, ...]] = []
        new_params = self._check_params(info, params)
        if new_params:
            records.append(journal.Config.new(time.time(), new_params))
        records += _metric_records(metrics)
        if tags:
            current = list(info.tags)
            added: list[str] = []
            removed: list[str] = []
            for tag in tags:
                key = check_key(tag.key, "tag")
                text = f"{key}={_tag_value(tag.value)}"
                stale = _stale(current, key)
                removed += stale
                current = [t for t in current if t not in stale] + [text]
                added = [t for t in added if t.partition("=")[0] != key] + [text]
            records.append(journal.Tags.new(time.time(), added, [t for t in removed if t not in added]))
        if records:
            self._ingest(info, records)

    def delete_tag(self, run_id: object, key: str) -> None:
        info = self.native(run_id)
        self._check_writable(info)
        stale = _stale(info.tags, key)
        if not stale and key not in self.run_view(info).data.tags:
            raise MlflowException(f"No tag with name: {key} in run with id {info.uid}", RESOURCE_DOES_NOT_EXIST)
        if stale:
            self._ingest(info, [journal.Tags.new(time.time(), [], stale)])

    def _check_params(self, info: NativeRun, params: Sequence[Param]) -> dict[str, str]:
        have = flatten_params(info.config)
        new: dict[str, str] = {}
        for param in params:
            key = check_key(param.key, "param")
            value = str(param.value)
            if len(value) > MAX_PARAM_VAL_LENGTH:
                raise MlflowException(
                    f"Param value '{value[:40]}...' had length {len(value)}, which exceeded length limit of "
                    f"{MAX_PARAM_VAL_LENGTH}"
                )
            old = have.get(key, new.get(key))
            if old is not None and old != value:
                raise MlflowException(
                    f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                    f"value='{old}' for run ID='{info.uid}'. Attempted logging new value '{value}'."
                )
            if key not in have:
                new[key] = value
        return new

    def _check_writable(self, info: NativeRun) -> None:
        if DELETED_TAG in info.tags:
            raise MlflowException(
                f"The run {info.uid} must be in the 'active' state. Current state is deleted.", INVALID_STATE
            )

    def _close(self, info: NativeRun, status: str) -> None:
        writer_id = f"mlflow:{info.uid}"
        if writer_id not in self._offsets:
            self._offsets[writer_id] = self._probe(info, writer_id)  # registers the writer if needed
        self.store.close_writer(writer_id, status=normalize_status(status))

    def _register(self, info: NativeRun) -> None:
        writer = _writer_spec(info.uid)
        try:
            self.store.add_writer(info.id, writer)
        except Exception:
            return
        self.store.close_writer(writer.id)

    def _ingest(self, info: NativeRun, records: Sequence[tuple[Any, ...]]) -> None:
        """Apply records through the run's MLflow writer at its next offset (one offset per call).

        The offset is remembered per writer; another process may have moved it, which ``ingest`` says
        either with an ``OffsetConflictError`` naming the committed offset (we were behind it... or ahead)
        or by returning False (our start is behind: the records look like a re-offer). Both are resolved
        by asking at an offset far ahead, whose conflict names the committed one.
        """
        writer_id = f"mlflow:{info.uid}"
        rows = [list(record) for record in records]
        start = self._offsets.get(writer_id)
        for _ in range(20):
            if start is None:
                start = self._probe(info, writer_id)
            try:
                applied = self.store.ingest(writer_id, info.id, rows, start, start + 1)
            except OffsetConflictError as exc:
                start = exc.committed
                continue
            if applied:
                self._offsets[writer_id] = start + 1
                return
            start = None
        raise MlflowException(f"run {info.uid} is being written too busily to apply this request; retry it")

    def _probe(self, info: NativeRun, writer_id: str) -> int:
        far = 2**62
        for _ in range(2):
            try:
                self.store.ingest(writer_id, info.id, [], far, far + 1)
            except OffsetConflictError as exc:
                return exc.committed
            except StoreError:
                self._register(info)  # a run made by the runlane SDK, or by another store client: register
                continue
        raise MlflowException(f"cannot write to run {info.uid}")


def _writer_spec(uid: str) -> WriterSpec:
    # pid 0 on no host: no liveness check ever takes it for a process; it is closed as soon as it is made.
    return WriterSpec(id=f"mlflow:{uid}", host="mlflow-rest", pid=0, pid_started=None, journal="")


def _stale(tags: Iterable[str], key: str) -> list[str]:
    return [tag for tag in tags if tag.partition("=")[0] == key]


def _tag_value(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_TAG_VAL_LENGTH:
        raise MlflowException(
            f"Tag value '{text[:40]}...' had length {len(text)}, which exceeded length limit of {MAX_TAG_VAL_LENGTH}"
        )
    return text


def _metric_records(metrics: Sequence[Metric]) -> list[tuple[Any, ...]]:
    """One journal Metrics record per (timestamp, step): runlane stamps a record, MLflow each value."""
    groups: dict[tuple[int, int], dict[str, float]] = {}
    for metric in metrics:
        key = check_key(metric.key, "metric")
        value = metric.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MlflowException(f"Got invalid value {value!r} for metric '{key}' (timestamp={metric.timestamp}). "
                                  "Please specify value as a valid double (64-bit floating point)")  # fmt: skip
        step = metric.step
        if isinstance(step, bool) or not isinstance(step, int) or not in_range(step):
            raise MlflowException(f"Got invalid step {step!r} for metric '{key}': an int64")
        groups.setdefault((metric.timestamp, step), {})[key] = float(value)
    return [journal.Metrics.new(timestamp / 1000, step, None, values) for (timestamp, step), values in groups.items()]


def _stage_wanted(stage: str, view_type: int) -> bool:
    if view_type == ViewType.ALL:
        return True
    if view_type == ViewType.DELETED_ONLY:
        return stage == LifecycleStage.DELETED
    return stage == LifecycleStage.ACTIVE


def _check_max_results(max_results: object) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise MlflowException(f"Invalid value {max_results!r} for parameter 'max_results' supplied: a positive integer")
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at most "
            f"{SEARCH_MAX_RESULTS_THRESHOLD}"
        )


def _parse(thunk: Any) -> Any:
    try:
        return thunk()
    except search.SearchError as exc:
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc


__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "Tracking",
    "check_experiment_id",
    "flatten_params",
    "generate_run_name",
    "tag_map",
]
