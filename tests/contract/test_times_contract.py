"""The store contract for when a run began and ended: the client's times, not the moment they reached the
store (a remote run created once its server is back, a copy made by ``runlane sync``, a late replay)."""

from __future__ import annotations

from runlane import journal
from runlane.store.base import NewRun, Store

from .test_store_contract import T0, Journal, ref, spec


def test_a_run_keeps_the_times_it_was_created_with_and_ends_when_its_end_record_says(store: Store) -> None:
    info = store.create_run(NewRun(uid="times", project="p", created_at=T0, started_at=T0 + 1), spec("w-times"))
    assert (info.created_at, info.started_at, info.ended_at) == (T0, T0 + 1, None)
    writer = Journal(store, "w-times", info.id)
    writer.append(journal.Metrics.new(T0 + 2, 0, None, {"m": 1.0}), journal.End.new(T0 + 5, "finished", None))
    assert writer.offer()
    ended = store.run(ref(info.id))
    assert (ended.created_at, ended.started_at, ended.ended_at, ended.status) == (T0, T0 + 1, T0 + 5, "finished")
    assert ended.duration == 4


def test_a_run_created_without_times_begins_when_the_store_creates_it(store: Store) -> None:
    info = store.create_run(NewRun(uid="now", project="p"), spec("w-now"))
    assert info.created_at == info.started_at > T0
