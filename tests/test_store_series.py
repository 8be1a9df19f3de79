"""Metric series in the SQLite store: replace-at-step, steps going backwards, aggregates, chunking."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

import runlane
from runlane import journal
from runlane.naming import RunRef
from runlane.store import chunks
from runlane.store.base import NewRun, WriterSpec
from runlane.store.sqlite import SQLiteStore


class Feeder:
    """Drives a real SQLite store the way the writer thread does: journal records with offsets."""

    def __init__(self, directory: Path) -> None:
        self.store = SQLiteStore(directory)
        spec = WriterSpec("w1", "host", 1, None, "journals/w1.rlj")
        self.run_id = self.store.create_run(NewRun(uid="a" * 32, project="p"), spec).id
        self.offset = 0

    def batch(self, records: list[list[Any]]) -> None:
        end = self.offset + len(records)  # offsets only need to be consecutive here
        assert self.store.ingest("w1", self.run_id, records, self.offset, end)
        self.offset = end

    def log(self, points: list[tuple[int, float]], key: str = "m", stage: str | None = None) -> None:
        self.batch([[journal.METRICS, float(step), step, stage, {key: value}] for step, value in points])

    def history(self, key: str = "m") -> list[tuple[int, float]]:
        return [(p.step, p.value) for p in self.store.history(self.run_id, key)]

    def series(self, key: str = "m") -> runlane.MetricSummary:
        return self.store.run(RunRef("id", self.run_id)).metrics[key]

    def chunk_sizes(self) -> list[int]:
        return [n for (n,) in self.store.conn.execute("SELECT n FROM chunks ORDER BY first_step")]


@pytest.fixture
def feeder(tmp_path: Path):  # type: ignore[no-untyped-def]
    f = Feeder(tmp_path / "store")
    yield f
    f.store.close()


def test_logging_a_step_again_replaces_its_value(feeder: Feeder) -> None:
    feeder.log([(0, 1.0), (1, 2.0), (1, 3.0)])  # repeated inside one batch
    feeder.log([(0, 9.0)])  # repeated in a later batch
    assert feeder.history() == [(0, 9.0), (1, 3.0)]
    series = feeder.series()
    assert (series.count, series.min, series.max, series.last_value) == (2, 3.0, 9.0, 3.0)
    assert (series.max_step, series.min_step) == (0, 1)


def test_steps_going_backwards_are_stored_and_read_in_step_order(feeder: Feeder) -> None:
    feeder.log([(10, 1.0), (11, 2.0)])
    feeder.log([(5, 0.5), (20, 3.0), (7, 0.7)])
    assert feeder.history() == [(5, 0.5), (7, 0.7), (10, 1.0), (11, 2.0), (20, 3.0)]
    series = feeder.series()
    assert (series.first_step, series.last_step, series.count) == (5, 20, 5)


def test_replacing_the_minimum_recomputes_the_aggregates(feeder: Feeder) -> None:
    feeder.log([(i, float(i)) for i in range(100)])
    feeder.log([(0, 50.5)])  # the old minimum (0.0 at step 0) is gone
    series = feeder.series()
    assert (series.min, series.min_step) == (1.0, 1)
    assert (series.max, series.max_step) == (99.0, 99)
    assert series.count == 100


def test_many_small_batches_are_compacted_without_changing_the_points(feeder: Feeder) -> None:
    for step in range(200):
        feeder.log([(step, step * 0.5)])
    assert feeder.history() == [(s, s * 0.5) for s in range(200)]
    assert len(feeder.chunk_sizes()) < 200 // chunks.SMALL_TAIL_LIMIT + chunks.SMALL_TAIL_LIMIT
    assert sum(feeder.chunk_sizes()) == 200


def test_a_long_series_spans_chunks_and_survives_random_overwrites(feeder: Feeder) -> None:
    rng = random.Random(7)
    expected = {step: float(step) for step in range(50_000)}
    feeder.log(list(expected.items()))
    assert max(feeder.chunk_sizes()) <= chunks.MAX_CHUNK
    for _ in range(20):
        steps = rng.sample(range(60_000), 50)
        update = [(s, rng.random()) for s in steps]
        feeder.log(update)
        expected.update(update)
    assert feeder.history() == sorted(expected.items())
    series = feeder.series()
    values = list(expected.values())
    assert series.count == len(expected)
    assert series.min == min(values)
    assert series.max == max(values)
    assert series.last_step == max(expected)


def test_stages_are_kept_per_point(feeder: Feeder) -> None:
    feeder.log([(0, 1.0)], stage="epoch_1")
    feeder.log([(1, 2.0)])
    feeder.log([(2, 3.0)], stage="epoch_2")
    assert [p.stage for p in feeder.store.history(feeder.run_id, "m")] == ["epoch_1", None, "epoch_2"]


def test_an_all_nan_series_has_no_min_or_max(feeder: Feeder) -> None:
    feeder.log([(0, math.nan), (1, math.nan)])
    series = feeder.series()
    assert series.min is None
    assert series.max is None
    assert math.isnan(series.last_value)


def test_a_batch_is_applied_once_even_if_offered_twice(feeder: Feeder) -> None:
    records = [[journal.METRICS, 0.0, 0, None, {"m": 1.0}], [journal.TEXT, 0.0, "log", "once"]]
    assert feeder.store.ingest("w1", feeder.run_id, records, 0, 2)
    assert not feeder.store.ingest("w1", feeder.run_id, records, 0, 2)
    assert [line.text for line in feeder.store.logs(feeder.run_id)] == ["once"]
    with pytest.raises(runlane.StoreError, match="starts at byte 5"):
        feeder.store.ingest("w1", feeder.run_id, records, 5, 7)


def test_metrics_with_mixed_keys_per_call(feeder: Feeder) -> None:
    feeder.batch(
        [
            [journal.METRICS, 0.0, 0, None, {"a": 1.0, "b": 2.0}],
            [journal.METRICS, 0.0, 1, None, {"a": 3.0}],
            [journal.METRICS, 0.0, 2, None, {"b": 4.0, "a": 5.0}],
        ]
    )
    assert feeder.history("a") == [(0, 1.0), (1, 3.0), (2, 5.0)]
    assert feeder.history("b") == [(0, 2.0), (2, 4.0)]
