"""The store interface: what every backend (SQLite, PostgreSQL, the HTTP client) must provide.

The SDK never talks to a database directly: its writer thread hands journal batches to ``ingest`` and
lifecycle events to a few other primitives; readers use the read half. Everything here is expressed in
run references and plain records so that one contract test suite can hold every backend to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import downsample
from ..entities import Bucket, History, ImageInfo, LogLine, ProjectInfo, RunFile, RunInfo, SystemPoint
from ..lineage import Node, Segment, segments
from ..naming import RunRef

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class WriterSpec(NamedTuple):
    """A process about to write to a run, and the journal it writes to (relative to the store)."""

    id: str
    host: str
    pid: int
    pid_started: float | None
    journal: str


@dataclass(frozen=True)
class NewRun:
    """What a new run starts with; ``uid`` is minted by the client so creation can be retried."""

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


class Store(ABC):
    """A place runs live. Implementations are used by one thread at a time."""

    # -- writes: runs and writers ---------------------------------------------------------------

    @abstractmethod
    def create_run(self, new: NewRun, writer: WriterSpec) -> RunInfo:
        """Create the run (allocating its display id atomically) and register ``writer`` on it."""

    @abstractmethod
    def attach(self, ref: RunRef, writer: WriterSpec) -> tuple[RunInfo, int]:
        """Reopen an existing run for ``writer`` (status back to running); return it and its next step."""

    @abstractmethod
    def add_writer(self, run_id: int, writer: WriterSpec) -> None:
        """Register another journal of a process that already writes to ``run_id`` (its console capture's)
        as a writer of that run; the run itself is unchanged."""

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
    def heartbeat(self, writer_ids: Sequence[str], at: float) -> None:
        """Record that these writers are alive."""

    @abstractmethod
    def open_writers(self) -> list[OpenWriter]:
        """Writers not closed yet, for liveness checks and replay."""

    @abstractmethod
    def fail_abandoned(self, run_ids: Iterable[int], reasons: dict[int, str], ended_at: dict[int, float]) -> list[int]:
        """Mark running runs among ``run_ids`` that have no open writer left as failed; return them."""

    # -- reads ----------------------------------------------------------------------------------

    @abstractmethod
    def projects(self) -> list[ProjectInfo]:
        """Every project, by name."""

    @abstractmethod
    def runs(
        self,
        project: str | None = None,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first, optionally of one project, with one of ``statuses`` and all of ``tags``."""

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

    # -- derived reads: the same for every backend ----------------------------------------------

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
    def logs(self, run_id: int) -> list[LogLine]:
        """The run's text log lines in the order they were written."""

    @abstractmethod
    def system_metrics(self, run_id: int, key: str | None = None) -> dict[str, list[SystemPoint]]:
        """System metric samples of a run per ``sys/...`` key (only ``key`` if given), in time order."""

    @abstractmethod
    def images(self, run_id: int, key: str | None = None) -> list[ImageInfo]:
        """Images of a run (only those of ``key`` if given) in step order, then the order they were logged."""

    @abstractmethod
    def run_file(self, run_id: int, kind: str) -> RunFile | None:
        """The latest run-level file of ``kind`` (``environment``, ``code``), or None if none was recorded."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store object is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
