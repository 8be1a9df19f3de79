"""Console capture at the file-descriptor level: what reaches fds 1 and 2 is stored and still shown, also the
last output of a process that dies without warning (an abort, a segfault, ``os._exit``).

``start()`` flushes Python's ``sys.stdout``/``sys.stderr``, keeps a duplicate of each original fd, puts the
write ends of two pipes on fds 1 and 2 with ``dup2`` and starts a watcher thread that spawns the console tee
(``tee.py``: a small process that owns the pipes' read ends, stores what it reads as TEXT records in a
journal of the run and shows every byte on the original fds) and reaps it when it exits. Everything that
writes to fd 1 or 2 (``print``, C extensions, ``os.write``, child processes that inherit the fds) now writes
into the pipes. Order is kept within each stream, not across the two; a terminal that stops taking stdout
holds up stdout only.

Why a process and not reader threads: threads die with the process, and what the pipes hold then (the CUDA
error, the faulthandler traceback) would be lost. The kernel closes the tee's control pipe when this process
dies, however it dies; the tee then stores and shows what the pipes still hold, and exits. It is started
with ``posix_spawn`` (nothing is forked; off the caller's thread, nothing imported) and loads only ``tee``,
``lines`` and ``journal`` in an isolated interpreter, without runlane's package ``__init__``. Its journal is
a ``SideJournal``: a writer of the run with this process's identity (so this process's drain tails it too),
not the run's owner (its end closes only itself). The tee inherits the journal's lock with the fd, so
recovery waits for the tee when this process died (``journal.in_use``).

``stop()`` runs in two phases. *Stopping*: the tee learns that the run ends, so from now on a
terminal that takes no output for ``TEE_GRACE_S`` is no longer fed (it goes on storing); then Python's
streams are flushed into the pipes and the original fds are put back. *Restored*: the control pipe is
closed; the tee takes what the pipes hold without waiting for a child that still holds them (that child's
later writes fail with EPIPE), appends the journal's END record, closes it, shows the rest and exits;
``stop()`` waits for it (and appends the END record itself if the tee could not), and the run's end then
applies that journal (``StoreWriter.complete``) before its own, so the last lines are in the store first.
Afterwards no fd, thread or process of the capture remains.

If the tee dies while the run lives (SIGKILL), or cannot be started, the watcher puts the original fds back
and shows what the pipes still held: the process writes on, uncaptured. The process keeps the pipes' read
ends open all along, so that its writes never fail with EPIPE in between.

A process has one fd 1 and one fd 2, so one run at a time may capture them: ``claim()`` refuses a second.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import sys
import threading
from pathlib import Path

from ...diagnostics import log
from ...errors import CaptureUnavailableError, ConsoleBusyError
from . import OpenJournal, SideJournal
from .lines import TqdmMode
from .tee import CONTROL_FD, DONE_FD, ENDED, JOURNAL_FD, PIPE_FDS, READ_SIZE, STOPPING, TEE_GRACE_S, show

STREAMS = (("stdout", 1), ("stderr", 2))
TEE_EXIT_TIMEOUT_S = 30.0  # a tee that has not exited this long after the run ended is killed

# Run in the tee's fresh interpreter (``-I -S``: no site, no environment, no working directory on the path):
# runlane's packages become bare namespaces so that their __init__ modules (the public API, entities) are
# not loaded; the tee needs three small modules and msgpack.
_BOOT = """\
import sys
root, packages = sys.argv[1:3]
sys.path.insert(0, packages)
for name, path in (("runlane", root), ("runlane.sdk", root + "/sdk")):
    module = type(sys)(name)
    module.__path__ = [path]
    sys.modules[name] = module
from runlane.sdk.capture.tee import main
main(sys.argv[3:])
"""

_claim_lock = threading.Lock()
_holder: ConsoleCapture | None = None


class _Stream:
    """One of fds 1 and 2 while it is captured."""

    __slots__ = ("fd", "name", "read_fd", "saved", "write_fd")

    def __init__(self, name: str, fd: int, saved: int) -> None:
        self.name = name
        self.fd = fd  # 1 or 2
        self.saved = saved  # a duplicate of the original fd: what stop() puts back
        self.read_fd, self.write_fd = os.pipe()  # the write end goes onto fd, the tee gets the read end

    @classmethod
    def open(cls, name: str, fd: int) -> _Stream | None:
        try:
            saved = os.dup(fd)  # non-inheritable: child processes get the pipe, not this copy
        except OSError:
            return None  # fd 1/2 is not open in this process (a daemon): nothing to capture
        try:
            return cls(name, fd, saved)
        except BaseException:
            os.close(saved)
            raise

    def fds(self) -> list[int]:
        return [fd for fd in (self.saved, self.read_fd, self.write_fd) if fd >= 0]


class ConsoleCapture:
    """The console capture of one run. Create it with ``claim()`` before the run exists."""

    def __init__(self, mode: TqdmMode) -> None:
        self.mode = mode
        self.label = "another run being started"  # whose capture this is, for the busy error
        self._streams: list[_Stream] = []
        self._journal: SideJournal | None = None
        self._control = -1  # write end of the tee's control pipe
        self._done = -1  # read end of a pipe only the tee holds open: end of file once it has exited
        self._spawn_fds: list[int] = []  # the tee's ends of those pipes, until it has them
        self._pid: int | None = None
        self._watcher: threading.Thread | None = None
        self._lock = threading.RLock()  # reentrant: stop() may run in a signal handler on any thread
        self._stopped = False
        self._restored = False
        self._tee_ended = False  # the tee exited after appending its journal's END record

    @classmethod
    def claim(cls, mode: TqdmMode) -> ConsoleCapture:
        """Reserve this process's console; ``ConsoleBusyError`` if another run captures it."""
        global _holder
        if not sys.executable:
            raise CaptureUnavailableError(
                "capture_console=True runs a helper process with sys.executable, which this interpreter does "
                "not set (an embedded Python); pass capture_console=False"
            )
        with _claim_lock:
            if _holder is not None:
                raise ConsoleBusyError(
                    f"the console of this process is already captured by run {_holder.label}: "
                    "finish or close that run first, or pass capture_console=False"
                )
            _holder = capture = cls(mode)
        return capture

    def start(self, open_journal: OpenJournal, label: str) -> None:
        """Swap the pipes onto fds 1 and 2 and start the watcher thread, which spawns the tee: until the tee
        runs, the pipes hold what is written (a write that does not fit waits for it)."""
        self.label = label
        _flush_python_streams()
        try:
            with self._lock:  # no fork in between (see _before_fork)
                self._open(open_journal)
        except BaseException:
            self.stop()
            raise

    def _open(self, open_journal: OpenJournal) -> None:
        """Open the pipes and the journal, put the pipes in place, start the watcher. Holding the lock."""
        for name, fd in STREAMS:
            stream = _Stream.open(name, fd)
            if stream is not None:
                self._streams.append(stream)
        if not self._streams:
            return
        self._journal = journal = open_journal()
        assert journal.file.fd is not None  # opened and locked: the tee inherits the lock with the fd
        control_read, self._control = os.pipe()
        self._spawn_fds.append(control_read)
        self._done, done_write = os.pipe()
        self._spawn_fds.append(done_write)
        for stream in self._streams:
            os.dup2(stream.write_fd, stream.fd)  # inheritable, like the fd it replaces
            os.close(stream.write_fd)
            stream.write_fd = -1
        self._watcher = threading.Thread(
            target=self._watch, args=(journal, control_read, done_write), name="runlane-console", daemon=True
        )
        self._watcher.start()

    def _spawn_tee(self, journal: SideJournal, control_read: int, done_write: int) -> int:
        assert journal.file.fd is not None
        fds = {CONTROL_FD: control_read, JOURNAL_FD: journal.file.fd, DONE_FD: done_write}
        for stream in self._streams:
            fds[stream.fd] = stream.saved  # the original stdout/stderr, where the tee shows what it read
            fds[PIPE_FDS[stream.name]] = stream.read_fd
        argv = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _BOOT,
            *_tee_paths(),
            str(os.getpid()),
            self.mode,
            str(journal.file.path),
            *(stream.name for stream in self._streams),
        ]
        return os.posix_spawn(
            sys.executable, argv, os.environ, file_actions=_placing(fds), setsigmask=_tee_blocked_signals()
        )

    def stop(self) -> None:
        """Put the original fds back, let the tee store and show what the pipes still hold, see that its journal
        ends with its END record, release everything. Idempotent."""
        global _holder
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        journal = self._journal
        try:
            if self._control >= 0:
                # First, so the flush below (which needs the tee to empty the pipes) cannot hang on a terminal
                # that takes no output.
                with contextlib.suppress(OSError):  # the tee died: the watcher saw to it
                    os.write(self._control, STOPPING)
            _flush_python_streams()  # what print() buffered belongs to this run's log
            with self._lock:
                self._restore()
            with self._lock:
                self._close("_control")  # end of file: the tee drains the pipes and exits
            self._wait_for_tee()
            if journal is not None and not self._tee_ended:
                # Killed, never started, or out of disk: the END record comes from here, through this process's
                # copy of the fd (the journal may be applied and deleted already; the path may be gone).
                journal.end()
        finally:
            with self._lock:
                self._close("_control")
                self._close("_done")
                self._close_spawn_fds()  # in case the watcher never got to it
                if journal is not None:
                    journal.file.close()
                for stream in self._streams:
                    for fd in stream.fds():
                        os.close(fd)
                self._streams = []
                self._journal = None
            with _claim_lock:
                if _holder is self:
                    _holder = None

    def _restore(self) -> None:
        """Put the original fds back (also closes the pipes' write ends that sat there). Holding the lock."""
        if not self._restored:
            self._restored = True
            for stream in self._streams:
                if stream.write_fd < 0:  # the pipe was put in place
                    os.dup2(stream.saved, stream.fd)

    def _wait_for_tee(self) -> None:
        watcher = self._watcher
        if watcher is None:
            return
        watcher.join(TEE_EXIT_TIMEOUT_S)
        if watcher.is_alive() and self._pid is not None:
            # Still holding its end of the done pipe, so not reaped and its pid not reused: safe to kill.
            log.warning("runlane: the console tee (pid %d) of run %s did not exit; killing it", self._pid, self.label)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            watcher.join()

    def _close(self, attribute: str) -> None:
        fd = getattr(self, attribute)
        if fd >= 0:
            setattr(self, attribute, -1)
            os.close(fd)

    # -- the watcher thread ---------------------------------------------------------------------

    def _watch(self, journal: SideJournal, control_read: int, done_write: int) -> None:
        """Spawn the tee (``posix_spawn`` takes a few milliseconds: not on the caller's thread) and reap it when
        it exits; if that happens while the run lives, put the console back and show what is left."""
        failure: str | None = None
        try:
            self._pid = self._spawn_tee(journal, control_read, done_write)
        except Exception as exc:
            failure = f"could not be started ({exc})"
        finally:
            with self._lock:  # the tee has its own copies now
                self._close_spawn_fds()
        if failure is None:
            poller = select.poll()
            poller.register(self._done, select.POLLIN)
            while not poller.poll():
                pass
            status = _reap(self._pid)
            self._tee_ended = status is not None and os.waitstatus_to_exitcode(status) == ENDED
            failure = f"ended with {'an unknown status' if status is None else f'wait status {status}'}"
        with self._lock:
            if self._restored:
                return  # the run ended: the exit was asked for
            self._restore()
            log.warning(
                "runlane: the console tee of run %s %s while the run was live; stdout and stderr are shown "
                "but no longer stored",
                self.label,
                failure,
            )
            for stream in self._streams:
                _show_leftovers(stream)

    def _close_spawn_fds(self) -> None:
        fds, self._spawn_fds = self._spawn_fds, []
        for fd in fds:
            os.close(fd)

    def _forget(self) -> None:
        """In a forked child: close its copies of the capture's fds, leave the tee and fds 1/2 alone."""
        self._stopped = True
        self._lock = threading.RLock()
        if self._journal is not None:
            self._journal.file.close()  # this process's copy, if the tee was not spawned yet
        self._journal = None
        self._watcher = None
        fds = [self._control, self._done, *self._spawn_fds] + [fd for stream in self._streams for fd in stream.fds()]
        self._spawn_fds = []
        self._control = self._done = -1
        self._streams = []
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _placing(fds: dict[int, int]) -> list[tuple[int, ...]]:
    """posix_spawn file actions that put each source fd at its target number in the child.

    Through numbers above every source and target first, so that placing one fd never closes a source
    still to be placed; ``dup2`` also clears close-on-exec on the copies that stay.
    """
    spare = max([*fds, *fds.values()]) + 1
    actions: list[tuple[int, ...]] = []
    for offset, source in enumerate(fds.values()):
        actions.append((os.POSIX_SPAWN_DUP2, source, spare + offset))
    for offset, target in enumerate(fds):
        actions.append((os.POSIX_SPAWN_DUP2, spare + offset, target))
    for offset in range(len(fds)):
        actions.append((os.POSIX_SPAWN_CLOSE, spare + offset))
    return actions


@functools.cache
def _tee_paths() -> tuple[str, str]:
    """Where the runlane package is, and where msgpack is installed (``-S`` leaves site-packages out)."""
    import msgpack

    return str(Path(__file__).resolve().parents[2]), str(Path(msgpack.__file__).resolve().parents[1])


@functools.cache
def _tee_blocked_signals() -> frozenset[int]:
    """Every signal that would end or stop the tee, except those its own faults raise (they must kill it)."""
    keep = {"SIGKILL", "SIGSTOP", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT"}
    return frozenset(int(sig) for sig in signal.valid_signals() if getattr(sig, "name", None) not in keep)


def _reap(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # reaped by someone else (a SIGCHLD handler, SIG_IGN)
        return None


def _show_leftovers(stream: _Stream) -> None:
    """What the pipe still holds after the tee died: to the terminal, best effort; then close the read end so
    a child still holding the pipe gets EPIPE instead of filling it."""

    def writable(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return bool(poller.poll(TEE_GRACE_S * 1000))

    readable = select.poll()
    readable.register(stream.read_fd, select.POLLIN)
    try:
        while readable.poll(0):
            data = os.read(stream.read_fd, READ_SIZE)
            if not data or not show(stream.saved, data, writable):
                break
    except OSError:
        pass
    os.close(stream.read_fd)
    stream.read_fd = -1


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError, RuntimeError):
            # Closed or broken: nothing buffered can reach the fd anyway. RuntimeError: a signal handler
            # ending the run interrupted a print() that holds the buffer.
            pass


_forking: ConsoleCapture | None = None


def _before_fork() -> None:
    # The capture's fds are opened and closed holding its lock: a fork in the middle of that would give the
    # child fds it does not know it has (its copy of the tee's end of the done pipe would make finish() wait
    # for the child). A fork waits for the lock instead.
    global _forking
    holder = _holder
    if holder is not None:
        holder._lock.acquire()
        _forking = holder


def _after_fork_in_parent() -> None:
    global _forking
    holder, _forking = _forking, None
    if holder is not None:
        holder._lock.release()


def _forget_in_child() -> None:
    # A forked child (a data-loader worker) writes into the parent's pipes, and the parent's tee stores it.
    # It must not keep the parent's other fds: its copy of the control pipe would keep the tee from seeing
    # the parent end, and its copies of the read ends would keep a child that outlives the run from getting
    # EPIPE (it would fill a pipe nobody reads and block). It may start a capture of its own.
    global _holder, _claim_lock, _forking
    holder, _holder = _holder, None
    _forking = None
    _claim_lock = threading.Lock()
    if holder is not None:
        holder._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_forget_in_child)
