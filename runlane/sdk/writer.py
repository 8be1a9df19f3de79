"""The writer thread: one per (process, store), the only user of the store's write connection.

It tails the journals of every run this process has open, applies what they hold in batches, and runs
lifecycle calls (create, resume, finish) handed to it by other threads. Training threads never wait on
it, except in ``init()`` (to get the run's id) and ``finish()``/``close()`` (to drain).

The thread exists only while a run is open: the last ``release()`` drains, stops and joins it, so a
script that has finished its runs has no runlane thread left.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..journal import SUFFIX, JournalFile, JournalReader
from ..logs import log
from ..recovery import recover
from ..store import open_store
from ..store.base import Store, WriterSpec

T = TypeVar("T")

POLL_INTERVAL_S = 0.2  # how long an idle writer sleeps before looking at the journals again
HEARTBEAT_INTERVAL_S = 15.0
RETRY_MAX_S = 5.0  # back-off ceiling when the store refuses a batch (locked, disk full)


class _Call:
    """A function to run on the writer thread, and the place its result comes back to."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Store], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


@dataclass
class _Tail:
    run_id: int
    path: Path
    reader: JournalReader


class StoreWriter:
    """Owns a store on its own thread. Use ``acquire()``/``release()`` rather than constructing one."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self._calls: deque[_Call] = deque()
        self._tails: dict[str, _Tail] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self.users = 0
        self._thread = threading.Thread(target=self._main, name="runlane-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    # -- called from other threads --------------------------------------------------------------

    def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the writer thread and return its result (or raise its error)."""
        if not self._thread.is_alive():
            raise RuntimeError("runlane's writer thread is not running")
        call = _Call(fn)
        self._calls.append(call)
        self._wake.set()
        while not call.done.wait(1.0):
            if not self._thread.is_alive() and not call.done.is_set():
                raise RuntimeError("runlane's writer thread stopped before it could do this; see the log above")
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[no-any-return]

    def follow(self, writer_id: str, run_id: int, journal: Path, register: WriterSpec | None = None) -> None:
        """Start tailing a journal whose records belong to ``run_id``; with ``register``, first add that writer
        to the run (another journal of this process for a run it writes, see ``SideJournal``)."""

        def add(store: Store) -> None:
            if register is not None:
                store.add_writer(run_id, register)
            self._tails[writer_id] = _Tail(run_id, journal, JournalReader(journal))

        self.call(add)

    def unfollow(self, writer_id: str, status: str | None, reason: str | None) -> None:
        """Drain a journal completely, close the writer in the store (ending the run with ``status``
        if given) and delete the journal, whose every record is now in the store."""

        def finish(store: Store) -> None:
            tail = self._tails[writer_id]
            while self._apply_batch(store, writer_id, tail):  # a store error propagates to finish()
                pass
            if not tail.reader.at_end():
                raise RuntimeError(f"journal {tail.path} holds an unreadable record; it was kept for inspection")
            store.close_writer(writer_id, status=status, reason=reason)
            del self._tails[writer_id]
            tail.reader.close()
            tail.path.unlink(missing_ok=True)

        self.call(finish)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    # -- the thread -----------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            store = open_store(self.store_dir)
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        try:
            try:
                recover(store, self.store_dir)
            except Exception:  # a damaged leftover must not keep this process from tracking its own runs
                log.exception("runlane: could not recover runs left behind by other processes")
            self._ready.set()
            self._loop(store)
        except BaseException:
            log.exception("runlane: the writer thread failed; what was logged stays in the journals")
            raise
        finally:
            for tail in self._tails.values():
                tail.reader.close()
            store.close()

    def _loop(self, store: Store) -> None:
        next_heartbeat = time.monotonic() + HEARTBEAT_INTERVAL_S
        while True:
            while self._calls:
                call = self._calls.popleft()
                try:
                    call.result = call.fn(store)
                except BaseException as exc:
                    call.error = exc
                call.done.set()
            busy = False
            if time.monotonic() >= self._retry_at:
                for writer_id, tail in list(self._tails.items()):
                    busy = self._drain(store, writer_id, tail) or busy
            now = time.monotonic()
            if now >= next_heartbeat and self._tails:
                next_heartbeat = now + HEARTBEAT_INTERVAL_S
                self._guarded(store.heartbeat, list(self._tails), time.time())
            if self._stopping and not self._calls:
                return
            if not busy:
                self._wake.wait(POLL_INTERVAL_S)
                self._wake.clear()

    @staticmethod
    def _apply_batch(store: Store, writer_id: str, tail: _Tail) -> bool:
        """Apply one batch of a journal; True if it had records (there may be more)."""
        batch = tail.reader.read()
        if not batch.records:
            return False
        try:
            store.ingest(writer_id, tail.run_id, batch.records, batch.start, batch.end)
        except BaseException:
            # Keep the records: rewind so the same batch is offered again.
            tail.reader.close()
            tail.reader = JournalReader(tail.path, batch.start)
            raise
        return True

    def _drain(self, store: Store, writer_id: str, tail: _Tail) -> bool:
        return self._guarded(self._apply_batch, store, writer_id, tail)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn``; on failure back off instead of raising. Returns ``fn``'s truth, False on failure."""
        try:
            result = fn(*args)
        except Exception as exc:
            # The data is safe in the journal; back off and try again rather than losing or crashing.
            self._retry_delay = min(RETRY_MAX_S, max(0.05, self._retry_delay * 2))
            self._retry_at = time.monotonic() + self._retry_delay
            log.warning("runlane: store write failed (%s); retrying in %.2fs", exc, self._retry_delay)
            return False
        self._retry_delay = 0.0
        return bool(result) if result is not None else True


class SideJournal:
    """Another journal of this process for a run it writes: a writer of the run with the same identity as the
    process (host, pid, start time), tailed by the writer thread like the run's own journal.

    The console tee appends to it from its own process. Carrying the training process's identity makes its
    records the process's: the run's status and reason come out the same. ``journal.hold`` covers the moment
    in between, when the process is gone and the tee still stores its last output.
    """

    def __init__(self, store_writer: StoreWriter, process: WriterSpec, run_id: int) -> None:
        self._store_writer = store_writer
        self.writer_id = os.urandom(16).hex()
        name = f"journals/{self.writer_id}{SUFFIX}"
        self.file = JournalFile(store_writer.store_dir / name)
        try:
            store_writer.follow(
                self.writer_id, run_id, self.file.path, register=process._replace(id=self.writer_id, journal=name)
            )
        except BaseException:
            self.file.close()
            self.file.path.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Store everything it holds, close its writer (the run's status stays) and delete it."""
        self.file.close()
        self._store_writer.unfollow(self.writer_id, None, None)


# -- one writer per (process, store directory) --------------------------------------------------

_registry: dict[Path, StoreWriter] = {}
_registry_lock = threading.Lock()


def acquire(store_dir: Path) -> StoreWriter:
    """The writer for ``store_dir``, started if needed; pair every call with ``release()``."""
    with _registry_lock:
        writer = _registry.get(store_dir)
        if writer is None:
            writer = _registry[store_dir] = StoreWriter(store_dir)
        writer.users += 1
        return writer


def release(writer: StoreWriter) -> None:
    """Give back a writer; the last user stops its thread."""
    with _registry_lock:
        writer.users -= 1
        if writer.users > 0:
            return
        if _registry.get(writer.store_dir) is writer:
            del _registry[writer.store_dir]
    writer.stop()


def _forget_in_child() -> None:
    # A forked child has the parent's writer objects but not their threads; it must start its own.
    global _registry_lock
    _registry.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
