"""What the read API returns: immutable records with no IO.

Files (images, snapshots, environment documents) appear as blob names, never as paths: the same
entities come back from a local store and from a server (``runlane.wire`` gives their JSON shapes).

``MetricPoint`` and ``LogLine`` are named tuples rather than dataclasses because a history read
builds hundreds of thousands of them and a tuple is several times cheaper to create.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload


class MetricPoint(NamedTuple):
    """One value of one metric at one step; ``run_id`` is the run it was logged to (in a stitched
    history, the ancestor it comes from)."""

    step: int
    value: float
    time: float
    stage: str | None
    run_id: int


@dataclass(frozen=True, slots=True)
class Bucket:
    """Points of one step bucket of a downsampled series.

    ``start``/``end`` are its first and last step; ``min``/``max`` ignore NaN (None when every value is
    NaN); ``last`` is the value at its highest step, exactly as logged; ``run_id`` owns that step.
    """

    start: int
    end: int
    min: float | None
    max: float | None
    last: float
    count: int
    run_id: int


class History(Sequence[MetricPoint]):
    """The points of one metric in step order: a sequence of ``MetricPoint`` backed by columns.

    Reads hand back columns (``steps``, ``values``, ``times``, ``stages``) without building a tuple per
    point, which is most of the cost of a long history; points are built as you index or iterate.
    """

    __slots__ = ("run_ids", "stages", "steps", "times", "values")

    def __init__(
        self,
        steps: list[int],
        values: list[float],
        times: list[float],
        stages: list[str | None],
        run_ids: list[int],
    ) -> None:
        self.steps = steps
        self.values = values
        self.times = times
        self.stages = stages
        self.run_ids = run_ids

    @classmethod
    def empty(cls) -> History:
        return cls([], [], [], [], [])

    @classmethod
    def concat(cls, parts: Sequence[History]) -> History:
        """One history from several in order (the pieces of a stitched series)."""
        if len(parts) == 1:
            return parts[0]
        out = cls.empty()
        for part in parts:
            out.steps += part.steps
            out.values += part.values
            out.times += part.times
            out.stages += part.stages
            out.run_ids += part.run_ids
        return out

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> MetricPoint: ...

    @overload
    def __getitem__(self, index: slice) -> History: ...

    def __getitem__(self, index: int | slice) -> MetricPoint | History:
        if isinstance(index, slice):
            return History(
                self.steps[index], self.values[index], self.times[index], self.stages[index], self.run_ids[index]
            )
        return MetricPoint(
            self.steps[index], self.values[index], self.times[index], self.stages[index], self.run_ids[index]
        )

    def __iter__(self) -> Iterator[MetricPoint]:
        return map(MetricPoint, self.steps, self.values, self.times, self.stages, self.run_ids)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            mine = (self.steps, self.values, self.times, self.stages, self.run_ids)
            return mine == (other.steps, other.values, other.times, other.stages, other.run_ids)
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if len(self) <= 6:
            return f"History({list(self)!r})"
        return f"History([{self[0]!r}, {self[1]!r}, ..., {self[-1]!r}], {len(self)} points)"


class LogLine(NamedTuple):
    """One line of a run's text log: ``stream`` is ``stdout``, ``stderr`` or ``log`` (``log_text``).

    ``id`` orders the run's lines and is the cursor for reading on after them (``logs(after=id)``).
    """

    time: float
    stream: str
    text: str
    id: int


class SystemPoint(NamedTuple):
    """One sample of one system metric (``sys/...``): wall time and value."""

    time: float
    value: float


class SystemSample(NamedTuple):
    """One sample of one system metric with its key, as paged reads return them; ``id`` is the cursor
    for reading on after it (``system_samples(after=id)``)."""

    key: str
    time: float
    value: float
    id: int


class ImageInfo(NamedTuple):
    """One image logged with ``run.log_image()``; ``blob`` names its PNG in the store (``Api.image_bytes``)."""

    key: str
    step: int
    caption: str | None
    blob: str
    width: int
    height: int
    time: float


class RunFile(NamedTuple):
    """A run-level file: ``kind`` is ``environment`` (a JSON blob) or ``code`` (a zip blob)."""

    kind: str
    blob: str
    time: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class MetricSummary:
    """Aggregates of one metric series, maintained at ingest (never a scan of the points)."""

    count: int
    first_step: int
    last_step: int
    last_value: float
    min: float | None
    min_step: int | None
    max: float | None
    max_step: int | None
    last_time: float


@dataclass(frozen=True)
class WriterInfo:
    """A process that writes (or wrote) to a run."""

    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    closed_at: float | None
    owner: bool  # decides the run's final status; False: a side process attached beside a live owner


@dataclass(frozen=True)
class ProjectInfo:
    """A project: a path like ``cv/resnet50`` with a short display key like ``CR``."""

    id: int
    name: str
    key: str
    created_at: float
    run_count: int


@dataclass(frozen=True)
class RunInfo:
    """Everything the store knows about one run, as of the moment it was read."""

    id: int
    uid: str
    display_id: str
    project: str
    name: str | None
    alias: str | None
    notes: str | None
    status: str
    status_reason: str | None
    created_at: float
    started_at: float
    ended_at: float | None
    config: dict[str, Any]
    tags: tuple[str, ...]
    summary: dict[str, Any]
    primary_metric: str | None
    primary_mode: str | None
    best_value: float | None
    best_step: int | None
    parent_run_id: int | None
    fork_run_id: int | None
    fork_step: int | None
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    writers: tuple[WriterInfo, ...] = ()

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; ``None`` while the run has not ended."""
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True)
class Lineage:
    """Where a run sits in its fork tree.

    ``root`` names the group (the "experiment") the run belongs to; ``ancestors`` runs from the root down
    to the run's parent (empty for a root); ``children`` are the run's direct forks, each with its
    ``fork_step``.
    """

    run: RunInfo
    root: RunInfo
    ancestors: tuple[RunInfo, ...]
    children: tuple[RunInfo, ...]
