"""The drain loop: tail one process's journals into the store, each batch exactly once.

A ``Drain`` serves the writers of one process (its *owner*: host, pid and start time). It finds their
journals through the store itself (the writers the owner registered and has not closed), so the owner
never has to tell it anything: the journal and the store are the whole protocol, and the drain is a
helper for speed, never needed for correctness. The owner applies what is left itself when a run ends.

Why the offset handling looks the way it does: the store commits a batch together with the journal
offset it reaches, so the store, not this loop, knows what is applied. After any failure, including a
lost acknowledgement (the store committed, the answer never arrived), nothing is assumed: an
``OffsetConflictError`` carries the committed offset and the reader goes on from there.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import NamedTuple

from .. import journal, pending, spool_blobs
from ..config import Tunables
from ..diagnostics import log
from ..errors import OffsetConflictError, StoreUnavailableError
from ..journal import JournalCorruptError, JournalReader
from ..spool import journal_path
from ..store.base import OpenWriter, Store

# How much journal one batch reads at most. Bounded so that the records of one batch, as Python objects,
# stay a few MB however far behind the drain is (a backlog stays on disk, not in memory).
BATCH_BYTES = 1024 * 1024


__all__ = ["BATCH_BYTES", "Drain", "Owner", "Tunables"]


class Owner(NamedTuple):
    """The process whose writers a drain serves."""

    host: str
    pid: int
    pid_started: float | None

    def owns(self, writer: OpenWriter) -> bool:
        return writer.host == self.host and writer.pid == self.pid and writer.pid_started == self.pid_started


class _Tail:
    # A plain class, not a dataclass: this module loads on every first init(), and a dataclass costs
    # generating and compiling its methods there.
    __slots__ = ("broken", "path", "reader", "writer")

    def __init__(self, writer: OpenWriter, path: Path, reader: JournalReader) -> None:
        self.writer = writer
        self.path = path
        self.reader = reader
        self.broken = False  # damaged or refused: kept for inspection, left to the owner and recovery


class Drain:
    """Moves the owner's journal records into ``store``; call ``pump()`` repeatedly from one thread.

    ``store_dir`` is the embedded store's directory (journals in its own spool are named relative to
    it), None for a store named by a URL.
    """

    def __init__(
        self, store: Store, store_dir: Path | None, owner: Owner, tunables: Tunables, *, pending_dir: Path | None = None
    ) -> None:
        self.store = store
        self.store_dir = store_dir
        # A spool outside the store (a server's): the owner's runs started while it was unreachable wait there
        # to be registered (runlane.pending), and their blobs to be delivered (runlane.spool_blobs).
        self.pending_dir = pending_dir
        self.owner = owner
        self.tunables = tunables
        self._tails: dict[str, _Tail] = {}
        self.owner_writers = 0  # the owner's open writers at the last look (with a journal here or not)
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._next_heartbeat = time.monotonic() + tunables.heartbeat_s

    @property
    def following(self) -> int:
        return len(self._tails)

    def pump(self, *, heartbeat: bool = True) -> bool:
        """Look for the owner's writers, then apply at most one batch of each journal.

        True if there was work (there may be more). Transient store errors back off instead of raising.
        """
        now = time.monotonic()
        if now < self._retry_at:
            return False
        busy = False
        try:
            self._discover()
            for tail in list(self._tails.values()):
                busy = self._pump_one(tail) or busy
            if heartbeat and self._tails and now >= self._next_heartbeat:
                self._next_heartbeat = now + self.tunables.heartbeat_s
                self.store.heartbeat(list(self._tails), time.time())
        except StoreUnavailableError as exc:
            self._back_off(exc)
            return False
        self._retry_delay = 0.0
        return busy

    def _discover(self) -> None:
        if self.pending_dir is not None:
            pending.register_all(self.store, self.pending_dir, self.owner.pid)
        open_now = {w.id: w for w in self.store.open_writers() if self.owner.owns(w)}
        self.owner_writers = len(open_now)
        for writer_id in [w for w in self._tails if w not in open_now]:
            self._drop(writer_id)  # closed: by its END record, or by a reader that judged it dead
        for writer_id, writer in open_now.items():
            if writer_id not in self._tails:
                path = journal_path(writer.journal, self.store_dir)
                if path is not None and path.exists():
                    self._tails[writer_id] = _Tail(writer, path, JournalReader(path, writer.offset))

    def _pump_one(self, tail: _Tail) -> bool:
        if tail.broken:
            return False
        try:
            batch = tail.reader.read(BATCH_BYTES)
        except JournalCorruptError as exc:
            log.error("runlane: %s; the journal is kept for inspection", exc)
            tail.broken = True
            return False
        if not batch.records:
            return False
        writer = tail.writer
        try:
            local = [] if self.pending_dir is None else spool_blobs.deliver(self.store, batch.records, tail.path.parent)
            self.store.ingest(writer.id, writer.run_id, batch.records, batch.start, batch.end)
            spool_blobs.forget(local)
        except OffsetConflictError as exc:
            # The store holds a different prefix than this reader assumed (a lost acknowledgement, or
            # the owner applying the same journal as its run ends): continue from what the store holds.
            self._reopen(tail, exc.committed)
            return True
        except StoreUnavailableError:
            self._reopen(tail, batch.start)  # offer the same records again once the store is back
            raise
        except Exception as exc:  # a permanent refusal: retrying cannot help; keep the journal, say so
            log.error("runlane: the store refused records of %s: %s; the journal is kept", tail.path, exc)
            tail.broken = True
            return False
        if batch.records[-1][0] == journal.END:
            # The store closed the writer with this batch: every record of the journal is in.
            self._drop(writer.id)
            tail.path.unlink(missing_ok=True)
        return True

    def _reopen(self, tail: _Tail, offset: int) -> None:
        tail.reader.close()
        tail.reader = JournalReader(tail.path, offset)

    def _drop(self, writer_id: str) -> None:
        tail = self._tails.pop(writer_id)
        tail.reader.close()

    def _back_off(self, exc: Exception) -> None:
        # The data is safe in the journal; wait and offer it again rather than losing or crashing.
        self._retry_delay = min(self.tunables.retry_max_s, max(0.05, self._retry_delay * 2))
        self._retry_at = time.monotonic() + self._retry_delay
        log.warning("runlane: store write failed (%s); retrying in %.2fs", exc, self._retry_delay)

    def backlog(self) -> int:
        """Journal bytes of the followed writers not read into the store yet (broken journals excluded)."""
        total = 0
        for tail in self._tails.values():
            if not tail.broken and tail.path.exists():
                total += max(0, tail.path.stat().st_size - tail.reader.offset)
        if self.pending_dir is not None:  # journals of runs the store has not registered yet: all of them
            for path in self.pending_dir.glob(f"{self.owner.pid}.*{pending.SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    total += path.with_suffix(journal.SUFFIX).stat().st_size
        return total

    def close(self) -> None:
        for writer_id in list(self._tails):
            self._drop(writer_id)
