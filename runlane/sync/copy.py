"""Copy one run to another store, exactly once however often the copy is interrupted and started again.

The copy is a writer of the target run like any SDK process: ``create_run`` with the run's own uid, then
``ingest`` of the run's record stream (``runlane.sync.records``) under a writer id derived from the uid.
Both calls are idempotent by those ids, and the target commits each batch with its offset, so what the
target holds after any interruption is a prefix of the stream and the next attempt continues after it.

How far an earlier attempt got is learnt in one call: the stream's last batch is its END record alone, and
offering it answers "applied" (everything before was there), "already held" or, most often, the offset
the target has committed, which is where the copy continues.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from ..entities import RunInfo
from ..errors import OffsetConflictError, RunlaneError, RunNotFoundError, StoreError, StoreUnavailableError
from ..liveness import current_pid_namespace, host_name, process_start_time
from ..naming import RunRef
from ..store.base import ForkRequest, NewRun, Store, WriterSpec
from .records import Batch, batches

Outcome = Literal["copied", "continued", "present"]
T = TypeVar("T")

#: How often a long copy tells the target its writer is alive (a server fails runs whose writers go quiet).
HEARTBEAT_S = 15.0


class SyncConflictError(RunlaneError):
    """The target holds a run with this uid that the copy cannot continue: written by someone else, or a
    different version of the run (it changed on the source after an earlier sync)."""


def sync_writer_id(uid: str) -> str:
    """The writer id of every copy of the run ``uid``: the same on every attempt, on every machine, so
    the target's committed offset for it says how far earlier attempts got."""
    return hashlib.sha256(f"runlane-sync:{uid}".encode()).hexdigest()[:32]


def _writer(uid: str) -> WriterSpec:
    pid = os.getpid()
    writer_id = sync_writer_id(uid)
    # No journal file exists under this name: the stream is rebuilt from the source on every attempt.
    return WriterSpec(writer_id, host_name(), pid, process_start_time(pid), f"journals/sync.{writer_id}",
                      current_pid_namespace())  # fmt: skip


class Retrying:
    """Calls into the target, retried with capped back-off while it is unavailable (locked, a server down
    or restarting), for at most ``patience_s`` per call; then the error stands and a later sync goes on."""

    def __init__(self, patience_s: float) -> None:
        self.patience_s = patience_s

    def __call__(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.patience_s
        delay = 0.05
        while True:
            try:
                return call()
            except StoreUnavailableError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(delay, left))
                delay = min(delay * 2, 2.0)


def _find(target: Store, uid: str) -> RunInfo | None:
    try:
        return target.run(RunRef("uid", uid))
    except RunNotFoundError:
        return None


def _held_in_full(copy: RunInfo, run: RunInfo) -> bool:
    # The END record of a copy sets the target's status and end time to the source's exactly; nothing else
    # does (a target that failed an interrupted copy's run records the time it last heard of it).
    return copy.status == run.status and copy.ended_at == run.ended_at


def copy_run(
    source: Store,
    target: Store,
    run: RunInfo,
    *,
    parent_uid: str | None,
    fork_parent_uid: str | None,
    retry: Retrying,
    on_records: Callable[[int], None] | None = None,
) -> Outcome:
    """Copy ``run`` (read from ``source``) to ``target``; its nesting parent and fork parent, named by uid,
    must be on the target already. Returns whether it was copied now, continued from an earlier attempt,
    or found complete."""
    existing = retry(lambda: _find(target, run.uid))
    if existing is not None and _held_in_full(existing, run):
        return "present"
    writer = _writer(run.uid)
    parent_id = retry(lambda: target.resolve(RunRef("uid", parent_uid))) if parent_uid is not None else None
    fork = None
    if fork_parent_uid is not None:
        assert run.fork_step is not None
        # The source recorded the parent that owns the step, so the target resolves to that same parent;
        # config and tags already hold what the fork inherited, so nothing is inherited twice.
        fork = ForkRequest(RunRef("uid", fork_parent_uid), run.fork_step, False, False, keep_project=True)
    new = NewRun(
        uid=run.uid,
        project=run.project,
        name=run.name,
        alias=run.alias,
        notes=run.notes,
        config=run.config,
        tags=run.tags,
        parent_run_id=parent_id,
        fork=fork,
        created_at=run.created_at,
        started_at=run.started_at,
    )
    try:
        copy = retry(lambda: target.create_run(new, writer))
    except ValueError as exc:
        if existing is None:
            raise
        raise SyncConflictError(
            f"run {run.display_id} (uid {run.uid}) is on the target already, not written by runlane sync"
        ) from exc
    committed = 0
    if existing is not None:
        last = None
        for last in batches(source, run):  # noqa: B007 - only the last one, to ask where the copy stopped
            pass
        assert last is not None
        answer = _offer(target, writer.id, copy.id, last, retry)
        if answer is True:
            return "continued"
        if answer is False:
            raise _other_version(run)
        committed = answer
    beat = time.monotonic()
    for batch in batches(source, run):
        if batch.end <= committed:
            continue
        if batch.start != committed:
            raise _other_version(run)
        _put_blobs(source, target, batch, retry)
        answer = _offer(target, writer.id, copy.id, batch, retry)
        committed = batch.end if isinstance(answer, bool) else answer
        if answer is True and on_records is not None:
            on_records(len(batch.records))
        if time.monotonic() - beat >= HEARTBEAT_S:
            retry(lambda: target.heartbeat([writer.id], time.time()))
            beat = time.monotonic()
    return "copied" if existing is None else "continued"


def _other_version(run: RunInfo) -> SyncConflictError:
    # The target's copy is not a prefix of this source's stream (their offsets do not line up).
    return SyncConflictError(
        f"the target holds another version of run {run.display_id} (uid {run.uid}): it changed after an earlier"
        " sync (resumed on the source, or on the target); delete one of the two copies to sync it again"
    )


def _offer(target: Store, writer_id: str, run_id: int, batch: Batch, retry: Retrying) -> bool | int:
    """Ingest ``batch``: True if applied now, False if the target held it, else the offset it has committed."""
    try:
        return retry(lambda: target.ingest(writer_id, run_id, batch.records, batch.start, batch.end))
    except OffsetConflictError as exc:
        return exc.committed


def _put_blobs(source: Store, target: Store, batch: Batch, retry: Retrying) -> None:
    # A record never names a blob the store lacks: each blob is put before the batch that names it.
    for name in batch.blobs:
        data = source.read_blob(name)
        ext = name.rpartition(".")[2]
        stored = retry(lambda data=data, ext=ext: target.put_blob(data, ext))  # type: ignore[misc]
        if stored != name:
            raise StoreError(f"the source's blob {name} does not hold the bytes its name says (they hash to {stored})")
