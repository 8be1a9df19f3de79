"""Replay what dead writers left in their journals, exactly once, and fail the runs their owners abandoned.

Runs whenever a process opens the embedded store (the SDK's writer thread and ``runlane.Api`` both do),
so a crashed training script's last points appear as soon as anyone looks; and, for the runs involved,
before a resume or a fork, so their step counter and fork range count everything the store will hold.

A journal is deleted only once every record in it is in the store and no process may append to it any
more. A damaged journal is never deleted: the records before the damage are replayed, the rest stays in
the file for inspection, and the writer's close reason (and the run's, if it fails) says where it is.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError
from .journal import JournalCorruptError, JournalReader, record_time
from .liveness import writer_is_alive
from .logs import log
from .store.base import OpenWriter, Store


@dataclass
class RecoveryReport:
    replayed_writers: list[str] = field(default_factory=list)
    failed_runs: list[int] = field(default_factory=list)


@dataclass
class Replay:
    note: str | None = None  # what could not be read, if anything
    last_time: float | None = None  # wall time of the last record replayed
    damaged: bool = False  # records past the damage are only in the journal: keep it


def replay_journal(store: Store, writer: OpenWriter, path: Path) -> Replay:
    """Ingest a dead writer's journal from its committed offset."""
    offset = writer.offset
    result = Replay()
    while True:
        reader = JournalReader(path, offset)
        try:
            while True:
                try:
                    batch = reader.read()
                except JournalCorruptError as exc:
                    log.warning("%s; the records after it are skipped and the journal is kept", exc)
                    result.note = (
                        f"journal damaged at byte {exc.offset}; later records were skipped;"
                        f" the journal is kept at {writer.journal}"
                    )
                    result.damaged = True
                    return result
                if not batch.records:
                    return result
                try:
                    store.ingest(writer.id, writer.run_id, batch.records, batch.start, batch.end)
                except StoreError:
                    # Another process is replaying the same journal and committed a batch that does not
                    # line up with ours: continue from what the store now holds.
                    current = {w.id: w for w in store.open_writers()}.get(writer.id)
                    if current is None or current.offset == offset:
                        raise
                    offset = current.offset
                    break
                offset = batch.end
                result.last_time = record_time(batch.records[-1])
        finally:
            reader.close()


def recover(store: Store, store_dir: Path, run_ids: Collection[int] | None = None) -> RecoveryReport:
    """Replay and close every writer whose process is gone (only writers of ``run_ids`` if given), then
    fail the runs their owners left running."""
    report = RecoveryReport()
    now = time.time()
    reasons: dict[int, str] = {}
    ended_at: dict[int, float] = {}
    for writer in store.open_writers():
        if run_ids is not None and writer.run_id not in run_ids:
            continue
        path = store_dir / writer.journal
        alive = writer_is_alive(
            host=writer.host,
            pid_namespace=writer.pid_namespace,
            pid=writer.pid,
            pid_started=writer.pid_started,
            heartbeat_at=writer.heartbeat_at,
            now=now,
            journal_path=path,
        )
        if alive:
            continue
        replay = Replay()
        if path.exists():
            replay = replay_journal(store, writer, path)
        elif writer.offset > 0:
            replay.note = "journal file missing"
        note = replay.note
        who = f"process {writer.pid} on {writer.host}"
        reason = f"{who} exited without finishing the run" + (f" ({note})" if note else "")
        store.close_writer(writer.id, reason=reason)
        if not replay.damaged:
            path.unlink(missing_ok=True)
        report.replayed_writers.append(writer.id)
        if writer.owner or writer.run_id not in reasons:  # the owner's end is the run's reason
            reasons[writer.run_id] = reason
        last_seen = max(writer.heartbeat_at, writer.last_record_at or 0.0, replay.last_time or 0.0)
        ended_at[writer.run_id] = max(ended_at.get(writer.run_id, 0.0), last_seen)
    if reasons:
        report.failed_runs = store.fail_abandoned(list(reasons), reasons, ended_at)
        for run_id in report.failed_runs:
            log.warning("run %s marked failed: %s", run_id, reasons[run_id])
    return report
