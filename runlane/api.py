"""The read API used by scripts, the CLI and the server: ``runlane.Api(dir=None)``.

Opening it writes nothing (a server opens stores to read; a reader may have no write permission): what
dead processes left behind is delivered by writers (every ``init()``, and the drain of a process that
died) or on demand by ``Api.recover()`` / ``runlane recover``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from . import wire
from .config import ENV_URL, Settings
from .entities import (
    Bucket,
    History,
    ImageInfo,
    Lineage,
    LogLine,
    ProjectInfo,
    RunInfo,
    SystemPoint,
    SystemSample,
)
from .errors import ProjectNotFoundError, StoreError
from .naming import RunRef, normalize_project, parse_run_ref
from .recovery import recover
from .spool import Spool
from .steps import STEP_MAX, STEP_MIN, as_integer
from .store import open_store
from .store.base import METRIC_DETAILS, MetricDetail, Store
from .store.runs_query import RunsPage, RunsQuery

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


class Api:
    """Read access to a store: projects, runs, metric histories, logs, system metrics, images and files."""

    def __init__(
        self,
        dir: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        create: bool = False,
    ) -> None:
        """Open the store in ``dir`` (else ``$RUNLANE_DIR``, else ``./.runlane``), or the runlane server at
        ``url`` (``http(s)://host:port``; else ``$RUNLANE_URL`` when no ``dir`` is given), which returns
        the same entities. ``api_key`` (else ``$RUNLANE_API_KEY``) is sent to a server that has keys.

        A directory without a store is a ``StoreNotFoundError`` unless ``create=True``. A store this
        process may not write to is opened read-only: everything can be read, writes (``delete_run``,
        ``create_project``) raise ``StoreError``, and runs left behind by dead processes stay as they are
        until a process that may write opens the store (or ``recover()`` is called).
        """
        if url is not None and dir is not None:
            raise ValueError("pass dir= (a local store) or url= (a runlane server), not both")
        url = url or (os.environ.get(ENV_URL) or None if dir is None else None)
        #: The local store's directory (None for a server).
        self.dir: Path | None = None
        #: The server's URL (None for a local store).
        self.url: str | None = None
        if url is not None:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"url={url!r} is not a runlane server's URL; use http://host:port or https://...")
            self.url = url
            self._settings = Settings.resolve(url=url, api_key=api_key)
            self.store: str = self._settings.store
            self._store: Store = open_store(url, api_key=self._settings.api_key)
            return
        settings = Settings.resolve(dir)
        self._settings = settings
        self.store = settings.store
        self.dir = settings.dir
        self._store = open_store(settings.store, create=create, allow_read_only=True)

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

    def runs_page(
        self,
        project: str | None = None,
        *,
        sort: str = "created_at",
        descending: bool = True,
        status: str | Iterable[str] | None = None,
        tags: str | Iterable[str] | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunsPage:
        """One page of runs for a table: sorted by a column, ``config.<field>``, ``summary.<field>`` or
        ``best`` (the primary metric's best), filtered by status and tags, searched over display id, name,
        alias and notes. Pass ``page.next_cursor`` as ``cursor`` (with the same arguments) for the next."""
        query = RunsQuery(
            project=normalize_project(project) if project is not None else None,
            sort=sort,
            descending=descending,
            statuses=tuple(_strings(status, "status") or ()),
            tags=tuple(_strings(tags, "tags") or ()),
            search=search or None,
            limit=limit,
            cursor=cursor,
        ).check()
        return self._store.runs_page(query)

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

    def recover(self) -> list[int]:
        """Deliver what dead processes left of their runs and mark the runs they abandoned ``failed``;
        return the ids of the runs failed.

        Opening an ``Api`` writes nothing: this is the one read-side call that does what every ``init()``
        does when it opens a store (and a drain does when its training process dies): replay this
        machine's leftover journals (the store's own ``journals/`` and this process's spool), then close
        writers whose process is gone and fail the runs they owned. ``StoreError`` on a read-only store.
        """
        if self._store.read_only:
            raise StoreError(f"the store {self.store} is read-only for this process: recovery writes to it")
        settings = self._settings
        return recover(self._store, Spool(settings.spool, settings.store), settings.tunables)

    def logs(
        self,
        ref: int | str,
        *,
        after: int | None = None,
        limit: int | None = None,
        search: str | None = None,
        streams: str | Iterable[str] | None = None,
    ) -> list[LogLine]:
        """The run's text log lines, in the order they were written, each with its ``id``.

        To page or tail a live run, pass the ``id`` of the last line you have as ``after``: you get every
        later line exactly once (``limit`` caps how many per call). ``search`` keeps lines containing it
        (ASCII case ignored); ``streams`` keeps lines of one or several streams (``stdout``, ``stderr``,
        ``log``).
        """
        _check_cursor(after)
        _check_limit(limit)
        if search is not None and not isinstance(search, str):
            raise TypeError(f"search must be a string, got {type(search).__name__}")
        stream_list = _strings(streams, "streams")
        return self._store.logs(self._resolve(ref), after=after, limit=limit, search=search, streams=stream_list)

    def system_metrics(self, ref: int | str, key: str | None = None) -> dict[str, list[SystemPoint]]:
        """System metrics of a run: for each key (``sys/cpu_percent``, ``sys/gpu0/util_percent``, ...) its
        ``SystemPoint(time, value)`` samples in time order. With ``key``, only that key (an empty dict if
        it was never sampled)."""
        _check_key(key, "'sys/cpu_percent'")
        return self._store.system_metrics(self._resolve(ref), key)

    def system_samples(
        self, ref: int | str, key: str | None = None, *, after: int | None = None, limit: int | None = None
    ) -> list[SystemSample]:
        """System metric samples of a run (only ``key`` if given) as ``SystemSample(key, time, value, id)``
        in the order they were stored: to tail a live run, pass the last ``id`` you have as ``after``."""
        _check_key(key, "'sys/cpu_percent'")
        _check_cursor(after)
        _check_limit(limit)
        return self._store.system_samples(self._resolve(ref), key, after=after, limit=limit)

    def images(self, ref: int | str, key: str | None = None) -> list[ImageInfo]:
        """Images logged with ``log_image()`` (only those of ``key`` if given), in step order; each item's
        ``blob`` names its PNG: read it with ``image_bytes`` or ``open_image``."""
        _check_key(key, "like 'samples'")
        return self._store.images(self._resolve(ref), key)

    def image_bytes(self, image: ImageInfo) -> bytes:
        """The PNG bytes of an image from ``images()``."""
        if not isinstance(image, ImageInfo):
            raise TypeError(f"image_bytes takes an ImageInfo from Api.images(), got {type(image).__name__}")
        return self._store.read_blob(image.blob)

    def open_image(self, image: ImageInfo) -> PILImage:
        """An image from ``images()`` as a PIL image (loaded: it holds no file open)."""
        import io

        from PIL import Image

        picture = Image.open(io.BytesIO(self.image_bytes(image)))
        picture.load()
        return picture

    def environment(self, ref: int | str) -> dict[str, Any] | None:
        """What ``init(capture_env=True)`` recorded (Python, platform, host, GPUs, packages, git, command
        line, environment variables with secrets redacted), or None if the run has no capture."""
        found = self._store.run_file(self._resolve(ref), "environment")
        if found is None:
            return None
        value = wire.loads(self._store.read_blob(found.blob))
        if not isinstance(value, dict):
            raise StoreError(f"the environment blob {found.blob} does not hold a JSON object")
        return value

    @overload
    def code_snapshot(self, ref: int | str) -> bytes | None: ...

    @overload
    def code_snapshot(self, ref: int | str, *, extract_to: str | os.PathLike[str]) -> Path | None: ...

    def code_snapshot(self, ref: int | str, *, extract_to: str | os.PathLike[str] | None = None) -> bytes | Path | None:
        """The zip that ``init(snapshot_code=True)`` recorded, as bytes (``zipfile.ZipFile(io.BytesIO(...))``
        reads it), or None if the run has no snapshot.

        With ``extract_to``, the files are written under that directory instead (created if needed;
        executable files stay executable) and the directory is returned.
        """
        found = self._store.run_file(self._resolve(ref), "code")
        if found is None:
            return None
        data = self._store.read_blob(found.blob)
        if extract_to is None:
            return data
        return _extract(data, Path(os.fspath(extract_to)))

    def _resolve(self, ref: int | str) -> int:
        return self._store.resolve(parse_run_ref(ref))


def _check_key(key: object, example: str) -> None:
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a string {example}, got {type(key).__name__}")


def _check_cursor(after: object) -> None:
    if after is None:
        return
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= STEP_MAX:
        raise ValueError(f"after must be the id of a line or sample you were given (an integer >= 0), got {after!r}")


def _check_limit(limit: object) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= STEP_MAX:
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


def _strings(value: str | Iterable[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} must be strings, got {type(item).__name__} {item!r}")
    return items


def _extract(data: bytes, target: Path) -> Path:
    import io
    import zipfile

    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            # extract() strips absolute paths and ".." from the name, so nothing lands outside target.
            written = Path(archive.extract(entry, target))
            if (entry.external_attr >> 16) & 0o100:
                written.chmod(0o755)
    return target


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
