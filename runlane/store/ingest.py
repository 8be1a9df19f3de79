"""Turn a batch of journal records of one run into the changes a store applies in one transaction.

Backend-neutral and pure, so the SQLite store, the PostgreSQL store and the server all interpret a
journal the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import journal
from ..diagnostics import log
from ..steps import STEP_MAX, STEP_MIN, in_range
from .chunks import Columns, normalize


@dataclass
class RunChanges:
    """Everything one batch does to one run, in the order the SDK calls happened."""

    series: dict[str, Columns] = field(default_factory=dict)
    lines: list[tuple[float, str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config_updates: list[dict[str, Any]] = field(default_factory=list)
    tag_ops: list[tuple[list[str], list[str]]] = field(default_factory=list)
    primary: tuple[str, str] | None = None
    system: list[tuple[str, float, float]] = field(default_factory=list)  # (key, time, value)
    images: list[tuple[str, int, str | None, str, int, int, float]] = field(default_factory=list)
    files: dict[str, tuple[str, float, dict[str, Any]]] = field(default_factory=dict)  # kind -> (blob, time, meta)
    last_time: float | None = None
    end: tuple[str | None, str | None] | None = None  # (status, reason) of the END record, if the batch holds it
    end_time: float | None = None  # when the END record was written: the run's end time if it ends the run


def split_lines(text: str) -> list[str]:
    """Lines of a text record; a trailing newline does not make an extra empty line."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _add_metric_group(
    series: dict[str, Columns],
    keys: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    steps: list[int],
    times: list[float],
    stages: list[str | None],
) -> None:
    # Consecutive records with the same keys (the usual training loop) are transposed in C by zip().
    for key, values in zip(keys, zip(*rows, strict=False), strict=False):
        cols = series.get(key)
        if cols is None:
            series[key] = Columns(list(steps), list(values), list(times), list(stages))
        else:
            cols.steps += steps
            cols.values += values
            cols.times += times
            cols.stages += stages


_METRICS = journal.fields(journal.Metrics, "time", "step", "stage", "values")
_TEXT = journal.fields(journal.Text, "time", "stream", "text")
_SUMMARY = journal.fields(journal.Summary, "time", "values")
_CONFIG = journal.fields(journal.Config, "time", "values")
_TAGS = journal.fields(journal.Tags, "time", "added", "removed")
_PRIMARY = journal.fields(journal.Primary, "time", "name", "mode")
_SYSTEM = journal.fields(journal.System, "time", "values")
_IMAGE = journal.fields(journal.Image, "time", "key", "step", "caption", "blob", "width", "height")
_FILE = journal.fields(journal.File, "time", "file_kind", "blob", "meta")
_END = journal.fields(journal.End, "time", "status", "reason")


def _storable(key: str, cols: Columns) -> Columns:
    # log() refuses such steps; a journal written before it did (or by another client) may still hold
    # them, and one unstorable point must not keep every later reader from replaying the rest.
    kept = cols.slice(bisect.bisect_left(cols.steps, STEP_MIN), bisect.bisect_right(cols.steps, STEP_MAX))
    log.warning(
        "runlane: dropped %d point(s) of %r at steps outside the steps a store can hold", len(cols) - len(kept), key
    )
    return kept


def plan(records: Sequence[Sequence[Any]]) -> RunChanges:
    """Group records (arrays in the shapes of ``runlane.journal``) into per-series columns and run-level updates."""
    changes = RunChanges()
    series = changes.series
    keys: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = []
    steps: list[int] = []
    times: list[float] = []
    stages: list[str | None] = []
    last_time = None
    for record in records:
        kind = record[0]  # every record starts with its type
        if kind == journal.METRICS:
            last_time, step, stage, data = _METRICS(record)
            record_keys = tuple(data)
            if record_keys != keys:
                if rows:
                    _add_metric_group(series, keys, rows, steps, times, stages)
                keys, rows, steps, times, stages = record_keys, [], [], [], []
            rows.append(tuple(data.values()))
            steps.append(step)
            times.append(last_time)
            stages.append(stage)
        elif kind == journal.TEXT:
            last_time, stream, text = _TEXT(record)
            changes.lines.extend((last_time, stream, line) for line in split_lines(text))
        elif kind == journal.SUMMARY:
            last_time, values = _SUMMARY(record)
            changes.summary.update(values)
        elif kind == journal.CONFIG:
            last_time, values = _CONFIG(record)
            changes.config_updates.append(values)
        elif kind == journal.TAGS:
            last_time, added, removed = _TAGS(record)
            changes.tag_ops.append((list(added), list(removed)))
        elif kind == journal.PRIMARY:
            last_time, name, mode = _PRIMARY(record)
            changes.primary = (name, mode)
        elif kind == journal.SYSTEM:
            last_time, values = _SYSTEM(record)
            changes.system.extend((key, last_time, value) for key, value in values.items())
        elif kind == journal.IMAGE:
            last_time, key, step, caption, blob, width, height = _IMAGE(record)
            if in_range(step):
                changes.images.append((key, step, caption, blob, width, height, last_time))
            else:
                log.warning("runlane: dropped image %r at step %s, outside the steps a store can hold", key, step)
        elif kind == journal.FILE:
            last_time, file_kind, blob, meta = _FILE(record)
            changes.files[file_kind] = (blob, last_time, meta)  # the latest file of a kind wins
        elif kind == journal.END:
            last_time, status, reason = _END(record)
            changes.end = (status, reason)
            changes.end_time = last_time
    if rows:
        _add_metric_group(series, keys, rows, steps, times, stages)
    for key, given in list(series.items()):
        cols = normalize(given)
        if cols.steps[0] < STEP_MIN or cols.steps[-1] > STEP_MAX:  # sorted now: two comparisons per series
            cols = _storable(key, cols)
        if cols.steps:
            series[key] = cols
        else:
            del series[key]
    changes.last_time = last_time
    return changes
