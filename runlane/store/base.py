"""The store interface: what every backend (SQLite, PostgreSQL, the HTTP client) must provide.

The SDK never talks to a database directly: its drain hands journal batches to ``ingest`` and
lifecycle events to a few other primitives; readers use the read half. Everything here is expressed in
run references and plain records so that one contract test suite can hold every backend to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, NamedTuple

from .. import downsample
from ..entities import (
    Bucket,
    History,
    ImageInfo,
    LogLine,
    ProjectInfo,
    RunFile,
    RunInfo,
    SystemPoint,
    SystemSample,
)
from ..lineage import (
    Node,
    Segment,
    check_fork_step,
    inherit_config,
    inherit_tags,
    resolve_parent,
    segments,
)
from ..naming import RunRef

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from .keys import ApiKeyInfo  # only for hints: hashlib and secrets stay off init()'s import path
    from .runs_query import RunsPage, RunsQuery


#: How much of each run's metrics a listing reads: every series' aggregates, or only the primary metric's
#: (one lookup per run, so a listing costs the same however many metrics the runs have).
MetricDetail = Literal["all", "primary"]
METRIC_DETAILS: tuple[MetricDetail, ...] = ("all", "primary")


class WriterSpec(NamedTuple):
    """A process about to write to a run, and the journal it writes to (relative to the store).

    ``pid_namespace`` says where ``pid`` means something (see ``runlane.liveness``); None: not known.
    """

    id: str
    host: str
    pid: int
    pid_started: float | None
    journal: str
    pid_namespace: str | None = None


class Attached(NamedTuple):
    """A run reopened by ``Store.attach``: the run, the step its counter continues at, and whether the new
    writer owns the run (decides its final status) or is a side process beside a live owner."""

    info: RunInfo
    next_step: int
    owner: bool


@dataclass(frozen=True)
class ForkRequest:
    """A fork as the user asked for it: the run named and the step; the store resolves the parent that
    owns the step (``runlane.lineage``) and what the fork inherits from it, in ``create_run``'s
    transaction. ``keep_project``: the child keeps the project it was given instead of the parent's."""

    ref: RunRef
    step: int
    inherit_config: bool = True
    inherit_tags: bool = False
    keep_project: bool = False


@dataclass(frozen=True)
class NewRun:
    """What a new run starts with; ``uid`` is minted by the client so creation can be retried.

    A fork passes ``fork`` (the request); ``fork_run_id``/``fork_step`` are the resolved values, which
    ``create_run`` fills in from it.

    ``created_at``/``started_at`` (None: when the store creates it) keep the time a run began when it
    reaches the store later than that: a copy made by ``runlane sync``, a remote run created once its
    server is back after an outage.
    """

    uid: str
    project: str
    name: str | None = None
    alias: str | None = None
    notes: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    status: str = "running"
    parent_run_id: int | None = None
    fork_run_id: int | None = None
    fork_step: int | None = None
    fork: ForkRequest | None = None
    created_at: float | None = None
    started_at: float | None = None


class OpenWriter(NamedTuple):
    """A writer the store has not seen close: alive, or dead with a journal left to replay."""

    id: str
    run_id: int
    host: str
    pid: int
    pid_started: float | None
    journal: str
    offset: int
    heartbeat_at: float
    last_record_at: float | None
    pid_namespace: str | None
    owner: bool


class Store(ABC):
    """A place runs live. One object may be used from many threads at once (a server reads from many while
    one writes); a reader sees only committed data."""

    #: True when this process may only read the store (no write permission); every write raises StoreError.
    read_only: bool = False

    # -- writes: runs and writers ---------------------------------------------------------------

    @abstractmethod
    def create_run(self, new: NewRun, writer: WriterSpec) -> RunInfo:
        """Create the run (allocating its display id atomically) and register ``writer`` on it as its owner.

        Idempotent by uid and writer: retried with both (an answer that was lost), it returns the run it
        made; a uid taken by another writer's run is a ``ValueError``.
        """

    @abstractmethod
    def attach(self, ref: RunRef, writer: WriterSpec, *, project: str | None = None) -> Attached:
        """Reopen an existing run for ``writer`` (status back to running).

        With ``project``, a run of another project is a ``ValueError`` and nothing changes. Retried with a
        writer already registered on the run (an answer that was lost), it returns that registration.

        ``writer`` becomes the run's owner unless an owner writer is still open, atomically (of two
        processes attaching at once, one owns). Callers replay dead writers' journals first (recovery),
        so an open owner is a live one and the next step counts everything the dead ones logged.
        """

    @abstractmethod
    def add_writer(self, run_id: int, writer: WriterSpec) -> None:
        """Register another journal of a process that already writes to ``run_id`` (its console capture's)
        as a writer of that run, never its owner: its end closes only itself. The run itself is unchanged."""

    @abstractmethod
    def ingest(self, writer_id: str, run_id: int, records: list[list[Any]], start: int, end: int) -> bool:
        """Apply journal records ``[start, end)`` of a writer exactly once, in one transaction.

        Returns False when the store already holds them (a retry or a second replayer).
        """

    @abstractmethod
    def close_writer(self, writer_id: str, status: str | None = None, reason: str | None = None) -> None:
        """Mark a writer closed; with ``status``, also end the run with it (writing the best metric)."""

    @abstractmethod
    def create_project(self, name: str, *, key: str | None = None, exist_ok: bool = False) -> ProjectInfo:
        """Create an empty project, with display ``key`` if given (else one derived from the name).

        If one of that name exists, return it (``exist_ok``) or raise ``ValueError``. Atomic: concurrent
        callers get the same project.
        """

    @abstractmethod
    def update_project(
        self, name: str, *, rename: str | None = None, meta: Mapping[str, str | None] | None = None
    ) -> ProjectInfo:
        """Rename a project and/or set its metadata keys (a value of None deletes the key), in one transaction.

        ``ProjectNotFoundError`` if there is no project ``name``; renaming onto a name in use is a
        ``ValueError``. The display key and the runs stay as they are.
        """

    @abstractmethod
    def heartbeat(self, writer_ids: Sequence[str], at: float) -> None:
        """Record that these writers are alive."""

    @abstractmethod
    def open_writers(self) -> list[OpenWriter]:
        """Writers not closed yet, for liveness checks and replay."""

    @abstractmethod
    def fail_abandoned(self, run_ids: Iterable[int], reasons: dict[int, str], ended_at: dict[int, float]) -> list[int]:
        """Mark running runs among ``run_ids`` that have no open owner writer left as failed; return them.

        Side writers never keep a run alive: once its owner is gone without ending it, it has failed.
        """

    # -- reads ----------------------------------------------------------------------------------

    @abstractmethod
    def projects(self) -> list[ProjectInfo]:
        """Every project, by name."""

    @abstractmethod
    def project_meta(self, name: str) -> dict[str, str]:
        """The metadata keys of a project (``update_project``); ``ProjectNotFoundError`` if there is none."""

    @abstractmethod
    def runs(
        self,
        project: str | None = None,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        *,
        metrics: MetricDetail = "all",
    ) -> list[RunInfo]:
        """Runs, newest first, optionally of one project, with one of ``statuses`` and all of ``tags``.

        ``metrics="primary"`` fills ``RunInfo.metrics`` with the primary metric's aggregates only.
        """

    def runs_page(self, query: RunsQuery) -> RunsPage:
        """One page of runs (see ``runlane.store.runs_query`` for sort keys, filters and the cursor).

        This reference implementation reads every matching run; backends override it with an indexed
        query that returns the same pages.
        """
        from .runs_query import reference_page  # only readers that page pay for it, never init()

        query.check()
        candidates = self.runs(query.project, list(query.statuses) or None, list(query.tags) or None, metrics="primary")
        return reference_page(candidates, query)

    @abstractmethod
    def run(self, ref: RunRef) -> RunInfo:
        """One run; ``RunNotFoundError`` if the reference names none."""

    @abstractmethod
    def resolve(self, ref: RunRef) -> int:
        """The numeric id of the run ``ref`` names; ``RunNotFoundError`` if none."""

    @abstractmethod
    def history(self, run_id: int, key: str, start: int | None = None, end: int | None = None) -> History:
        """The points of one metric of one run in step order (only ``start <= step <= end`` if given)."""

    @abstractmethod
    def point_arrays(
        self, run_id: int, key: str, start: int | None = None, end: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Steps and values of one metric as numpy arrays in step order, for downsampling."""

    @abstractmethod
    def ancestry(self, run_id: int) -> list[Node]:
        """The run and its fork ancestors, root first, each with its own user-metric step range."""

    @abstractmethod
    def forks(self, run_id: int) -> list[RunInfo]:
        """The runs forked directly from this one, oldest first."""

    @abstractmethod
    def delete_run(self, ref: RunRef) -> None:
        """Delete a run and everything logged to it; ``DeletionRefusedError`` while other runs fork from or
        nest in it, or a live process writes to it."""

    def patience(self, seconds: float) -> AbstractContextManager[None]:
        """Within this block, give up on a busy store (locked, a server not answering) after about
        ``seconds`` with ``StoreUnavailableError`` instead of the backend's usual wait, so a caller with a
        deadline (``finish(timeout=)``) keeps it. Backends that never wait long need not override it."""
        return nullcontext()

    # -- derived reads: the same for every backend ----------------------------------------------

    def resolve_fork(self, new: NewRun) -> NewRun:
        """``new`` with its fork resolved: the parent is the ancestor that owns the fork step, the step is
        checked against the range the chain holds, and config and tags are inherited from that parent.

        Backends call it inside ``create_run``'s transaction, so the parent cannot change in between.
        """
        fork = new.fork
        if fork is None:
            return new
        requested = self.run(fork.ref)
        chain = self.ancestry(requested.id)
        step = check_fork_step(chain, fork.step, requested.display_id)
        parent_id = resolve_parent(chain, step)
        parent = requested if parent_id == requested.id else self.run(RunRef("id", parent_id))
        return replace(
            new,
            project=new.project if fork.keep_project else parent.project,
            config=inherit_config(parent.config, new.config, fork.inherit_config),
            tags=inherit_tags(parent.tags, new.tags, fork.inherit_tags),
            fork_run_id=parent_id,
            fork_step=step,
            fork=None,
        )

    def stitched_history(self, run_id: int, key: str, start: int | None = None, end: int | None = None) -> History:
        """The run's series continued back through its fork ancestors (see ``runlane.lineage``)."""
        parts = []
        for segment in segments(self.ancestry(run_id)):
            bounds = segment.clip(start, end)
            if bounds is not None:
                parts.append(self.history(segment.run_id, key, *bounds))
        return History.concat(parts) if parts else History.empty()

    def downsampled(
        self,
        run_id: int,
        key: str,
        count: int,
        *,
        stitched: bool = False,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Bucket]:
        """At most ``count`` step buckets (min, max, last, count) of a plain or stitched series."""
        cuts = segments(self.ancestry(run_id)) if stitched else [Segment(run_id, None, None)]
        pieces = []
        for segment in cuts:
            bounds = segment.clip(start, end)
            if bounds is not None:
                steps, values = self.point_arrays(segment.run_id, key, *bounds)
                pieces.append((steps, values, segment.run_id))
        return downsample.buckets(pieces, count, start, end)

    @abstractmethod
    def logs(
        self,
        run_id: int,
        *,
        after: int | None = None,
        limit: int | None = None,
        search: str | None = None,
        streams: Sequence[str] | None = None,
    ) -> list[LogLine]:
        """The run's text log lines in the order they were written, each with its ``id``.

        ``after`` is a cursor: only lines written after the line with that id (a reader tailing a live
        run passes the last id it got and receives every later line exactly once, because ids increase
        in the order lines are committed). ``limit`` caps how many come back; ``search`` keeps lines that
        contain it, ignoring ASCII case; ``streams`` keeps lines of those streams (``stdout``, ``stderr``,
        ``log``). Arguments are checked by the caller (``runlane.api``).
        """

    @abstractmethod
    def system_samples(
        self, run_id: int, key: str | None = None, *, after: int | None = None, limit: int | None = None
    ) -> list[SystemSample]:
        """System metric samples of a run (only ``key`` if given) in the order they were committed, each
        with its ``id``: a cursor for ``after`` as in ``logs``."""

    def system_metrics(self, run_id: int, key: str | None = None) -> dict[str, list[SystemPoint]]:
        """System metric samples of a run per ``sys/...`` key (only ``key`` if given), keys sorted, each
        key's samples in time order (samples of one time in the order they were committed)."""
        out: dict[str, list[SystemPoint]] = {}
        for sample in self.system_samples(run_id, key):
            out.setdefault(sample.key, []).append(SystemPoint(sample.time, sample.value))
        for points in out.values():
            points.sort(key=lambda point: point.time)  # stable: ties keep commit order
        return dict(sorted(out.items()))

    @abstractmethod
    def images(self, run_id: int, key: str | None = None) -> list[ImageInfo]:
        """Images of a run (only those of ``key`` if given) in step order, then the order they were logged."""

    @abstractmethod
    def run_file(self, run_id: int, kind: str) -> RunFile | None:
        """The latest run-level file of ``kind`` (``environment``, ``code``), or None if none was recorded."""

    # -- API keys (see runlane.store.keys): the server's access control -------------------------

    @abstractmethod
    def create_api_key(self, name: str, secret_hash: str, *, read_only: bool) -> ApiKeyInfo:
        """Keep a new key by the hash of its secret; ``ValueError`` if a valid key has that name already."""

    @abstractmethod
    def api_keys(self) -> list[ApiKeyInfo]:
        """Every key, valid and revoked, by name."""

    @abstractmethod
    def revoke_api_key(self, name: str) -> ApiKeyInfo:
        """Revoke the valid key of that name (from now on it is refused); ``ValueError`` if there is none."""

    @abstractmethod
    def api_key(self, secret_hash: str) -> ApiKeyInfo | None:
        """The valid key whose secret has this hash, or None."""

    def has_api_keys(self) -> bool:
        """Whether any key is valid: a server over this store then requires one on every request."""
        return any(key.revoked_at is None for key in self.api_keys())

    # -- blobs: content-addressed files (see runlane.blobs) ------------------------------------

    @abstractmethod
    def put_blob(self, data: bytes, ext: str) -> str:
        """Store ``data`` as a blob named by its sha256 and ``ext`` (``png``, ``json``, ``zip``) and return the
        name. Idempotent: the same bytes give the same name and are stored once."""

    @abstractmethod
    def open_blob(self, name: str) -> BinaryIO:
        """The blob ``name`` opened for reading (the caller closes it). ``ValueError`` for a string that is
        not a blob name (nothing else ever reaches a path), ``StoreError`` if the store does not hold it."""

    def read_blob(self, name: str) -> bytes:
        """The bytes of the blob ``name`` (see ``open_blob``)."""
        with self.open_blob(name) as blob:
            return blob.read()

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store object is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
