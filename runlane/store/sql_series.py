"""Metric series in SQL (SQLite and PostgreSQL alike): chunk rows plus per-series aggregates, kept up to
date at ingest.

Called inside the store's write transaction, which holds the run (``sql_store``), so the aggregates of a
series are never computed from two writers' views at once; see ``chunks`` for the storage invariant and
``docs/postgresql.md`` for why PostgreSQL keeps packed chunks too rather than a row per point.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..entities import History, MetricSummary
from . import chunks
from .chunks import ChunkStats, Columns, EncodedChunk
from .sql import Db, marks

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_SERIES_COLUMNS = (
    "id, key, count, first_step, last_step, last_value, last_time, min_value, min_step, max_value, max_step, small_tail"
)

_JOINED_SERIES_COLUMNS = ", ".join(f"s.{column}" for column in _SERIES_COLUMNS.split(", "))


def nan_to_null(value: float) -> float | None:
    """A SQLite REAL column stores NaN as NULL anyway; say so explicitly (on every backend) where a column may
    hold NaN, so both read it back the same way."""
    return None if math.isnan(value) else value


def null_to_nan(value: float | None) -> float:
    return math.nan if value is None else value


@dataclass
class SeriesRow:
    """A ``series`` row as this module reads and rewrites it: the aggregates of every chunk of the series
    folded together (what ``chunks.ChunkStats`` holds per chunk), plus the row's id and how many points its
    last, still-growing chunk holds. Readers see it as the public ``MetricSummary`` (``summary()``); the
    three shapes are one row, one chunk, one entity, each converted in one place."""

    id: int
    key: str
    count: int
    first_step: int
    last_step: int
    last_value: float
    last_time: float
    min_value: float | None
    min_step: int | None
    max_value: float | None
    max_step: int | None
    small_tail: int

    @classmethod
    def from_db(cls, row: tuple[object, ...]) -> SeriesRow:
        series = cls(*row)  # type: ignore[arg-type]
        series.last_value = null_to_nan(row[5])  # type: ignore[arg-type]
        return series

    def summary(self) -> MetricSummary:
        return MetricSummary(
            count=self.count,
            first_step=self.first_step,
            last_step=self.last_step,
            last_value=self.last_value,
            min=self.min_value,
            min_step=self.min_step,
            max=self.max_value,
            max_step=self.max_step,
            last_time=self.last_time,
        )


def summaries(db: Db, run_ids: list[int], *, only_primary: bool = False) -> dict[int, dict[str, MetricSummary]]:
    """Aggregates of every series of the given runs, or only of each run's primary metric.

    ``only_primary`` is what a listing needs (the best value): one index lookup per run, where reading
    every series costs as much as the runs have metrics.
    """
    out: dict[int, dict[str, MetricSummary]] = {run_id: {} for run_id in run_ids}
    for start in range(0, len(run_ids), 500):
        part = run_ids[start : start + 500]
        if only_primary:
            query = (
                f"SELECT s.run_id, {_JOINED_SERIES_COLUMNS} FROM runs r"
                f" JOIN series s ON s.run_id = r.id AND s.key = r.primary_metric WHERE r.id IN ({marks(len(part))})"
            )
        else:
            query = f"SELECT run_id, {_SERIES_COLUMNS} FROM series WHERE run_id IN ({marks(len(part))}) ORDER BY key"
        for row in db.execute(query, part):
            out[row[0]][row[2]] = SeriesRow.from_db(row[1:]).summary()
    return out


def _insert_chunks(db: Db, series_id: int, encoded: Iterable[EncodedChunk]) -> None:
    db.many(
        "INSERT INTO chunks (series_id, first_step, last_step, n, last_value, last_time, min_value, min_step,"
        " max_value, max_step, steps, vals, times, stage_names, stage_index)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                series_id,
                c.stats.first_step,
                c.stats.last_step,
                c.stats.n,
                nan_to_null(c.stats.last_value),
                c.stats.last_time,
                c.stats.min_value,
                c.stats.min_step,
                c.stats.max_value,
                c.stats.max_step,
                c.steps,
                c.values,
                c.times,
                c.stage_names,
                c.stage_index,
            )
            for c in encoded
        ],
    )


def _load_chunks(db: Db, where: str, params: tuple[object, ...]) -> list[tuple[int, Columns]]:
    rows = db.blob_rows(
        f"SELECT id, steps, vals, times, stage_names, stage_index FROM chunks WHERE {where} ORDER BY first_step",
        params,
    )
    return [(row[0], chunks.decode(*row[1:])) for row in rows]


def _combine(row: SeriesRow, stats: ChunkStats) -> None:
    """Fold the stats of points appended after ``row.last_step`` into the series aggregates."""
    row.count += stats.n
    row.last_step, row.last_value, row.last_time = stats.last_step, stats.last_value, stats.last_time
    # Strict comparisons: on a tie the earlier step stays the best one.
    if stats.min_value is not None and (row.min_value is None or stats.min_value < row.min_value):
        row.min_value, row.min_step = stats.min_value, stats.min_step
    if stats.max_value is not None and (row.max_value is None or stats.max_value > row.max_value):
        row.max_value, row.max_step = stats.max_value, stats.max_step


def _trailing_small(db: Db, series_id: int) -> int:
    sizes = db.execute(
        "SELECT n FROM chunks WHERE series_id = ? ORDER BY first_step DESC LIMIT ?",
        (series_id, chunks.SMALL_TAIL_LIMIT),
    ).fetchall()
    count = 0
    for (n,) in sizes:
        if n >= chunks.SMALL_CHUNK:
            break
        count += 1
    return count


def _compact_tail(db: Db, row: SeriesRow) -> None:
    # Many small appends (a slow training loop) would leave one tiny chunk per batch; merge them so a
    # long run is read back from a few large rows. The points do not change, so neither do aggregates.
    tail = db.blob_rows(
        "SELECT id, steps, vals, times, stage_names, stage_index FROM chunks"
        " WHERE series_id = ? ORDER BY first_step DESC LIMIT ?",
        (row.id, row.small_tail),
    )
    tail.reverse()
    merged = chunks.concat(chunks.decode(*r[1:]) for r in tail)
    db.many("DELETE FROM chunks WHERE id = ?", [(r[0],) for r in tail])
    pieces = chunks.split(merged)
    _insert_chunks(db, row.id, (chunks.encode(p) for p in pieces))
    row.small_tail = 1 if len(pieces[-1]) < chunks.SMALL_CHUNK else 0


def _rewrite_overlap(db: Db, row: SeriesRow, cols: Columns) -> None:
    # Points at or before the series' last step: merge them with the chunks whose step ranges they
    # touch (a later write wins at a repeated step), then recompute aggregates from chunk stats.
    lo, hi = cols.steps[0], cols.steps[-1]
    touched = _load_chunks(db, "series_id = ? AND last_step >= ? AND first_step <= ?", (row.id, lo, hi))
    merged = chunks.merge_last_wins([*(c for _, c in touched), cols])
    db.many("DELETE FROM chunks WHERE id = ?", [(chunk_id,) for chunk_id, _ in touched])
    _insert_chunks(db, row.id, (chunks.encode(p) for p in chunks.split(merged)))
    count, first_step = db.execute(
        "SELECT sum(n), min(first_step) FROM chunks WHERE series_id = ?", (row.id,)
    ).fetchone()
    last = db.execute(
        "SELECT last_step, last_value, last_time FROM chunks WHERE series_id = ? ORDER BY first_step DESC LIMIT 1",
        (row.id,),
    ).fetchone()
    low = db.execute(
        "SELECT min_value, min_step FROM chunks WHERE series_id = ? AND min_value IS NOT NULL"
        " ORDER BY min_value ASC, min_step ASC LIMIT 1",
        (row.id,),
    ).fetchone()
    high = db.execute(
        "SELECT max_value, max_step FROM chunks WHERE series_id = ? AND max_value IS NOT NULL"
        " ORDER BY max_value DESC, max_step ASC LIMIT 1",
        (row.id,),
    ).fetchone()
    row.count, row.first_step = count, first_step
    row.last_step, row.last_value, row.last_time = last[0], null_to_nan(last[1]), last[2]
    row.min_value, row.min_step = low if low else (None, None)
    row.max_value, row.max_step = high if high else (None, None)
    row.small_tail = _trailing_small(db, row.id)


def append(db: Db, run_id: int, series: dict[str, Columns]) -> None:
    """Add normalized columns (strictly increasing steps) to the run's series."""
    if not series:
        return
    keys = list(series)
    existing: dict[str, SeriesRow] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        for db_row in db.execute(
            f"SELECT {_SERIES_COLUMNS} FROM series WHERE run_id = ? AND key IN ({marks(len(part))})", (run_id, *part)
        ):
            existing[db_row[1]] = SeriesRow.from_db(db_row)
    for key, cols in series.items():
        row = existing.get(key)
        if row is not None and cols.steps[0] <= row.last_step:
            _rewrite_overlap(db, row, cols)
        else:
            pieces = chunks.split(cols)
            encoded = [chunks.encode(piece) for piece in pieces]
            if row is None:
                first = encoded[0].stats
                series_id = db.insert_id(
                    "INSERT INTO series (run_id, key, count, first_step, last_step, last_time)"
                    " VALUES (?, ?, 0, ?, ?, ?)",
                    (run_id, key, first.first_step, first.last_step, first.last_time),
                )
                row = SeriesRow(series_id, key, 0, first.first_step, 0, 0.0, 0.0, None, None, None, None, 0)
            for chunk in encoded:
                _combine(row, chunk.stats)
            _insert_chunks(db, row.id, encoded)
            if len(pieces[-1]) >= chunks.SMALL_CHUNK:
                row.small_tail = 0
            elif len(pieces) > 1:
                row.small_tail = 1
            else:
                row.small_tail += 1
            if row.small_tail >= chunks.SMALL_TAIL_LIMIT:
                _compact_tail(db, row)
        db.execute(
            "UPDATE series SET count = ?, first_step = ?, last_step = ?, last_value = ?, last_time = ?,"
            " min_value = ?, min_step = ?, max_value = ?, max_step = ?, small_tail = ? WHERE id = ?",
            (
                row.count,
                row.first_step,
                row.last_step,
                nan_to_null(row.last_value),
                row.last_time,
                row.min_value,
                row.min_step,
                row.max_value,
                row.max_step,
                row.small_tail,
                row.id,
            ),
        )


_SERIES_OF = "series_id = (SELECT id FROM series WHERE run_id = ? AND key = ?)"
_OVERLAPS = " AND last_step >= ? AND first_step <= ?"
_MIN_STEP, _MAX_STEP = -(2**63), 2**63 - 1


def _range(start: int | None, end: int | None) -> tuple[int, int]:
    return (_MIN_STEP if start is None else start), (_MAX_STEP if end is None else end)


def read(db: Db, run_id: int, key: str, start: int | None = None, end: int | None = None) -> History:
    """The points of one series in step order, limited to ``start <= step <= end`` when given."""
    low, high = _range(start, end)
    parts = _load_chunks(db, _SERIES_OF + _OVERLAPS, (run_id, key, low, high))
    cols = chunks.concat(c for _, c in parts)
    if parts and (cols.steps[0] < low or cols.steps[-1] > high):
        cols = cols.slice(bisect.bisect_left(cols.steps, low), bisect.bisect_right(cols.steps, high))
    return History(cols.steps, cols.values, cols.times, cols.stages, [run_id] * len(cols.steps))


def read_arrays(
    db: Db, run_id: int, key: str, start: int | None = None, end: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Steps and values of one series as numpy arrays, straight from the chunk blobs (for downsampling)."""
    import numpy as np

    low, high = _range(start, end)
    rows = db.blob_rows(
        f"SELECT steps, vals FROM chunks WHERE {_SERIES_OF}{_OVERLAPS} ORDER BY first_step", (run_id, key, low, high)
    )
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    steps = np.concatenate([np.frombuffer(row[0], dtype="<i8") for row in rows]).astype(np.int64, copy=False)
    values = np.concatenate([np.frombuffer(row[1], dtype="<f8") for row in rows]).astype(np.float64, copy=False)
    if steps[0] < low or steps[-1] > high:
        first, last = int(np.searchsorted(steps, low, "left")), int(np.searchsorted(steps, high, "right"))
        steps, values = steps[first:last], values[first:last]
    return steps, values


def next_step(db: Db, run_id: int) -> int:
    """Where a resumed run's step counter continues: after its highest logged step, and never before
    the step after its fork point (a fork that has logged nothing yet continues at fork_step + 1)."""
    highest, fork_step = db.execute(
        "SELECT (SELECT max(last_step) FROM series WHERE run_id = ?), fork_step FROM runs WHERE id = ?",
        (run_id, run_id),
    ).fetchone()
    candidates = [s + 1 for s in (highest, fork_step) if s is not None]
    return max(candidates, default=0)
