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

from .. import pending
from ..config import ENV_API_KEY, Settings, Tunables
from ..diagnostics import log
from ..drain.loop import Drain, Owner
from ..drain.protocol import DOORBELL, active_lock
from ..errors import JournalDamagedError, StoreUnavailableError
from ..journal import End, JournalCorruptError, JournalFile, JournalReader, new_packer
from ..liveness import host_name, process_start_time
from ..recovery import recover, replay_journal
from ..spool import Spool, journal_path
from ..statuses import FAILED
from ..store import open_store
from ..store.base import OpenWriter, Store, WriterSpec

T = TypeVar("T")

STOP_WAIT_S = 2.0  # how long the end of the last run waits for its drain process to exit
# How long init() waits for a store that does not answer (a server down) before going on without it: the
# run is registered later (runlane.pending) and its records wait in the journal.
LIFECYCLE_PATIENCE_S = 5.0

# What drain processes have to say (store errors, damaged journals): in the embedded store, else the spool.
DRAIN_LOG = "drain.log"


class _DrainThread:
    """The fallback: the drain loop on a thread of this process, stopped with the last run."""

    def __init__(self, spool: Spool, owner: Owner, tunables: Tunables, api_key: str | None) -> None:
        self._stopping = threading.Event()
        self._store = open_store(spool.store, api_key=api_key)
        self._drain = Drain(
            self._store, spool.store_dir, owner, tunables, pending_dir=spool.dir if spool.store_dir is None else None
        )
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


def _spawn_drain_process(spool: Spool, owner: Owner, tunables: Tunables, api_key: str | None) -> int | None:
    """Start ``python -m runlane.drain`` for this process and store, detached; None where it cannot be."""
    if not sys.executable or getattr(sys, "frozen", False):
        return None
    env = {**os.environ, **tunables.as_env()}  # the drain runs with this process's resolved tunables
    if api_key is not None:
        env[ENV_API_KEY] = api_key  # given as init(api_key=): the drain sends it too
    # The drain must run this very runlane, whatever the child's own sys.path would find first.
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    started = "-" if owner.pid_started is None else repr(owner.pid_started)
    drain_log = (spool.store_dir or spool.dir) / DRAIN_LOG
    argv = [sys.executable, "-m", "runlane.drain", spool.store, str(spool.dir), owner.host, str(owner.pid), started]
    try:
        return os.posix_spawn(
            sys.executable,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                # Not our stderr: a drain that outlives this process (a crash, a store locked for long) must not
                # hold the pipe of whoever waits for this process's output to end.
                (os.POSIX_SPAWN_OPEN, 1, str(drain_log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
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
# The one idle drain process this process keeps for its next init(): (store location, spool, pid).
_idle_drain: tuple[str, Path, int] | None = None


class StoreWriter:
    """This process's link to the store ``settings.store``, its journals in ``settings.spool``.
    Use ``acquire()``/``release()``."""

    def __init__(self, settings: Settings) -> None:
        self.location = settings.store
        self.spool = Spool(settings.spool, settings.store)
        self.tunables = settings.tunables
        self._drain_kind = settings.drain
        self._api_key = settings.api_key
        self.users = 0
        self._lock = threading.Lock()
        self._store: Store = open_store(settings.store, api_key=settings.api_key)
        self._known_offsets: dict[str, int] = {}  # writer id -> offset the store was last seen to hold
        self._thread: _DrainThread | None = None
        self._drain_pid: int | None = None
        self._pending = False  # a run's end timed out: its drain must finish applying it
        try:
            self.spool.prepare()
            try:
                # Bounded: a server that does not answer must not hold up init(); its leftovers wait.
                with self._store.patience(LIFECYCLE_PATIENCE_S):
                    recover(self._store, self.spool, self.tunables)
            except StoreUnavailableError as exc:
                log.warning("runlane: %s; runs left behind by other processes are delivered once it answers", exc)
            except Exception:  # a damaged leftover must not keep this process from tracking its own runs
                log.exception("runlane: could not recover runs left behind by other processes")
            self._start_drain()
        except BaseException:
            self._store.close()
            raise

    def _start_drain(self) -> None:
        global _idle_drain
        _reap_finished()
        if _idle_drain is not None and _idle_drain[:2] == (self.location, self.spool.dir):
            self._drain_pid, _idle_drain = _idle_drain[2], None
            if _drain_process_alive(self._drain_pid):
                return  # the one kept from this store's previous run: rung once a run is registered
        pid = os.getpid()
        owner = Owner(host_name(), pid, process_start_time(pid))
        if self._drain_kind == "process":
            self._drain_pid = _spawn_drain_process(self.spool, owner, self.tunables, self._api_key)
        if self._drain_pid is None:
            self._thread = _DrainThread(self.spool, owner, self.tunables, self._api_key)

    def ring(self) -> None:
        """Tell the drain process a writer was registered (a no-op for a drain thread, which polls)."""
        if self._drain_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._drain_pid, DOORBELL)

    def journal_path(self, name: str) -> Path:
        """Where the journal a registration names (``Spool.journal_name``) is on this machine."""
        path = journal_path(name, self.spool.store_dir)
        assert path is not None  # names from this link's spool are absolute or inside its store
        return path

    def call(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on this process's connection, one call at a time."""
        with self._lock:
            return fn(self._store)

    def _open_writer(self, writer_id: str) -> OpenWriter | None:
        """The store's record of a writer not closed yet; None once its END record (or recovery) closed it."""
        found = next((w for w in self._store.open_writers() if w.id == writer_id), None)
        if found is not None:
            self._known_offsets[writer_id] = found.offset
        return found

    def _registered(self, journal: Path, deadline: float) -> bool:
        """Whether the store knows the journal's writer, registering it now if its run started while the
        store was unreachable (``runlane.pending``); False while it still is."""
        if not pending.is_pending(journal):
            return True
        try:
            self._until(deadline, lambda: pending.register(self._store, journal))
        except StoreUnavailableError:
            return False
        return True

    def _until(self, deadline: float, call: Callable[[], T]) -> T:
        """``call()`` on this link's store, retried with capped back-off while the store is unavailable (a
        server restarting) until ``deadline`` (``time.monotonic()``); then ``StoreUnavailableError``."""
        delay = 0.05
        while True:
            try:
                with self._store.patience(max(0.01, deadline - time.monotonic())):
                    return call()
            except StoreUnavailableError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(delay, left))  # the server may be back any moment: keep asking until the deadline
                delay = min(delay * 2, self.tunables.retry_max_s)

    def unsent(self, writer_id: str, journal: Path) -> int:
        """How many records of a journal the store was not seen to hold (all of them while its run is not
        registered): what a run's end that timed out leaves for later."""
        offset = 0 if pending.is_pending(journal) else self._known_offsets.get(writer_id, 0)
        try:
            reader = JournalReader(journal, offset)
        except FileNotFoundError:
            return 0
        count = 0
        try:
            while True:
                batch = reader.read()
                if not batch.records:
                    return count
                count += len(batch.records)
        except JournalCorruptError:
            return count
        finally:
            reader.close()

    def catch_up(self, writer_id: str, journal: Path, deadline: float) -> None:
        """Apply what the store does not hold yet of a journal, up to the current end of the file, on the
        caller's thread (no END record yet: a run being ended settles its status after this).

        Best effort before ``complete``: a store that stays unavailable until ``deadline``
        (``time.monotonic()``) or a damaged journal is left for ``complete`` to report.
        """
        with self._lock:
            if not self._registered(journal, deadline):
                return
            try:
                writer = self._until(deadline, lambda: self._open_writer(writer_id))
            except StoreUnavailableError:
                log.warning("runlane: the store stayed unavailable while %s was applied", journal)
                return
            if writer is None:
                return
            try:
                replay_journal(self._store, writer, journal, deadline=deadline, retry_max_s=self.tunables.retry_max_s)
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
            if not self._registered(journal, deadline):
                self._pending = True
                return False
            try:
                writer = self._until(deadline, lambda: self._open_writer(writer_id))
            except StoreUnavailableError:
                self._pending = True
                return False
            if writer is None:  # the drain applied the END record already
                journal.unlink(missing_ok=True)
                return True
            try:
                replay = replay_journal(
                    self._store, writer, journal, deadline=deadline, retry_max_s=self.tunables.retry_max_s
                )
            except FileNotFoundError:
                # The drain applied the END record and deleted the journal while we were on our way.
                try:
                    still_open = self._until(deadline, lambda: self._open_writer(writer_id)) is not None
                except StoreUnavailableError:
                    still_open = False  # only whoever applied the END record deletes a journal
                if still_open:
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
        previous, _idle_drain = _idle_drain, (self.location, self.spool.dir, pid)
        if previous is not None:
            _stop_drain_process(previous[2])


class SideJournal:
    """Another journal of this process for a run it writes, appended to by another process (the console tee).

    Its writer carries this process's identity (host, pid, start time) and a journal named for this pid, so
    this process's drain finds and tails it like the run's own, and a crashed run's reason names this
    process. It is not the run's owner: its END record (no status) closes only itself. The run's end applies
    it with ``StoreWriter.complete`` before its own journal. The journal's lock passes to the other process
    with the fd (``journal.in_use``): recovery leaves it, and the run, alone while that process still stores
    what this one wrote before it died.
    """

    def __init__(self, store_writer: StoreWriter, process: WriterSpec, run_id: int | None, run_uid: str) -> None:
        """``run_id`` None: the store has not registered the run yet (its server was unreachable), so this
        writer's registration waits beside it (``runlane.pending``)."""
        self.writer_id = os.urandom(16).hex()
        name = store_writer.spool.journal_name(process.pid, self.writer_id)
        self.file = JournalFile(store_writer.journal_path(name))
        spec = process._replace(id=self.writer_id, journal=name)
        try:
            if run_id is None:
                pending.defer_add_writer(self.file.path, run_uid, spec)
            else:
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

# Keyed by the store's canonical location (``Settings.store``): a directory and ``sqlite:///`` of it are one.
_registry: dict[str, StoreWriter] = {}
_registry_lock = threading.Lock()


def acquire(settings: Settings) -> StoreWriter:
    """The link for ``settings.store``, opened if needed; pair every call with ``release()``.

    The first caller's settings (spool, drain, tunables) are the link's until its last user releases it.
    """
    with _registry_lock:
        writer = _registry.get(settings.store)
        if writer is None:
            writer = _registry[settings.store] = StoreWriter(settings)
        writer.users += 1
        return writer


def release(writer: StoreWriter) -> None:
    """Give back a link; the last user closes it and stops its drain."""
    with _registry_lock:
        writer.users -= 1
        if writer.users > 0:
            return
        if _registry.get(writer.location) is writer:
            del _registry[writer.location]
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
