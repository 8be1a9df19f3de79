"""This process's link to one store: lifecycle calls here, ingest in a drain that does not share our GIL.

Why a separate process: ingest is Python work (unpacking records, building columns), and a writer
*thread* holding the GIL makes the training thread wait inside ``log()``. Measured with 100,000 steps of
10 metrics (benchmarks/bench_writer.py), the mean cost of ``log()`` with a writer thread was several
times a bare msgpack append; with the drain in its own process it is close to the bare append. The
drain process also keeps going when the training process dies, so a crashed run's last points and its
``failed`` status are in the store within moments.

- Lifecycle calls that need an answer (create, attach) run on the caller's thread against this
  process's own connection (``call``), one at a time: one store call each, no thread hop.
- The drain finds this process's journals through the store (the writers this process registered), so
  nothing but the journal and the store passes between them: no pipe, no fd left open in this process.
- ``complete`` applies what the drain has not yet applied of a journal, on the caller's thread, up to
  its END record: ending a run never waits for the drain to notice, and works when there is no drain.
  Both may apply the same journal at once; the store's committed offsets keep it exactly once.
- The drain is a process (``python -m runlane.drain``) where one can be started, else a thread of this
  process (frozen applications, interpreters without ``sys.executable``, ``RUNLANE_DRAIN=thread``).
  A thread stops with the link's last run. A process lets go of the store at the end of the last run
  (the end waits until it has: nothing of runlane keeps the store open), and one idle drain process is
  kept for the next ``init()``, so a sweep does not start a process per run; it exits with this process.
  A drain with work left, because a run's end timed out, finishes by itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..config import DrainKind
from ..drain.loop import Drain, Owner, Tunables
from ..drain.protocol import DOORBELL, active_lock, journal_name
from ..errors import JournalDamagedError, StoreUnavailableError
from ..journal import End, JournalFile, new_packer
from ..liveness import host_name, process_start_time
from ..logs import log
from ..recovery import recover, replay_journal
from ..statuses import FAILED
from ..store import open_store
from ..store.base import OpenWriter, Store, WriterSpec

T = TypeVar("T")

STOP_WAIT_S = 2.0  # how long the end of the last run waits for its drain process to exit

DRAIN_LOG = "drain.log"  # in the store: what drain processes have to say (store errors, damaged journals)


class _DrainThread:
    """The fallback: the drain loop on a thread of this process, stopped with the last run."""

    def __init__(self, store_dir: Path, owner: Owner) -> None:
        self._stopping = threading.Event()
        self._store = open_store(store_dir)
        self._drain = Drain(self._store, store_dir, owner, Tunables())
        self._thread = threading.Thread(target=self._main, name="runlane-drain", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._drain.pump():
                    self._stopping.wait(self._drain.tunables.poll_s)
        except BaseException:
            log.exception("runlane: the drain thread failed; what was logged stays in the journals")
            raise
        finally:
            self._drain.close()
            self._store.close()

    def stop(self) -> None:
        self._stopping.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()


def _drain_process_alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps it if it has exited: no zombie is left behind
    except ChildProcessError:
        return False
    return done == 0


def _wait_until_idle(pid: int) -> None:
    """Ring an active drain and wait until it lets go of the store (its lock file is free), so once this
    returns no connection of ours is open: a caller may copy, change or delete the store's files at once."""
    deadline = time.monotonic() + STOP_WAIT_S
    fd = os.open(active_lock(pid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        rung = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not rung:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, DOORBELL)
                    rung = True
                if time.monotonic() > deadline or not _drain_process_alive(pid):
                    return
                time.sleep(0.001)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
    finally:
        os.close(fd)


def _stop_drain_process(pid: int) -> None:
    """Stop an idle drain (SIGTERM: a clean exit) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    while _drain_process_alive(pid):
        if time.monotonic() > deadline:
            _unreaped.append(pid)
            return
        time.sleep(0.001)


def _reap_finished() -> None:
    for pid in list(_unreaped):
        if not _drain_process_alive(pid):
            _unreaped.remove(pid)


def _spawn_drain_process(store_dir: Path, owner: Owner) -> int | None:
    """Start ``python -m runlane.drain`` for this process and store, detached; None where it cannot be."""
    if not sys.executable or getattr(sys, "frozen", False):
        return None
    env = dict(os.environ)
    # The drain must run this very runlane, whatever the child's own sys.path would find first.
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    started = "-" if owner.pid_started is None else repr(owner.pid_started)
    argv = [sys.executable, "-m", "runlane.drain", str(store_dir), owner.host, str(owner.pid), started]
    try:
        return os.posix_spawn(
            sys.executable,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                # Not our stderr: a drain that outlives this process (a crash, a store locked for long) must not
                # hold the pipe of whoever waits for this process's output to end.
                (os.POSIX_SPAWN_OPEN, 1, str(store_dir / DRAIN_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,  # a Ctrl-C meant for the training script must not stop the drain
            # Blocked from the start: a doorbell rung while the interpreter is still starting would kill it.
            setsigmask={DOORBELL},
        )
    except (OSError, AttributeError) as exc:  # no posix_spawn, no executable: a thread does the work
        log.warning("runlane: could not start a drain process (%s); ingesting on a thread", exc)
        return None


# Drain processes that were left to finish by themselves (a run's end timed out) or did not stop in time:
# reaped when they are done, so no zombie stays behind.
_unreaped: list[int] = []
# The one idle drain process this process keeps for its next init(): (store location, pid).
_idle_drain: tuple[Path, int] | None = None


class StoreWriter:
    """This process's link to the store at ``store_dir``. Use ``acquire()``/``release()``."""

    def __init__(self, store_dir: Path, drain: DrainKind = "process") -> None:
        self.store_dir = store_dir
        self._drain_kind = drain
        self.users = 0
        self._lock = threading.Lock()
        self._store: Store = open_store(store_dir)
        self._thread: _DrainThread | None = None
        self._drain_pid: int | None = None
        self._pending = False  # a run's end timed out: its drain must finish applying it
        try:
            try:
                recover(self._store, store_dir)
            except Exception:  # a damaged leftover must not keep this process from tracking its own runs
                log.exception("runlane: could not recover runs left behind by other processes")
            self._start_drain()
        except BaseException:
            self._store.close()
            raise

    def _start_drain(self) -> None:
        global _idle_drain
        _reap_finished()
        if _idle_drain is not None and _idle_drain[0] == self.store_dir:
            self._drain_pid, _idle_drain = _idle_drain[1], None
            if _drain_process_alive(self._drain_pid):
                return  # the one kept from this store's previous run: rung once a run is registered
        pid = os.getpid()
        owner = Owner(host_name(), pid, process_start_time(pid))
        self._drain_pid = _spawn_drain_process(self.store_dir, owner) if self._drain_kind == "process" else None
        if self._drain_pid is None:
            self._thread = _DrainThread(self.store_dir, owner)

    def ring(self) -> None:
        """Tell the drain process a writer was registered (a no-op for a drain thread, which polls)."""
        if self._drain_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._drain_pid, DOORBELL)

    def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on this process's connection, one call at a time."""
        with self._lock:
            return fn(self._store)

    def _open_writer(self, writer_id: str) -> OpenWriter | None:
        """The store's record of a writer not closed yet; None once its END record (or recovery) closed it."""
        return next((w for w in self._store.open_writers() if w.id == writer_id), None)

    def catch_up(self, writer_id: str, journal: Path, deadline: float) -> None:
        """Apply what the store does not hold yet of a journal, up to the current end of the file, on the
        caller's thread (no END record yet: a run being ended settles its status after this).

        Best effort before ``complete``: a store that stays unavailable until ``deadline``
        (``time.monotonic()``) or a damaged journal is left for ``complete`` to report.
        """
        with self._lock:
            writer = self._open_writer(writer_id)
            if writer is None:
                return
            try:
                replay_journal(self._store, writer, journal, deadline=deadline)
            except StoreUnavailableError:
                log.warning("runlane: the store stayed unavailable while %s was applied", journal)

    def complete(self, writer_id: str, journal: Path, ending: str | None, timeout: float) -> bool:
        """Apply what the store does not hold yet of a journal that ends with its END record.

        True once the END record is in (the journal is then deleted); False if ``timeout`` seconds
        passed first (the drain goes on). A journal that cannot be read to its end is kept: the writer is
        closed with a reason saying where the damage and the file are, a run being ended (``ending`` is
        its status) fails with that reason since what came after the damage is not in the store, and
        ``JournalDamagedError`` says the same to the caller.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            writer = self._open_writer(writer_id)
            if writer is None:  # the drain applied the END record already
                journal.unlink(missing_ok=True)
                return True
            try:
                replay = replay_journal(self._store, writer, journal, deadline=deadline)
            except FileNotFoundError:
                # The drain applied the END record and deleted the journal while we were on our way.
                if self._open_writer(writer_id) is not None:
                    raise
                return True
            except StoreUnavailableError:  # busy until the deadline: the caller says what is left and where
                self._pending = True
                return False
            if replay.damaged:
                kept = f"{replay.note}; the records after it are not in the store"
                self._store.close_writer(writer_id, status=None if ending is None else FAILED, reason=kept)
                raise JournalDamagedError(kept)
        if replay.ended:
            journal.unlink(missing_ok=True)
        else:
            self._pending = True
        return replay.ended

    def stop(self) -> None:
        global _idle_drain
        if self._thread is not None:
            self._thread.stop()
        with self._lock:
            self._store.close()
        pid, self._drain_pid = self._drain_pid, None
        if pid is None:
            return
        if self._pending:
            _unreaped.append(pid)  # it goes on applying the journal; it exits once this process is gone
            return
        _wait_until_idle(pid)
        previous, _idle_drain = _idle_drain, (self.store_dir, pid)
        if previous is not None:
            _stop_drain_process(previous[1])


class SideJournal:
    """Another journal of this process for a run it writes, appended to by another process (the console tee).

    Its writer carries this process's identity (host, pid, start time) and a journal named for this pid, so
    this process's drain finds and tails it like the run's own, and a crashed run's reason names this
    process. It is not the run's owner: its END record (no status) closes only itself. The run's end applies
    it with ``StoreWriter.complete`` before its own journal. The journal's lock passes to the other process
    with the fd (``journal.in_use``): recovery leaves it, and the run, alone while that process still stores
    what this one wrote before it died.
    """

    def __init__(self, store_writer: StoreWriter, process: WriterSpec, run_id: int) -> None:
        self.writer_id = os.urandom(16).hex()
        name = journal_name(process.pid, self.writer_id)
        self.file = JournalFile(store_writer.store_dir / name)
        spec = process._replace(id=self.writer_id, journal=name)
        try:
            store_writer.call(lambda store: store.add_writer(run_id, spec))
        except BaseException:
            self.file.close()
            self.file.path.unlink(missing_ok=True)
            raise
        store_writer.ring()

    def end(self) -> None:
        """Append the END record from this process (the other one could not) and close this copy."""
        if self.file.fd is not None:
            self.file.append(new_packer().pack(End.new(time.time(), None, None)))
            self.file.close()


# -- one link per (process, store location) -----------------------------------------------------

_registry: dict[Path, StoreWriter] = {}
_registry_lock = threading.Lock()


def acquire(store_dir: Path, drain: DrainKind = "process") -> StoreWriter:
    """The link for ``store_dir``, opened if needed; pair every call with ``release()``."""
    with _registry_lock:
        writer = _registry.get(store_dir)
        if writer is None:
            writer = _registry[store_dir] = StoreWriter(store_dir, drain)
        writer.users += 1
        return writer


def release(writer: StoreWriter) -> None:
    """Give back a link; the last user closes it and stops its drain."""
    with _registry_lock:
        writer.users -= 1
        if writer.users > 0:
            return
        if _registry.get(writer.store_dir) is writer:
            del _registry[writer.store_dir]
    writer.stop()


_abandoned: list[StoreWriter] = []  # links inherited by a forked child: never used or closed there


def _forget_in_child() -> None:
    # A forked child has the parent's links but not their drains: it must open its own.
    global _registry_lock
    global _idle_drain
    _abandoned.extend(_registry.values())
    _registry.clear()
    _unreaped.clear()  # the parent's children, not ours
    _idle_drain = None
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
