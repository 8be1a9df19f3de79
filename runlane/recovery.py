"""Replay what dead writers left in their journals, exactly once, and fail the runs their owners abandoned.

Runs whenever a process opens the embedded store (``init()``, ``runlane.Api`` and a drain whose owner
died all do), so a crashed training script's last points appear as soon as anyone looks; and, for the runs involved,
before a resume or a fork, so their step counter and fork range count everything the store will hold.

A journal is deleted only once every record in it is in the store and no process may append to it any
more. A damaged journal is never deleted: the records before the damage are replayed, the rest stays in
the file for inspection, and the writer's close reason (and the run's, if it fails) says where it is.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from . import journal
from .errors import OffsetConflictError, StoreUnavailableError
from .journal import JournalCorruptError, JournalReader, record_time
from .liveness import writer_is_alive
from .logs import log
from .store.base import OpenWriter, Store

# Bounded so that a long backlog is replayed in constant memory (records as Python objects are ~10x the bytes).
REPLAY_BATCH_BYTES = 1024 * 1024


@dataclass
class Replay:
    note: str | None = None  # what could not be read, if anything
    last_time: float | None = None  # wall time of the last record replayed
    ended: bool = False  # the journal's END record was applied: its writer closed the way it meant to
    complete: bool = False  # every complete record of the file is in the store
    damaged: bool = False  # records past the damage are only in the journal: keep it


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
                        store.ingest(writer.id, writer.run_id, batch.records, batch.start, batch.end)
                    else:  # a busy store must not keep us past the deadline inside one call
                        with store.patience(max(0.01, deadline - time.monotonic())):
                            store.ingest(writer.id, writer.run_id, batch.records, batch.start, batch.end)
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


def recover(store: Store, store_dir: Path, run_ids: Collection[int] | None = None) -> list[int]:
    """Replay and close every writer whose process is gone (only writers of ``run_ids`` if given), then
    fail the runs their owners left running; return the ids of the runs it failed."""
    failed: list[int] = []
    now = time.time()
    reasons: dict[int, str] = {}
    ended_at: dict[int, float] = {}
    dead: list[OpenWriter] = []
    # Runs a process still writes to through a journal it handed on (its console tee, storing the last output
    # of a process that died): not failed yet; the last of that process's writers to be recovered fails it.
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
            journal_path=store_dir / writer.journal,
        )
        if alive:
            still_written.add((writer.run_id, writer.host, writer.pid, writer.pid_started))
        else:
            dead.append(writer)
    for writer in dead:
        path = store_dir / writer.journal
        replay = Replay()
        if path.exists():
            replay = replay_journal(store, writer, path)
        elif writer.offset > 0:
            replay.note = "journal file missing"
        if replay.ended:  # it finished or closed in time to write its END record; only its drain was late
            path.unlink(missing_ok=True)
            continue
        note = replay.note
        who = f"process {writer.pid} on {writer.host}"
        reason = f"{who} exited without finishing the run" + (f" ({note})" if note else "")
        store.close_writer(writer.id, reason=reason)
        if not replay.damaged:
            path.unlink(missing_ok=True)
        if (writer.run_id, writer.host, writer.pid, writer.pid_started) in still_written:
            continue
        if writer.owner or writer.run_id not in reasons:  # the owner's end is the run's reason
            reasons[writer.run_id] = reason
        last_seen = max(writer.heartbeat_at, writer.last_record_at or 0.0, replay.last_time or 0.0)
        ended_at[writer.run_id] = max(ended_at.get(writer.run_id, 0.0), last_seen)
    if reasons:
        failed = store.fail_abandoned(list(reasons), reasons, ended_at)
        for run_id in failed:
            log.warning("run %s marked failed: %s", run_id, reasons[run_id])
    return failed
