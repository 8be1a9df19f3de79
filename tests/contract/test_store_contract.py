"""The store contract: what every backend must do, driven only through ``runlane.store.base.Store``.

Records are the journal's typed shapes (``runlane.journal``), offered the way the SDK's drain offers them:
consecutive batches of one writer's journal with the byte offsets the records occupy in it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import msgpack
import pytest

from runlane import journal
from runlane.entities import Bucket, History, RunInfo
from runlane.errors import (
    DeletionRefusedError,
    OffsetConflictError,
    ProjectNotFoundError,
    RunNotFoundError,
    StoreError,
)
from runlane.lineage import resolve_parent
from runlane.naming import RunRef
from runlane.store.base import ForkRequest, NewRun, Store, WriterSpec
from runlane.store.runs_query import BEST, COLUMNS, RunsPage, RunsQuery, reference_page

T0 = 1_700_000_000.0


def spec(writer_id: str) -> WriterSpec:
    # pid 0 names no live process, so a closed or abandoned writer never blocks a delete
    return WriterSpec(writer_id, "contract-host", 0, None, f"journals/{writer_id}.rlj")


def ref(run_id: int) -> RunRef:
    return RunRef("id", run_id)


class Journal:
    """One writer's journal as the drain sees it: records at byte offsets, and how far the store has them."""

    def __init__(self, store: Store, writer_id: str, run_id: int) -> None:
        self.store = store
        self.writer_id = writer_id
        self.run_id = run_id
        self.records: list[tuple[int, int, list[Any]]] = []  # (start, end, record)
        self.size = 0
        self.acked = 0

    def append(self, *records: Sequence[Any]) -> None:
        for record in records:
            raw = list(record)
            length = len(msgpack.packb(raw))
            self.records.append((self.size, self.size + length, raw))
            self.size += length

    def batch(self, start: int, end: int | None = None) -> tuple[list[list[Any]], int, int]:
        """The records from byte ``start`` up to ``end`` (default: all written), with their offsets."""
        stop = self.size if end is None else end
        chosen = [raw for first, last, raw in self.records if first >= start and last <= stop]
        return chosen, start, stop

    def offer(self, start: int | None = None, end: int | None = None) -> bool:
        records, first, last = self.batch(self.acked if start is None else start, end)
        applied = self.store.ingest(self.writer_id, self.run_id, records, first, last)
        self.acked = max(self.acked, last)
        return applied

    def log(self, points: Sequence[tuple[int, float]], key: str = "m", run_time: float = T0) -> None:
        """Append ``log({key: value}, step=step)`` per point and offer them as one batch."""
        self.append(*(journal.Metrics.new(run_time + step, step, None, {key: value}) for step, value in points))
        assert self.offer()


def new_run(store: Store, uid: str, project: str = "p", writer_id: str | None = None, **fields: Any) -> Journal:
    writer = writer_id or f"w-{uid}"
    info = store.create_run(NewRun(uid=uid, project=project, **fields), spec(writer))
    return Journal(store, writer, info.id)


def finish(run: Journal, status: str = "finished") -> None:
    run.append(journal.End.new(T0 + 10_000, status, None))
    assert run.offer()


def points(store: Store, run_id: int, key: str = "m") -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in store.history(run_id, key)]


def same_floats(left: Sequence[float], right: Sequence[float]) -> bool:
    """Equal element by element, NaN equal to NaN (a NaN that came back as NaN round-tripped)."""
    return len(left) == len(right) and all(
        (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
        for a, b in zip(left, right, strict=True)
    )


# -- values ------------------------------------------------------------------------------------


def test_nan_and_infinities_round_trip_exactly(store: Store) -> None:
    run = new_run(store, "nan" * 10 + "aa")
    values = [math.nan, math.inf, -math.inf, 0.1, -0.0, 1e308]
    run.log(list(enumerate(values)))
    history = store.history(run.run_id, "m")
    assert history.steps == [0, 1, 2, 3, 4, 5]
    assert same_floats(history.values, values)
    steps, arrays = store.point_arrays(run.run_id, "m")
    assert steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert same_floats(arrays.tolist(), values)
    series = store.run(ref(run.run_id)).metrics["m"]
    assert (series.min, series.max, series.count) == (-math.inf, math.inf, 6)


def test_logging_a_step_again_replaces_it_and_the_aggregates_follow(store: Store) -> None:
    run = new_run(store, "r" * 32)
    run.log([(0, 5.0), (1, 1.0), (2, 3.0)])
    run.log([(1, 4.0)])  # the minimum is replaced: the aggregates must not remember it
    assert points(store, run.run_id) == [(0, 5.0), (1, 4.0), (2, 3.0)]
    series = store.run(ref(run.run_id)).metrics["m"]
    assert (series.count, series.first_step, series.last_step) == (3, 0, 2)
    assert (series.min, series.min_step, series.max, series.max_step) == (3.0, 2, 5.0, 0)
    assert series.last_value == 3.0


# -- exactly-once ingest -----------------------------------------------------------------------


def test_an_exact_reoffer_of_a_batch_returns_false_and_changes_nothing(store: Store) -> None:
    run = new_run(store, "e" * 32)
    run.append(*(journal.Metrics.new(T0, step, None, {"m": float(step)}) for step in range(5)))
    records, start, end = run.batch(0)
    assert store.ingest(run.writer_id, run.run_id, records, start, end) is True
    before = store.run(ref(run.run_id))
    assert store.ingest(run.writer_id, run.run_id, records, start, end) is False
    assert points(store, run.run_id) == [(step, float(step)) for step in range(5)]
    assert store.run(ref(run.run_id)).metrics == before.metrics


def test_an_overlapping_reoffer_is_refused_with_the_committed_offset(store: Store) -> None:
    run = new_run(store, "o" * 32)
    run.log([(0, 0.0), (1, 1.0)])
    middle = run.size
    run.log([(2, 2.0), (3, 3.0)])
    committed = run.size
    run.append(journal.Metrics.new(T0, 4, None, {"m": 4.0}))
    records, start, end = run.batch(middle)  # starts inside what the store holds, ends past it
    with pytest.raises(OffsetConflictError) as caught:
        store.ingest(run.writer_id, run.run_id, records, start, end)
    assert caught.value.committed == committed
    assert points(store, run.run_id) == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]


def test_a_lost_acknowledgement_resyncs_and_every_point_arrives_once(store: Store) -> None:
    run = new_run(store, "l" * 32)
    run.append(*(journal.Metrics.new(T0, step, None, {"m": float(step)}) for step in range(3)))
    first, start, first_end = run.batch(0)
    assert store.ingest(run.writer_id, run.run_id, first, start, first_end)
    # the acknowledgement never reached the writer: it still believes nothing is stored, and by now its
    # journal has grown, so it offers a longer batch from the same start
    run.append(*(journal.Metrics.new(T0, step, None, {"m": float(step)}) for step in range(3, 6)))
    longer, start, end = run.batch(0)
    with pytest.raises(OffsetConflictError) as caught:
        store.ingest(run.writer_id, run.run_id, longer, start, end)
    assert caught.value.committed == first_end
    rest, start, end = run.batch(caught.value.committed)
    assert store.ingest(run.writer_id, run.run_id, rest, start, end)
    assert points(store, run.run_id) == [(step, float(step)) for step in range(6)]
    assert store.run(ref(run.run_id)).metrics["m"].count == 6


def test_ingest_for_another_writers_run_is_refused(store: Store) -> None:
    mine = new_run(store, "m" * 32)
    theirs = new_run(store, "t" * 32)
    mine.append(journal.Metrics.new(T0, 0, None, {"m": 1.0}))
    records, start, end = mine.batch(0)
    with pytest.raises(StoreError, match=mine.writer_id):
        store.ingest(mine.writer_id, theirs.run_id, records, start, end)
    with pytest.raises(StoreError, match="not registered"):
        store.ingest("nobody", theirs.run_id, records, start, end)
    assert store.history(theirs.run_id, "m") == History.empty()
    assert store.history(mine.run_id, "m") == History.empty()
    assert mine.offer()  # the refusal consumed nothing of the writer's journal
    assert points(store, mine.run_id) == [(0, 1.0)]


def test_an_end_record_closes_the_writer_and_ends_the_run_with_its_data(store: Store) -> None:
    run = new_run(store, "x" * 32)
    run.append(
        journal.Primary.new(T0, "acc", "max"),
        journal.Metrics.new(T0 + 1, 0, None, {"acc": 0.5}),
        journal.Metrics.new(T0 + 2, 1, None, {"acc": 0.9}),
        journal.End.new(T0 + 3, "failed", "loss exploded"),
    )
    assert [writer.id for writer in store.open_writers()] == [run.writer_id]
    assert run.offer()  # one batch: the points and the ending land together
    info = store.run(ref(run.run_id))
    assert (info.status, info.status_reason) == ("failed", "loss exploded")
    assert info.ended_at is not None
    assert (info.best_value, info.best_step) == (0.9, 1)
    assert points(store, run.run_id, "acc") == [(0, 0.5), (1, 0.9)]
    assert store.open_writers() == []
    assert store.fail_abandoned([run.run_id], {run.run_id: "gone"}, {run.run_id: T0}) == []
    assert store.run(ref(run.run_id)).status == "failed"


# -- runs and projects -------------------------------------------------------------------------


def test_create_run_with_a_taken_uid_is_a_value_error_and_keeps_the_first(store: Store) -> None:
    first = new_run(store, "u" * 32, name="original")
    with pytest.raises(ValueError, match="u" * 32):
        store.create_run(NewRun(uid="u" * 32, project="p", name="retry"), spec("w-retry"))
    runs = store.runs()
    assert [(r.id, r.name) for r in runs] == [(first.run_id, "original")]
    assert store.resolve(RunRef("uid", "u" * 32)) == first.run_id  # how a retrying client finds its run
    assert [writer.id for writer in store.open_writers()] == [first.writer_id]


def test_create_run_retried_by_the_same_writer_returns_the_run_it_made(store: Store) -> None:
    # Over HTTP the answer to create_run can be lost after the commit: the client retries the same call.
    new = NewRun(uid="r" * 32, project="p", name="once")
    first = store.create_run(new, spec("w-once"))
    again = store.create_run(new, spec("w-once"))
    assert (again.id, again.display_id) == (first.id, first.display_id)
    assert [r.id for r in store.runs()] == [first.id]
    assert [w.id for w in store.open_writers()] == ["w-once"]
    following = store.create_run(NewRun(uid="s" * 32, project="p"), spec("w-next")).display_id
    assert following == first.display_id.replace("-1", "-2")  # the retry used no display id


def test_attach_refuses_a_run_of_another_project_and_is_idempotent_by_writer(store: Store) -> None:
    run = new_run(store, "a" * 32, project="vision")
    run.log([(0, 1.0), (1, 2.0)])
    finish(run)
    with pytest.raises(ValueError, match="belongs to project 'vision', not 'audio'"):
        store.attach(ref(run.run_id), spec("w-wrong"), project="audio")
    assert store.run(ref(run.run_id)).status == "finished"  # nothing changed
    assert [w.id for w in store.open_writers()] == []
    attached = store.attach(ref(run.run_id), spec("w-side"), project="vision")
    retried = store.attach(ref(run.run_id), spec("w-side"), project="vision")
    assert (retried.info.id, retried.next_step, retried.owner) == (attached.info.id, 2, True)
    assert [w.id for w in store.open_writers()] == ["w-side"]


def test_display_ids_are_sequential_per_project(store: Store) -> None:
    store.create_project("alpha", key="AL")
    store.create_project("beta", key="BE")
    made = [
        new_run(store, f"{i:032x}", project=project) for i, project in enumerate(["alpha", "beta", "alpha", "alpha"])
    ]
    ids = [store.run(ref(run.run_id)).display_id for run in made]
    assert ids == ["AL-1", "BE-1", "AL-2", "AL-3"]
    assert store.resolve(RunRef("display_id", "AL-3")) == made[3].run_id
    counts = {project.name: project.run_count for project in store.projects()}
    assert counts == {"alpha": 3, "beta": 1}


def test_an_unknown_run_reference_is_run_not_found(store: Store) -> None:
    new_run(store, "k" * 32)
    for missing in (RunRef("id", 999), RunRef("display_id", "ZZ-1"), RunRef("uid", "f" * 32)):
        with pytest.raises(RunNotFoundError):
            store.run(missing)
        with pytest.raises(RunNotFoundError):
            store.resolve(missing)
        with pytest.raises(RunNotFoundError):
            store.delete_run(missing)


def test_create_run_naming_an_unknown_parent_is_run_not_found_and_makes_nothing(store: Store) -> None:
    first = new_run(store, "k" * 32)
    for fields in ({"parent_run_id": 999}, {"fork_run_id": 999, "fork_step": 3}):
        with pytest.raises(RunNotFoundError, match="999"):
            store.create_run(NewRun(uid="m" * 32, project="p", **fields), spec("w-orphan"))  # type: ignore[arg-type]
    with pytest.raises(RunNotFoundError):
        store.run(RunRef("uid", "m" * 32))
    second = new_run(store, "n" * 32)
    display = store.run(ref(first.run_id)).display_id
    assert store.run(ref(second.run_id)).display_id == display.rsplit("-", 1)[0] + "-2"  # no number was used up


def test_runs_filter_by_project_status_and_tags(store: Store) -> None:
    a = new_run(store, "a" * 32, project="p", tags=("cnn", "big"))
    b = new_run(store, "b" * 32, project="p", tags=("cnn",))
    c = new_run(store, "c" * 32, project="q", tags=("cnn", "big"))
    finish(b)

    def ids(runs: list[RunInfo]) -> list[int]:
        return [r.id for r in runs]

    assert ids(store.runs()) == [c.run_id, b.run_id, a.run_id]  # newest first
    assert ids(store.runs("p")) == [b.run_id, a.run_id]
    assert ids(store.runs(statuses=["running"])) == [c.run_id, a.run_id]
    assert ids(store.runs(statuses=["finished", "failed"])) == [b.run_id]
    assert ids(store.runs(tags=["cnn", "big"])) == [c.run_id, a.run_id]
    assert ids(store.runs("p", ["running"], ["big"])) == [a.run_id]
    with pytest.raises(ProjectNotFoundError, match="nowhere"):
        store.runs("nowhere")


# -- forks -------------------------------------------------------------------------------------


def build_abc(store: Store) -> tuple[Journal, Journal, Journal]:
    """SPEC section 4: A logs 0-100; B forks A at 50 and logs 51-200; C forks B at 150 (and logs 151-250)."""
    a = new_run(store, "a" * 32)
    a.log([(step, float(step)) for step in range(101)])
    b = new_run(store, "b" * 32, fork_run_id=a.run_id, fork_step=50)
    b.log([(step, 1000.0 + step) for step in range(51, 201)])
    c = new_run(store, "c" * 32, fork_run_id=b.run_id, fork_step=150)
    c.log([(step, 2000.0 + step) for step in range(151, 251)])
    return a, b, c


def test_fork_parents_resolve_to_the_ancestor_that_owns_the_step(store: Store) -> None:
    a, b, c = build_abc(store)
    chain = store.ancestry(c.run_id)
    assert [node.run_id for node in chain] == [a.run_id, b.run_id, c.run_id]
    assert [(node.fork_step, node.first_step, node.last_step) for node in chain] == [
        (None, 0, 100),
        (50, 51, 200),
        (150, 151, 250),
    ]
    assert resolve_parent(chain, 75) == b.run_id
    assert resolve_parent(chain, 30) == a.run_id
    assert resolve_parent(chain, 175) == c.run_id
    assert [f.id for f in store.forks(a.run_id)] == [b.run_id]
    assert [f.id for f in store.forks(b.run_id)] == [c.run_id]
    info = store.run(ref(c.run_id))
    assert (info.fork_run_id, info.fork_step) == (b.run_id, 150)


def test_create_run_resolves_a_fork_request_to_the_owner_of_the_step(store: Store) -> None:
    a, b, c = build_abc(store)
    for uid, asked, expected_parent in (("d" * 32, 75, b.run_id), ("e" * 32, 30, a.run_id)):
        made = store.create_run(
            NewRun(uid=uid, project="elsewhere", config={"lr": 0.1}, fork=ForkRequest(ref(c.run_id), asked)),
            spec(f"w-{uid}"),
        )
        assert (made.fork_run_id, made.fork_step, made.project) == (expected_parent, asked, "p")
    kept = store.create_run(
        NewRun(uid="f" * 32, project="elsewhere", fork=ForkRequest(ref(c.run_id), 75, keep_project=True)),
        spec("w-kept"),
    )
    assert kept.project == "elsewhere"
    with pytest.raises(ValueError, match="fork_step"):
        store.create_run(NewRun(uid="g" * 32, project="p", fork=ForkRequest(ref(c.run_id), 999)), spec("w-g"))
    assert store.resolve(RunRef("uid", "f" * 32)) == kept.id
    with pytest.raises(RunNotFoundError):
        store.resolve(RunRef("uid", "g" * 32))  # a refused fork creates nothing


def reference_stitched(store: Store, chain_ids: list[int], fork_steps: list[int]) -> list[tuple[int, float, int]]:
    """The stitched series the slow way: every point of every run, kept where SPEC section 4 says it belongs."""
    out = []
    for i, run_id in enumerate(chain_ids):
        low = fork_steps[i - 1] if i > 0 else -math.inf
        high = fork_steps[i] if i < len(fork_steps) else math.inf
        out += [(p.step, p.value, run_id) for p in store.history(run_id, "m") if low < p.step <= high]
    return sorted(out)


def test_stitched_history_matches_a_slow_reference(store: Store) -> None:
    a, b, c = build_abc(store)
    expected = reference_stitched(store, [a.run_id, b.run_id, c.run_id], [50, 150])
    stitched = store.stitched_history(c.run_id, "m")
    assert list(zip(stitched.steps, stitched.values, stitched.run_ids, strict=True)) == expected
    assert stitched.steps == list(range(251))
    zoomed = store.stitched_history(c.run_id, "m", 40, 160)
    assert list(zip(zoomed.steps, zoomed.values, zoomed.run_ids, strict=True)) == [
        point for point in expected if 40 <= point[0] <= 160
    ]
    own = store.history(c.run_id, "m")
    assert own.steps == list(range(151, 251))  # metrics are never copied into the fork


def comparable(buckets: list[Bucket]) -> list[tuple[Any, ...]]:
    """Buckets as tuples where a NaN ``last`` compares equal to NaN (it was logged, so it is kept)."""
    return [(b.start, b.end, b.min, b.max, "nan" if math.isnan(b.last) else b.last, b.count, b.run_id) for b in buckets]


def reference_buckets(points: list[tuple[int, float, int]], count: int) -> list[Bucket]:
    low, high = points[0][0], points[-1][0]
    width = max(1, -(-(high - low + 1) // count))
    groups: dict[int, list[tuple[int, float, int]]] = {}
    for point in points:
        groups.setdefault((point[0] - low) // width, []).append(point)
    out = []
    for group in groups.values():
        finite = [value for _, value, _ in group if not math.isnan(value)]
        out.append(
            Bucket(
                start=group[0][0],
                end=group[-1][0],
                min=min(finite) if finite else None,
                max=max(finite) if finite else None,
                last=group[-1][1],
                count=len(group),
                run_id=group[-1][2],
            )
        )
    return out


def test_downsampled_stitched_series_matches_a_slow_reference(store: Store) -> None:
    a, b, c = build_abc(store)
    c.log([(200, math.nan), (201, 1e9)])  # a spike and a NaN must survive downsampling
    expected = reference_stitched(store, [a.run_id, b.run_id, c.run_id], [50, 150])
    for count in (1, 7, 32, 1000):
        got = store.downsampled(c.run_id, "m", count, stitched=True)
        assert comparable(got) == comparable(reference_buckets(expected, count))
    own = [(p.step, p.value, c.run_id) for p in store.history(c.run_id, "m")]
    assert comparable(store.downsampled(c.run_id, "m", 10)) == comparable(reference_buckets(own, 10))
    assert max(bucket.max or 0.0 for bucket in store.downsampled(c.run_id, "m", 3, stitched=True)) == 1e9


# -- deletion ----------------------------------------------------------------------------------


def test_a_parent_with_forks_or_nested_runs_cannot_be_deleted(store: Store) -> None:
    parent = new_run(store, "p" * 32)
    parent.log([(0, 1.0), (1, 2.0)])
    finish(parent)
    fork = new_run(store, "f" * 32, fork_run_id=parent.run_id, fork_step=1)
    finish(fork)
    with pytest.raises(DeletionRefusedError, match="fork"):
        store.delete_run(ref(parent.run_id))
    store.delete_run(ref(fork.run_id))
    nested = new_run(store, "n" * 32, parent_run_id=parent.run_id)
    finish(nested)
    with pytest.raises(DeletionRefusedError, match="nested"):
        store.delete_run(ref(parent.run_id))
    assert points(store, parent.run_id) == [(0, 1.0), (1, 2.0)]  # a refused delete removes nothing
    store.delete_run(ref(nested.run_id))
    store.delete_run(ref(parent.run_id))
    assert store.runs() == []
    with pytest.raises(RunNotFoundError):
        store.run(ref(parent.run_id))


# -- logs --------------------------------------------------------------------------------------


def test_logs_page_with_after_limit_and_search(store: Store) -> None:
    run = new_run(store, "g" * 32)
    run.append(
        journal.Text.new(T0, "stdout", "epoch 1\nepoch 2\n"),
        journal.Text.new(T0 + 1, "stderr", "WARNING: slow\n"),
        journal.Text.new(T0 + 2, "log", "epoch 3 done\n"),
    )
    assert run.offer()
    lines = store.logs(run.run_id)
    assert [(line.stream, line.text) for line in lines] == [
        ("stdout", "epoch 1"),
        ("stdout", "epoch 2"),
        ("stderr", "WARNING: slow"),
        ("log", "epoch 3 done"),
    ]
    ids = [line.id for line in lines]
    assert ids == sorted(set(ids))  # increasing, no id twice
    page = store.logs(run.run_id, limit=2)
    assert page == lines[:2]
    assert store.logs(run.run_id, after=page[-1].id, limit=2) == lines[2:]
    assert store.logs(run.run_id, after=lines[-1].id) == []
    assert [line.text for line in store.logs(run.run_id, search="warning")] == ["WARNING: slow"]
    assert [line.text for line in store.logs(run.run_id, search="EPOCH", after=ids[0])] == ["epoch 2", "epoch 3 done"]
    assert [line.text for line in store.logs(run.run_id, streams=["log"])] == ["epoch 3 done"]
    # a tailing reader sees a later line exactly once
    run.append(journal.Text.new(T0 + 3, "stdout", "epoch 4\n"))
    assert run.offer()
    assert [line.text for line in store.logs(run.run_id, after=lines[-1].id)] == ["epoch 4"]


def test_system_samples_page_and_group_by_key(store: Store) -> None:
    run = new_run(store, "s" * 32)
    run.append(
        journal.System.new(T0 + 1, {"sys/cpu": 10.0, "sys/mem": 1.0}),
        journal.System.new(T0 + 2, {"sys/cpu": 20.0}),
    )
    assert run.offer()
    metrics = store.system_metrics(run.run_id)
    assert {key: [(p.time, p.value) for p in samples] for key, samples in metrics.items()} == {
        "sys/cpu": [(T0 + 1, 10.0), (T0 + 2, 20.0)],
        "sys/mem": [(T0 + 1, 1.0)],
    }
    first = store.system_samples(run.run_id, limit=1)
    rest = store.system_samples(run.run_id, after=first[-1].id)
    assert len(first) + len(rest) == 3
    assert store.history(run.run_id, "sys/cpu") == History.empty()  # system samples are not user metrics


# -- blobs -------------------------------------------------------------------------------------


def test_blobs_are_content_addressed_idempotent_and_bad_names_are_refused(store: Store) -> None:
    name = store.put_blob(b"hello", "json")
    assert store.put_blob(b"hello", "json") == name
    assert name.endswith(".json")
    assert store.read_blob(name) == b"hello"
    with store.open_blob(name) as blob:
        assert blob.read() == b"hello"
    for bad in ("../runlane.db", "/etc/passwd", "x.png", ""):
        with pytest.raises(ValueError, match="not a blob name"):
            store.open_blob(bad)
    missing = "0" * 64 + ".png"
    with pytest.raises(StoreError):
        store.open_blob(missing)


def test_run_files_and_images_come_back_as_logged(store: Store) -> None:
    run = new_run(store, "i" * 32)
    png = store.put_blob(b"\x89PNG fake", "png")
    env = store.put_blob(b"{}", "json")
    run.append(
        journal.Image.new(T0, "samples", 2, "second", png, 4, 3),
        journal.Image.new(T0, "samples", 1, None, png, 4, 3),
        journal.File.new(T0, "environment", env, {"python": "3"}),
    )
    assert run.offer()
    images = store.images(run.run_id, "samples")
    assert [(image.step, image.caption, image.blob) for image in images] == [(1, None, png), (2, "second", png)]
    found = store.run_file(run.run_id, "environment")
    assert found is not None
    assert (found.blob, found.meta) == (env, {"python": "3"})
    assert store.run_file(run.run_id, "code") is None


# -- writers: reattaching, heartbeats, abandoned runs -------------------------------------------


def test_attach_continues_the_step_and_only_one_writer_owns_the_run(store: Store) -> None:
    run = new_run(store, "h" * 32)
    run.log([(0, 1.0), (7, 2.0)])
    beside = store.attach(ref(run.run_id), spec("w-side"))
    assert beside.owner is False  # the first writer is still open: it decides the final status
    run.append(journal.End.new(T0 + 1, None, None))  # close() without ending the run
    assert run.offer()
    assert store.run(ref(run.run_id)).status == "running"
    store.close_writer("w-side")
    again = store.attach(RunRef("uid", "h" * 32), spec("w-again"))
    assert again.owner is True
    assert again.next_step == 8
    assert again.info.id == run.run_id
    assert again.info.status == "running"
    store.close_writer("w-again", "finished")
    ended = store.run(ref(run.run_id))
    assert ended.status == "finished"
    assert ended.ended_at is not None


def test_heartbeats_show_in_open_writers_and_abandoned_runs_fail(store: Store) -> None:
    alive = new_run(store, "v" * 32)
    dead = new_run(store, "d" * 32)
    store.heartbeat([alive.writer_id], T0 + 500)
    beats = {writer.id: writer.heartbeat_at for writer in store.open_writers()}
    assert beats[alive.writer_id] == T0 + 500
    assert all(writer.owner for writer in store.open_writers())
    store.close_writer(dead.writer_id)  # gone without an ending
    failed = store.fail_abandoned(
        [alive.run_id, dead.run_id], {dead.run_id: "process vanished"}, {dead.run_id: T0 + 600}
    )
    assert failed == [dead.run_id]  # the run with an open owner is left running
    info = store.run(ref(dead.run_id))
    assert (info.status, info.status_reason, info.ended_at) == ("failed", "process vanished", T0 + 600)
    assert store.run(ref(alive.run_id)).status == "running"


# -- the runs page -----------------------------------------------------------------------------


def test_runs_page_sorts_by_config_and_summary_fields_with_missing_values_last(store: Store) -> None:
    lrs = [0.1, 0.3, None, 0.2]
    made = []
    for i, lr in enumerate(lrs):
        run = new_run(store, f"{i:032x}", config={} if lr is None else {"opt": {"lr": lr}}, name=f"run {i}")
        if lr is not None:
            run.append(journal.Summary.new(T0, {"acc": 1 - lr}))
            assert run.offer()
        made.append(run.run_id)

    def ids(page: RunsPage) -> list[int]:
        return [r.id for r in page.runs]

    ascending = store.runs_page(RunsQuery(project="p", sort="config.opt.lr", descending=False))
    assert ids(ascending) == [made[0], made[3], made[1], made[2]]
    descending = store.runs_page(RunsQuery(project="p", sort="summary.acc"))
    assert ids(descending) == [made[0], made[3], made[1], made[2]]
    assert descending.total == 4


def test_runs_page_cursor_visits_every_matching_run_once(store: Store) -> None:
    made = [new_run(store, f"{i:032x}", tags=("even",) if i % 2 == 0 else ()).run_id for i in range(7)]
    seen: list[int] = []
    cursor = None
    while True:
        page = store.runs_page(RunsQuery(project="p", tags=("even",), limit=3, cursor=cursor))
        seen.extend(r.id for r in page.runs)
        assert page.total == 4
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [made[6], made[4], made[2], made[0]]


def test_runs_page_searches_display_id_name_alias_and_notes_ignoring_case(store: Store) -> None:
    a = new_run(store, "a" * 32, name="ResNet baseline")
    b = new_run(store, "b" * 32, alias="best-resnet")
    new_run(store, "c" * 32, notes="a transformer")
    page = store.runs_page(RunsQuery(project="p", search="RESNET"))
    assert {r.id for r in page.runs} == {a.run_id, b.run_id}
    display = store.run(ref(b.run_id)).display_id
    assert [r.id for r in store.runs_page(RunsQuery(search=display)).runs] == [b.run_id]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (RunsQuery(sort="colour"), "sort='colour'"),
        (RunsQuery(sort="config."), "sort='config.'"),
        (RunsQuery(statuses=("done",)), "status 'done'"),
        (RunsQuery(limit=0), "limit"),
        (RunsQuery(cursor="not a cursor"), "cursor"),
    ],
)
def test_runs_page_refuses_bad_queries_naming_the_argument(store: Store, query: RunsQuery, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        store.runs_page(query)


def random_runs(store: Store, rng: random.Random, count: int) -> None:
    """Runs whose sortable fields take few values (ties), every JSON type and absences, in two projects."""
    numbers: list[Any] = [0, 1, 2.5, -1, 1.0, True, False, 1e300, -0.5]
    strings: list[Any] = ["a", "B", "b", "", "ä", "a b"]
    others: list[Any] = [None, [1], {"x": 1}]

    def value() -> Any:
        return rng.choice([*numbers, *strings, *others, "missing", "missing"])

    def fields() -> dict[str, Any]:
        out = {}
        for key in ("lr", "name"):
            chosen = value()
            if chosen != "missing":
                out[key] = chosen
        nested = rng.choice(["object", "list", "missing"])
        if nested == "object":
            out["opt"] = {"lr": value()} if rng.random() < 0.8 else {}
        elif nested == "list":
            out["opt"] = [value()]
        return out

    for i in range(count):
        run = new_run(
            store,
            f"{i:032x}",
            project=rng.choice(["p", "p", "q"]),
            name=rng.choice([None, "alpha", "Alpha beta", "gamma", "ä", ""]),
            alias=rng.choice([None, None, "best-AL", "al_1", "100%"]),
            notes=rng.choice([None, "ALPHA notes", "a_b", "x"]),
            config=fields(),
            tags=tuple(tag for tag in ("a", "b", "c") if rng.random() < 0.5),
        )
        run.append(journal.Summary.new(T0, fields()))
        if rng.random() < 0.7:
            run.append(journal.Primary.new(T0, "loss", rng.choice(["min", "max"])))
        for step in range(rng.randrange(4)):
            loss = rng.choice([0.5, 1.0, 2.0, math.nan, math.inf, -math.inf])
            run.append(journal.Metrics.new(T0 + step, step, None, {"loss": loss}))
        ending = rng.choice(["finished", "failed", "killed", None, None])
        if ending is not None:
            run.append(journal.End.new(T0 + rng.choice([5.0, 50.0, 500.0]), ending, None))
        assert run.offer()


def reference(store: Store, query: RunsQuery) -> RunsPage:
    candidates = store.runs(query.project, list(query.statuses) or None, list(query.tags) or None, metrics="primary")
    return reference_page(candidates, query)


SORTS = (*COLUMNS, BEST, "config.lr", "config.name", "config.opt.lr", "config.opt", "summary.lr", 'config.no"such')


def test_runs_page_returns_the_reference_pages_over_random_runs(store: Store) -> None:
    rng = random.Random(7)
    random_runs(store, rng, 60)
    queries = [
        RunsQuery(
            project=rng.choice([None, "p", "q"]),
            sort=sort,
            descending=descending,
            statuses=rng.choice([(), (), ("running",), ("finished", "failed")]),
            tags=rng.choice([(), (), ("a",), ("a", "b")]),
            search=rng.choice([None, None, "AL", "-1", "a_", "100%", "ä"]),
            limit=rng.choice([1, 4, 7, 50]),
        )
        for sort in SORTS
        for descending in (True, False)
        for _ in range(3)
    ]
    for query in queries:
        cursor = None
        while True:
            paged = replace(query, cursor=cursor)
            got, expected = store.runs_page(paged), reference(store, paged)
            assert [r.id for r in got.runs] == [r.id for r in expected.runs], paged
            assert (got.total, got.next_cursor) == (expected.total, expected.next_cursor), paged
            assert [(r.display_id, r.best_value, r.config) for r in got.runs] == [
                (r.display_id, r.best_value, r.config) for r in expected.runs
            ]
            if got.next_cursor is None:
                break
            cursor = got.next_cursor


def test_runs_page_of_an_unknown_project_is_project_not_found(store: Store) -> None:
    new_run(store, "a" * 32)
    with pytest.raises(ProjectNotFoundError, match="nowhere"):
        store.runs_page(RunsQuery(project="nowhere"))


# -- threads: a server reads from many while one writes -------------------------------------------------


def test_many_threads_read_while_one_ingests(store: Store) -> None:
    import threading

    run = new_run(store, "threads")
    batches, per_batch = 60, 50
    errors: list[BaseException] = []
    done = threading.Event()
    seen: dict[int, list[int]] = {}

    def write() -> None:
        try:
            for batch in range(batches):
                first = batch * per_batch
                run.log([(step, float(step)) for step in range(first, first + per_batch)])
                run.append(journal.Text.new(T0 + first, "log", f"batch {batch}"))
                assert run.offer()
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read(index: int) -> None:
        counts = seen.setdefault(index, [])
        try:
            while True:
                finished = done.is_set()
                lines = store.logs(run.run_id)
                history = store.history(run.run_id, "m")
                # Only committed batches, each whole: a reader never sees another thread's transaction.
                assert len(history) % per_batch == 0
                assert list(history.steps) == list(range(len(history)))
                assert len(history) >= len(lines) * per_batch  # a batch's line is offered after its points
                [info] = store.runs()
                assert info.id == run.run_id
                counts.append(len(history))
                if finished:
                    return
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(i,)) for i in range(6)]
    writer = threading.Thread(target=write)
    for thread in [*readers, writer]:
        thread.start()
    for thread in [writer, *readers]:
        thread.join(timeout=120)
    assert not errors, errors
    for counts in seen.values():
        assert counts == sorted(counts)  # what a reader saw never went back
        assert counts[-1] == batches * per_batch


def test_project_metadata_and_rename_are_atomic_and_kept(store: Store) -> None:
    store.create_project("vision")
    store.create_project("audio")
    assert store.project_meta("vision") == {}
    store.update_project("vision", meta={"mlflow.tag.team": "cv", "mlflow.lifecycle_stage": "deleted"})
    store.update_project("vision", meta={"mlflow.lifecycle_stage": None, "mlflow.tag.team": "cv2"})
    assert store.project_meta("vision") == {"mlflow.tag.team": "cv2"}
    key = next(p.key for p in store.projects() if p.name == "vision")
    renamed = store.update_project("vision", rename="vision/v2", meta={"note": "moved"})
    assert (renamed.name, renamed.key) == ("vision/v2", key)
    assert store.project_meta("vision/v2") == {"mlflow.tag.team": "cv2", "note": "moved"}
    with pytest.raises(ProjectNotFoundError):
        store.project_meta("vision")
    with pytest.raises(ValueError, match="already exists"):
        store.update_project("vision/v2", rename="audio", meta={"note": "lost"})
    assert store.project_meta("vision/v2")["note"] == "moved"  # nothing of a refused update is kept
    with pytest.raises(ProjectNotFoundError):
        store.update_project("missing", meta={"a": "b"})
