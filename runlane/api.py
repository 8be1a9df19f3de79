"""The read API used by scripts, the CLI and (later) the server: ``runlane.Api(dir=None)``.

Opening it replays journals that dead processes left behind, so a crashed run's last points and its
``failed`` status are visible to the first reader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, overload

from . import wire
from .config import Settings
from .entities import Bucket, History, ImageInfo, Lineage, LogLine, ProjectInfo, RunInfo, SystemPoint
from .errors import ProjectNotFoundError, StoreError
from .naming import RunRef, normalize_project, parse_run_ref
from .recovery import recover
from .steps import STEP_MAX, STEP_MIN, as_integer
from .store import open_store
from .store.base import METRIC_DETAILS, MetricDetail, Store


class Api:
    """Read access to a store: projects, runs, metric histories, logs, system metrics, images and files."""

    def __init__(self, dir: str | os.PathLike[str] | None = None, *, create: bool = False) -> None:
        """Open the store in ``dir`` (else ``$RUNLANE_DIR``, else ``./.runlane``).

        A directory without a store is a ``StoreNotFoundError`` unless ``create=True``. A store this
        process may not write to is opened read-only: everything can be read, writes (``delete_run``,
        ``create_project``) raise ``StoreError``, and runs left behind by dead processes stay as they are
        until a process that may write opens the store.
        """
        self.dir: Path = Settings.resolve(dir).dir
        self._store: Store = open_store(self.dir, create=create, allow_read_only=True)
        if not self._store.read_only:
            recover(self._store, self.dir)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def projects(self) -> list[ProjectInfo]:
        """Every project with its display key and number of runs."""
        return self._store.projects()

    def project(self, name: str) -> ProjectInfo:
        """One project by name; ``ProjectNotFoundError`` if there is none."""
        wanted = normalize_project(name)
        for project in self._store.projects():
            if project.name == wanted:
                return project
        raise ProjectNotFoundError(wanted)

    def create_project(self, name: str, *, key: str | None = None, exist_ok: bool = False) -> ProjectInfo:
        """Create an empty project (runs create theirs on first use).

        ``key`` chooses its display key (2-4 capital letters, e.g. ``"MMP"`` for run ids ``MMP-1``, ...);
        by default one is derived from the name. If the project exists already: return it with
        ``exist_ok=True``, else ``ValueError``.
        """
        return self._store.create_project(name, key=key, exist_ok=exist_ok)

    def runs(
        self,
        project: str | None = None,
        status: str | Iterable[str] | None = None,
        tags: str | Iterable[str] | None = None,
        *,
        metrics: MetricDetail = "all",
    ) -> list[RunInfo]:
        """Runs, newest first; filter by project, by status (one or several) and by tags (all must match).

        ``metrics="all"`` (the default) reads every metric's aggregates into ``RunInfo.metrics``, which costs
        as much as the runs have metrics; ``metrics="primary"`` reads only the primary metric's (enough
        for ``best_value``/``best_step``), so a listing of many wide runs stays fast. ``run(ref)`` always
        has them all.
        """
        if metrics not in METRIC_DETAILS:
            raise ValueError(f"metrics must be 'all' or 'primary', got {metrics!r}")
        statuses = [status] if isinstance(status, str) else list(status) if status is not None else None
        tag_list = [tags] if isinstance(tags, str) else list(tags) if tags is not None else None
        return self._store.runs(project=project, statuses=statuses, tags=tag_list, metrics=metrics)

    def run(self, ref: int | str) -> RunInfo:
        """One run by numeric id, display id (``"MMP-42"``) or uid."""
        return self._store.run(parse_run_ref(ref))

    @overload
    def history(
        self, ref: int | str, key: str, stitched: bool = ..., start: int | None = ..., end: int | None = ...,
        buckets: None = ...,
    ) -> History: ...  # fmt: skip

    @overload
    def history(
        self, ref: int | str, key: str, stitched: bool = ..., start: int | None = ..., end: int | None = ...,
        *, buckets: int,
    ) -> list[Bucket]: ...  # fmt: skip

    def history(
        self,
        ref: int | str,
        key: str,
        stitched: bool = False,
        start: int | None = None,
        end: int | None = None,
        buckets: int | None = None,
    ) -> History | list[Bucket]:
        """The points of metric ``key`` of a run, in step order.

        ``stitched=True`` continues the series back through the run's fork ancestors (each point's
        ``run_id`` says which run it comes from); ``start``/``end`` keep only steps in that inclusive
        range; ``buckets=N`` returns at most N step buckets (``start``, ``end``, ``min``, ``max``,
        ``last``, ``count``, ``run_id``) instead of points, so a long series stays cheap to draw and a
        single spike stays visible.
        """
        run_id = self._resolve(ref)
        start = _step_bound(start, "start")
        end = _step_bound(end, "end")
        if start is not None and end is not None and start > end:
            raise ValueError(f"start ({start}) is after end ({end})")
        if buckets is not None:
            count = as_integer(buckets)
            if count is None or count < 1:
                raise ValueError(f"buckets must be a positive integer, got {buckets!r}")
            buckets = count
            return self._store.downsampled(run_id, key, buckets, stitched=stitched, start=start, end=end)
        if stitched:
            return self._store.stitched_history(run_id, key, start, end)
        return self._store.history(run_id, key, start, end)

    def lineage(self, ref: int | str) -> Lineage:
        """The run's place in its fork tree: ancestors from the root down, direct forks, and the root."""
        store = self._store
        run = store.run(parse_run_ref(ref))
        chain = [store.run(RunRef("id", node.run_id)) for node in store.ancestry(run.id)[:-1]]
        return Lineage(
            run=run, root=chain[0] if chain else run, ancestors=tuple(chain), children=tuple(store.forks(run.id))
        )

    def delete_run(self, ref: int | str) -> None:
        """Delete a run and everything logged to it.

        Refused (``DeletionRefusedError``) while other runs fork from it or nest in it, or while a live
        process is writing to it.
        """
        self._store.delete_run(parse_run_ref(ref))

    def logs(self, ref: int | str) -> list[LogLine]:
        """The run's text log lines, in the order they were written."""
        return self._store.logs(self._resolve(ref))

    def system_metrics(self, ref: int | str, key: str | None = None) -> dict[str, list[SystemPoint]]:
        """System metrics of a run: for each key (``sys/cpu_percent``, ``sys/gpu0/util_percent``, ...) its
        ``SystemPoint(time, value)`` samples in time order. With ``key``, only that key (an empty dict if
        it was never sampled)."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a string like 'sys/cpu_percent', got {type(key).__name__}")
        return self._store.system_metrics(self._resolve(ref), key)

    def images(self, ref: int | str, key: str | None = None) -> list[ImageInfo]:
        """Images logged with ``log_image()`` (only those of ``key`` if given), in step order; each item's
        ``path`` is a PNG file in the store: read it, do not change it (identical images share one file)."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a string, got {type(key).__name__}")
        return self._store.images(self._resolve(ref), key)

    def environment(self, ref: int | str) -> dict[str, Any] | None:
        """What ``init(capture_env=True)`` recorded (Python, platform, host, GPUs, packages, git, command
        line, environment variables with secrets redacted), or None if the run has no capture."""
        found = self._store.run_file(self._resolve(ref), "environment")
        if found is None:
            return None
        value = wire.loads(found.path.read_bytes())
        if not isinstance(value, dict):
            raise StoreError(f"the environment file {found.path} does not hold a JSON object")
        return value

    def code_snapshot(self, ref: int | str) -> Path | None:
        """The zip that ``init(snapshot_code=True)`` recorded (read it, do not change it: runs with
        identical code share one file), or None if the run has no snapshot."""
        found = self._store.run_file(self._resolve(ref), "code")
        return None if found is None else found.path

    def _resolve(self, ref: int | str) -> int:
        return self._store.resolve(parse_run_ref(ref))


def _step_bound(value: object, name: str) -> int | None:
    """A ``start``/``end`` argument as a plain int (numpy and torch integers too, as ``log(step=)`` takes)."""
    if value is None:
        return None
    step = as_integer(value)
    if step is None:
        raise ValueError(f"{name} must be an integer step or None, got {type(value).__name__} {value!r}")
    if not STEP_MIN <= step <= STEP_MAX:
        raise ValueError(f"{name}={step} is outside the range of steps")
    return step
