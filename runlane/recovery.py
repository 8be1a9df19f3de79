"""Replay what dead writers left in their journals, exactly once, and fail the runs they abandoned.

Runs whenever a process opens the embedded store (the SDK's writer thread and ``runlane.Api`` both do),
so a crashed training script's last points appear as soon as anyone looks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError
from .journal import JournalCorruptError, JournalReader, is_held
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
                    log.warning("%s; the records after it are skipped", exc)
                    result.note = f"journal damaged at byte {exc.offset}; later records were skipped"
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
                result.last_time = batch.records[-1][1]
        finally:
            reader.close()


def recover(store: Store, store_dir: Path) -> RecoveryReport:
    """Replay and close every writer whose process is gone, then fail runs left without writers."""
    report = RecoveryReport()
    now = time.time()
    reasons: dict[int, str] = {}
    ended_at: dict[int, float] = {}
    for writer in store.open_writers():
        if writer_is_alive(writer.host, writer.pid, writer.pid_started, writer.heartbeat_at, now):
            continue
        path = store_dir / writer.journal
        if is_held(path):
            # Another process still appends to it (the console tee storing a dead process's last output): it
            # is replayed, and the run ended, once that process has let go.
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
        path.unlink(missing_ok=True)
        report.replayed_writers.append(writer.id)
        reasons[writer.run_id] = reason
        last_seen = max(writer.heartbeat_at, writer.last_record_at or 0.0, replay.last_time or 0.0)
        ended_at[writer.run_id] = max(ended_at.get(writer.run_id, 0.0), last_seen)
    if reasons:
        report.failed_runs = store.fail_abandoned(list(reasons), reasons, ended_at)
        for run_id in report.failed_runs:
            log.warning("run %s marked failed: %s", run_id, reasons[run_id])
    return report
