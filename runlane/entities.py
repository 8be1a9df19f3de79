"""What the read API returns: immutable records with no IO.

``MetricPoint`` and ``LogLine`` are named tuples rather than dataclasses because a history read
builds hundreds of thousands of them and a tuple is several times cheaper to create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class MetricPoint(NamedTuple):
    """One value of one metric at one step."""

    step: int
    value: float
    time: float
    stage: str | None


class LogLine(NamedTuple):
    """One line of a run's text log: ``stream`` is ``stdout``, ``stderr`` or ``log`` (``log_text``)."""

    time: float
    stream: str
    text: str


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
