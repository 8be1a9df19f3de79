"""Replay what dead writers left in their journals, exactly once, and fail the runs their owners abandoned.

Two sides:

- the client side (``deliver_leftovers``): the journals that dead processes of this machine left in a
  spool are replayed into the spool's store; only this machine can, since only it has the files;
- the store side (``close_dead_writers``): writers whose process is gone (by pid on this host, by
  heartbeat age elsewhere) are closed, and runs whose writers are all gone are marked failed.

A writer runs both when it opens a store (``init()``; a drain whose owner died), so a crashed training
script's last points appear as soon as the next run starts; ``runlane recover`` runs them on demand; and
``init()`` runs the store side for the runs involved before a resume or a fork, so their step counter and
fork range count everything the store will hold. Readers never do: opening a store to read writes nothing.

A journal is deleted only once every record in it is in the store and no process may append to it any
more. A damaged journal is never deleted: the records before the damage are replayed, the rest stays in
the file for inspection, and the writer's close reason (and the run's, if it fails) says where it is.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

from . import journal, pending, spool_blobs
from .config import Tunables
from .diagnostics import log
from .errors import OffsetConflictError, StoreUnavailableError
from .journal import JournalCorruptError, JournalReader, record_time
from .liveness import writer_is_alive
from .spool import Spool, journal_path
from .store.base import OpenWriter, Store

# Bounded so that a long backlog is replayed in constant memory (records as Python objects are ~10x the bytes).
REPLAY_BATCH_BYTES = 1024 * 1024
DEFAULT_TUNABLES = Tunables()


class Replay:
    """How a replay went. A plain class, not a dataclass: this module loads on every first init()."""

    __slots__ = ("complete", "damaged", "ended", "last_time", "note")

    def __init__(self) -> None:
        self.note: str | None = None  # what could not be read, if anything
        self.last_time: float | None = None  # wall time of the last record replayed
        self.ended = False  # the journal's END record was applied: its writer closed the way it meant to
        self.complete = False  # every complete record of the file is in the store
        self.damaged = False  # records past the damage are only in the journal: keep it


def replay_journal(
    store: Store, writer: OpenWriter, path: Path, *, deadline: float | None = None, retry_max_s: float = 5.0
) -> Replay:
    """Ingest a writer's journal from its committed offset to the end of the file.

    With a ``deadline`` (``time.monotonic()``), transient store errors are retried with back-off until
    then, and ``Replay.complete`` says whether the end was reached; without one they propagate.
    """
    offset = writer.offset
    result = Replay()
    delay = 0.0
    while True:
        reader = JournalReader(path, offset)
        try:
            while True:
                try:
                    batch = reader.read(REPLAY_BATCH_BYTES)
                except JournalCorruptError as exc:
                    log.warning("%s; the records after it are skipped and the journal is kept", exc)
                    result.note = (
                        f"journal damaged at byte {exc.offset}; later records were skipped;"
                        f" the journal is kept at {writer.journal}"
                    )
                    result.damaged = True
                    return result
                if not batch.records:
                    result.complete = True
                    return result
                try:
                    if deadline is None:
                        local = spool_blobs.deliver(store, batch.records, path.parent)
                        store.ingest(writer.id, writer.run_id, batch.records, batch.start, batch.end)
                    else:  # a busy store must not keep us past the deadline inside one call
                        with store.patience(max(0.01, deadline - time.monotonic())):
                            local = spool_blobs.deliver(store, batch.records, path.parent)
                            store.ingest(writer.id, writer.run_id, batch.records, batch.start, batch.end)
                    spool_blobs.forget(local)
                except OffsetConflictError as exc:
                    # Another process (the writer's drain, another reader) is applying the same journal
                    # and committed a batch that does not line up with ours: go on from there.
                    offset = exc.committed
                    break
                except StoreUnavailableError:
                    if deadline is None or time.monotonic() >= deadline:
                        raise
                    delay = min(retry_max_s, max(0.05, delay * 2), max(0.0, deadline - time.monotonic()))
                    time.sleep(delay)
                    break  # offer the same records again
                delay = 0.0
                offset = batch.end
                result.last_time = record_time(batch.records[-1])
                result.ended = result.ended or batch.records[-1][0] == journal.END
        finally:
            reader.close()


class _Judged(NamedTuple):
    dead: list[OpenWriter]
    # Runs a process still writes to through a journal it handed on (its console tee, storing the last
    # output of a process that died): not failed yet; the last of that process's writers to go fails it.
    still_written: set[tuple[int, str, int, float | None]]


def _judge(
    store: Store, store_dir: Path | None, tunables: Tunables, run_ids: Collection[int] | None, now: float
) -> _Judged:
    dead: list[OpenWriter] = []
    still_written: set[tuple[int, str, int, float | None]] = set()
    for writer in store.open_writers():
        if run_ids is not None and writer.run_id not in run_ids:
            continue
        alive = writer_is_alive(
            host=writer.host,
            pid_namespace=writer.pid_namespace,
            pid=writer.pid,
            pid_started=writer.pid_started,
            heartbeat_at=writer.heartbeat_at,
            now=now,
            journal_path=journal_path(writer.journal, store_dir),
            remote_timeout_s=tunables.remote_timeout_s,
        )
        if alive:
            still_written.add((writer.run_id, writer.host, writer.pid, writer.pid_started))
        else:
            dead.append(writer)
    return _Judged(dead, still_written)


def _settle(store: Store, store_dir: Path | None, judged: _Judged, dead: list[OpenWriter]) -> list[int]:
    """Replay what ``dead`` writers left where this machine can read it, close them, and fail the runs
    left without an owner; return the runs failed."""
    reasons: dict[int, str] = {}
    ended_at: dict[int, float] = {}
    for writer in dead:
        path = journal_path(writer.journal, store_dir)
        replay = Replay()
        if path is not None and path.exists():
            try:
                replay = replay_journal(store, writer, path)
            except FileNotFoundError:  # another deliverer (the writer's own drain) finished it meanwhile
                continue
        elif path is None:
            replay.note = "its journal is not on this machine"
        elif writer.offset > 0:
            replay.note = "journal file missing"
        if replay.ended:  # it finished or closed in time to write its END record; only its drain was late
            if path is not None:
                path.unlink(missing_ok=True)
            continue
        note = replay.note
        who = f"process {writer.pid} on {writer.host}"
        reason = f"{who} exited without finishing the run" + (f" ({note})" if note else "")
        store.close_writer(writer.id, reason=reason)
        if path is not None and not replay.damaged:
            path.unlink(missing_ok=True)
        if (writer.run_id, writer.host, writer.pid, writer.pid_started) in judged.still_written:
            continue
        if writer.owner or writer.run_id not in reasons:  # the owner's end is the run's reason
            reasons[writer.run_id] = reason
        last_seen = max(writer.heartbeat_at, writer.last_record_at or 0.0, replay.last_time or 0.0)
        ended_at[writer.run_id] = max(ended_at.get(writer.run_id, 0.0), last_seen)
    failed: list[int] = []
    if reasons:
        failed = store.fail_abandoned(list(reasons), reasons, ended_at)
        for run_id in failed:
            log.warning("run %s marked failed: %s", run_id, reasons[run_id])
    return failed


def deliver_leftovers(store: Store, spool: Spool, tunables: Tunables = DEFAULT_TUNABLES) -> list[int]:
    """The client side: replay the journals dead processes of this machine left in ``spool`` into its
    store (exactly once, from what the store holds), close their writers, and fail the runs they owned
    and did not end; return the runs failed. Journals of live writers are left to them."""
    in_spool = {path.name for path in spool.journals()}
    if not in_spool:
        return []
    if spool.store_dir is None:  # runs dead processes started while the server was down: register them first
        pending.register_all(store, spool.dir, only_abandoned=True)
    judged = _judge(store, spool.store_dir, tunables, None, time.time())
    mine = [w for w in judged.dead if Path(w.journal).name in in_spool]
    return _settle(store, spool.store_dir, judged, mine) if mine else []


def close_dead_writers(
    store: Store,
    store_dir: Path | None,
    tunables: Tunables = DEFAULT_TUNABLES,
    run_ids: Collection[int] | None = None,
) -> list[int]:
    """The store side: close every writer whose process is gone (only writers of ``run_ids`` if given),
    judged by pid on this host and by heartbeat age (``tunables.remote_timeout_s``) otherwise, replaying
    first what of its journal this machine can read; then fail the runs whose writers are all gone.
    Return the runs failed."""
    judged = _judge(store, store_dir, tunables, run_ids, time.time())
    return _settle(store, store_dir, judged, judged.dead) if judged.dead else []


def recover(
    store: Store,
    spool: Spool | None,
    tunables: Tunables = DEFAULT_TUNABLES,
    run_ids: Collection[int] | None = None,
) -> list[int]:
    """Both sides, as a writer does when it opens a store: this machine's leftovers in ``spool`` first,
    then every dead writer (of ``run_ids`` if given); return the runs failed."""
    store_dir = spool.store_dir if spool is not None else None
    failed = deliver_leftovers(store, spool, tunables) if spool is not None and run_ids is None else []
    return failed + close_dead_writers(store, store_dir, tunables, run_ids)
