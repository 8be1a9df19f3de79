"""What the read API returns: immutable records with no IO.

``MetricPoint`` and ``LogLine`` are named tuples rather than dataclasses because a history read
builds hundreds of thousands of them and a tuple is several times cheaper to create.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, overload


class MetricPoint(NamedTuple):
    """One value of one metric at one step."""

    step: int
    value: float
    time: float
    stage: str | None


class History(Sequence[MetricPoint]):
    """The points of one metric in step order: a sequence of ``MetricPoint`` backed by columns.

    Reads hand back columns (``steps``, ``values``, ``times``, ``stages``) without building a tuple per
    point, which is most of the cost of a long history; points are built as you index or iterate.
    """

    __slots__ = ("stages", "steps", "times", "values")

    def __init__(
        self,
        steps: list[int] | None = None,
        values: list[float] | None = None,
        times: list[float] | None = None,
        stages: list[str | None] | None = None,
    ) -> None:
        self.steps: list[int] = steps if steps is not None else []
        self.values: list[float] = values if values is not None else []
        self.times: list[float] = times if times is not None else []
        self.stages: list[str | None] = stages if stages is not None else [None] * len(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> MetricPoint: ...

    @overload
    def __getitem__(self, index: slice) -> History: ...

    def __getitem__(self, index: int | slice) -> MetricPoint | History:
        if isinstance(index, slice):
            return History(self.steps[index], self.values[index], self.times[index], self.stages[index])
        return MetricPoint(self.steps[index], self.values[index], self.times[index], self.stages[index])

    def __iter__(self) -> Iterator[MetricPoint]:
        return map(MetricPoint, self.steps, self.values, self.times, self.stages)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return (self.steps, self.values, self.times, self.stages) == (
                other.steps,
                other.values,
                other.times,
                other.stages,
            )
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if len(self) <= 6:
            return f"History({list(self)!r})"
        return f"History([{self[0]!r}, {self[1]!r}, ..., {self[-1]!r}], {len(self)} points)"


class LogLine(NamedTuple):
    """One line of a run's text log: ``stream`` is ``stdout``, ``stderr`` or ``log`` (``log_text``)."""

    time: float
    stream: str
    text: str


class SystemPoint(NamedTuple):
    """One sample of one system metric (``sys/...``): wall time and value."""

    time: float
    value: float


class ImageInfo(NamedTuple):
    """One image logged with ``run.log_image()``; ``path`` is a PNG file in the store (read-only)."""

    key: str
    step: int
    caption: str | None
    path: Path
    width: int
    height: int
    time: float


class RunFile(NamedTuple):
    """A run-level file in the store: ``kind`` is ``environment`` (JSON) or ``code`` (zip)."""

    kind: str
    path: Path
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


@dataclass(frozen=True)
class ProjectInfo:
    """A project: a path like ``cv/resnet50`` with a short display key like ``CR``."""

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
