"""Metric series stored as chunks: packed columns of (step, value, time, stage) with their own stats.

Why chunks and not a row per point: SQLite inserts rows at well under a million per second, while a
chunk of thousands of points is one row, so ingest runs at the speed of ``array.tobytes``. Values are
raw float64, so NaN and +/-Inf round-trip bit-exactly (a SQLite REAL column turns NaN into NULL).

Invariant kept by every writer: the chunks of one series cover disjoint step ranges, and the points
inside a chunk are strictly increasing in step. Reads concatenate chunks in ``first_step`` order.
Pure code: no database access here.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, NamedTuple

from .. import wire

# A chunk holds at most this many points; appends smaller than SMALL_CHUNK are merged into their
# neighbours once SMALL_TAIL_LIMIT of them have piled up at the end of a series.
MAX_CHUNK = 16384
SMALL_CHUNK = 2048
SMALL_TAIL_LIMIT = 32

_SWAP = sys.byteorder != "little"  # blobs are little-endian on every platform


@dataclass
class Columns:
    """Points of one series as parallel columns (strictly increasing steps once normalized)."""

    steps: list[int]
    values: list[float]
    times: list[float]
    stages: list[str | None]

    def __len__(self) -> int:
        return len(self.steps)

    def strictly_increasing(self) -> bool:
        steps = self.steps
        return all(map(operator.lt, steps, islice(steps, 1, None)))

    def slice(self, start: int, stop: int) -> Columns:
        return Columns(self.steps[start:stop], self.values[start:stop], self.times[start:stop], self.stages[start:stop])


class ChunkStats(NamedTuple):
    """What the series aggregates are built from, kept per chunk so a rewrite can recompute them."""

    n: int
    first_step: int
    last_step: int
    last_value: float
    last_time: float
    min_value: float | None
    min_step: int | None
    max_value: float | None
    max_step: int | None


class EncodedChunk(NamedTuple):
    stats: ChunkStats
    steps: bytes
    values: bytes
    times: bytes
    stage_names: str | None
    stage_index: bytes | None


def _pack(typecode: str, items: Iterable[Any]) -> bytes:
    packed = array(typecode, items)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _unpack(typecode: str, blob: bytes) -> list[Any]:
    unpacked = array(typecode)
    unpacked.frombytes(blob)
    if _SWAP:
        unpacked.byteswap()
    return unpacked.tolist()


def stats_of(cols: Columns) -> ChunkStats:
    """Aggregates of strictly increasing columns; NaN is ignored by min/max (it is never "best")."""
    values = cols.values
    if not math.isnan(sum(values)):  # no NaN (nor inf - inf): min/max are safe directly
        candidates: Sequence[float] = values
    else:
        candidates = [v for v in values if not math.isnan(v)]
    if candidates:
        lo, hi = min(candidates), max(candidates)
        lo_step: int | None = cols.steps[values.index(lo)]
        hi_step: int | None = cols.steps[values.index(hi)]
        lo_value: float | None = float(lo)
        hi_value: float | None = float(hi)
    else:
        lo_value = hi_value = lo_step = hi_step = None
    return ChunkStats(
        n=len(values),
        first_step=cols.steps[0],
        last_step=cols.steps[-1],
        last_value=float(values[-1]),
        last_time=cols.times[-1],
        min_value=lo_value,
        min_step=lo_step,
        max_value=hi_value,
        max_step=hi_step,
    )


def encode(cols: Columns) -> EncodedChunk:
    stages = cols.stages
    if stages.count(None) == len(stages):
        names_json: str | None = None
        index_blob: bytes | None = None
    else:
        names = list(dict.fromkeys(s for s in stages if s is not None))
        position = {name: i + 1 for i, name in enumerate(names)}  # 0 means "no stage"
        names_json = wire.dumps(names)
        index_blob = _pack("I", (0 if s is None else position[s] for s in stages))
    return EncodedChunk(
        stats=stats_of(cols),
        steps=_pack("q", cols.steps),
        values=_pack("d", cols.values),
        times=_pack("d", cols.times),
        stage_names=names_json,
        stage_index=index_blob,
    )


def decode(steps: bytes, values: bytes, times: bytes, names: str | None, index: bytes | None) -> Columns:
    step_list = _unpack("q", steps)
    if names is None or index is None:
        stage_list: list[str | None] = [None] * len(step_list)
    else:
        lookup: list[str | None] = [None, *wire.loads(names)]
        stage_list = [lookup[i] for i in _unpack("I", index)]
    return Columns(step_list, _unpack("d", values), _unpack("d", times), stage_list)


def split(cols: Columns, size: int = MAX_CHUNK) -> list[Columns]:
    """Cut columns into pieces of at most ``size`` points."""
    if len(cols) <= size:
        return [cols]
    return [cols.slice(i, i + size) for i in range(0, len(cols), size)]


def concat(parts: Iterable[Columns]) -> Columns:
    out = Columns([], [], [], [])
    for part in parts:
        out.steps += part.steps
        out.values += part.values
        out.times += part.times
        out.stages += part.stages
    return out


def merge_last_wins(parts: Iterable[Columns]) -> Columns:
    """Merge columns in write order into one sorted series where a later value at a step wins."""
    latest: dict[int, tuple[float, float, str | None]] = {}
    for part in parts:
        for step, value, time, stage in zip(part.steps, part.values, part.times, part.stages, strict=False):
            latest[step] = (value, time, stage)
    ordered = sorted(latest)
    rows = [latest[s] for s in ordered]
    return Columns(ordered, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def normalize(cols: Columns) -> Columns:
    """Sort and de-duplicate one batch's points of a series (a repeated step keeps its last value)."""
    return cols if cols.strictly_increasing() else merge_last_wins([cols])
