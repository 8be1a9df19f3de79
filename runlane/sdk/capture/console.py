"""Console capture at the file-descriptor level: what reaches fds 1 and 2 is stored and still shown.

``start()`` flushes Python's ``sys.stdout``/``sys.stderr``, keeps a duplicate of each original fd and puts
the write end of a pipe in its place with ``dup2``. Everything that writes to fd 1 or 2 (``print``, C
extensions, ``os.write``, child processes that inherit the fds) now writes into the pipes. One reader
thread per stream splits the bytes into lines (``lines.ConsoleLines``, which applies ``tqdm_mode``), emits
them as TEXT records with the stream name and the time they were read, and tees the bytes to the original
fd (the terminal shows everything, unchanged). Order is kept within each stream, not across the two; a
terminal that stops taking stdout holds up stdout only, as it would without the capture.

``stop()`` runs in two phases. *Stopping*: the readers learn that the run ends, so from now on a terminal
that takes no output for ``TEE_GRACE_S`` is no longer fed (its reader goes on storing); then Python's
streams are flushed into the pipes and the original fds are put back. *Restored*: the pipes hold all they
will get from this process; the readers drain them without blocking, so the last lines are stored before
the run's journal is drained, and exit. A child process that still holds a pipe after that (it outlived
the run) is not waited for; its later output is lost and its writes fail with EPIPE. Afterwards no fd or
thread of the capture remains.

A process has one fd 1 and one fd 2, so one run at a time may capture them: ``claim()`` refuses a second.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import sys
import threading
import time
from dataclasses import dataclass, field

from ...errors import ConsoleBusyError
from ...journal import Text
from ...logs import log
from . import Emit
from .context import TqdmMode
from .lines import ConsoleLines

READ_SIZE = 64 * 1024
PIPE_BUF = select.PIPE_BUF  # a pipe that polls writable takes a write this large without blocking
STREAMS = (("stdout", 1), ("stderr", 2))
TEE_GRACE_S = 1.0  # once the run ends, how long a terminal may take no output before it is no longer fed

_claim_lock = threading.Lock()
_holder: ConsoleCapture | None = None


class _Signal:
    """A flag that ``poll()`` can wait on: a pipe that becomes readable, for good, when the flag is set."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        self.is_set = False

    def set(self) -> None:
        self.is_set = True
        os.write(self._write_fd, b"x")  # never read: it stays readable for every waiter

    @property
    def fds(self) -> tuple[int, int]:
        return self.fd, self._write_fd

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


@dataclass
class _Stream:
    name: str
    fd: int  # 1 or 2
    saved: int  # a duplicate of the original fd 1/2: where the tee writes, what stop() puts back
    read_fd: int  # read end of the pipe now behind ``fd``
    lines: ConsoleLines
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    tee: bool = True  # False once the original fd refused output (closed, or stuck while the run ends)
    eof: bool = False
    thread: threading.Thread | None = None


class ConsoleCapture:
    """The console capture of one run. Create it with ``claim()`` before the run exists."""

    def __init__(self, mode: TqdmMode) -> None:
        self.mode = mode
        self.label = "another run being started"  # whose capture this is, for the busy error
        self._streams: list[_Stream] = []
        self._emit: Emit | None = None
        self._stopping: _Signal | None = None
        self._restored: _Signal | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @classmethod
    def claim(cls, mode: TqdmMode) -> ConsoleCapture:
        """Reserve this process's console; ``ConsoleBusyError`` if another run captures it."""
        global _holder
        with _claim_lock:
            if _holder is not None:
                raise ConsoleBusyError(
                    f"the console of this process is already captured by run {_holder.label}: "
                    "finish or close that run first, or pass capture_console=False"
                )
            _holder = capture = cls(mode)
        return capture

    def start(self, emit: Emit, label: str) -> None:
        """Swap a pipe onto fds 1 and 2 and start a reader thread for each."""
        self.label = label
        self._emit = emit
        _flush_python_streams()
        try:
            self._stopping, self._restored = _Signal(), _Signal()
            for name, fd in STREAMS:
                stream = _redirect(name, fd, self.mode)
                if stream is not None:
                    self._streams.append(stream)
                    stream.thread = threading.Thread(
                        target=self._pump, args=(stream,), name=f"runlane-console-{name}", daemon=True
                    )
                    stream.thread.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Put the original fds back, store what the pipes still hold, release everything. Idempotent."""
        global _holder
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            if self._stopping is not None:
                # First, so the flush below (which needs the readers to empty the pipes) cannot hang on a
                # terminal that takes no output.
                self._stopping.set()
            _flush_python_streams()  # what print() buffered belongs to this run's log
            for stream in self._streams:
                os.dup2(stream.saved, stream.fd)  # also closes the pipe's write end that sat there
            if self._restored is not None:
                self._restored.set()
            for stream in self._streams:
                if stream.thread is not None:
                    stream.thread.join()
        finally:
            for stream in self._streams:
                os.close(stream.read_fd)
                os.close(stream.saved)
            self._streams = []
            for signal in (self._stopping, self._restored):
                if signal is not None:
                    signal.close()
            self._stopping = self._restored = None
            with _claim_lock:
                if _holder is self:
                    _holder = None

    # -- the reader threads ---------------------------------------------------------------------

    def _pump(self, stream: _Stream) -> None:
        restored = self._restored
        assert restored is not None
        poller = select.poll()
        poller.register(stream.read_fd, select.POLLIN)
        poller.register(restored.fd, select.POLLIN)
        try:
            while not stream.eof and not restored.is_set:
                if any(ready == stream.read_fd for ready, _ in poller.poll()):
                    self._read(stream)
            # The original fd is back: the pipe holds all it will get from this process. A child that still
            # holds it is not waited for (reads are non-blocking).
            while not stream.eof and self._read(stream):
                pass
        except Exception:
            log.exception("runlane: console capture of %s stopped reading", stream.name)
        finally:
            tail = stream.decoder.decode(b"", final=True)
            self._store(stream, stream.lines.feed(tail) + stream.lines.flush())

    def _read(self, stream: _Stream) -> bool:
        """Read once; False when the pipe is empty for now or at its end."""
        try:
            data = os.read(stream.read_fd, READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            stream.eof = True
            return False
        self._store(stream, stream.lines.feed(stream.decoder.decode(data)))  # stored before shown
        self._tee(stream, data)
        return True

    def _store(self, stream: _Stream, lines: list[str]) -> None:
        if lines and self._emit is not None:
            # One record per read: the lines of one read share its time. The trailing newline keeps a last
            # empty line (ingest drops one trailing empty piece).
            self._emit([Text.new(time.time(), stream.name, "\n".join(lines) + "\n")])

    def _tee(self, stream: _Stream, data: bytes) -> None:
        """Show ``data`` on the original fd, in pieces a pipe takes without blocking once it is writable."""
        view = memoryview(data)
        while view and stream.tee:
            if not self._writable(stream.saved):
                stream.tee = False  # the run is ending and the terminal takes nothing: stop showing
                return
            try:
                written = os.write(stream.saved, view[:PIPE_BUF])
            except BlockingIOError:  # the original fd is non-blocking and was filled meanwhile
                continue
            except OSError:  # closed terminal, broken pipe: keep storing, stop showing
                stream.tee = False
                return
            view = view[written:]

    def _writable(self, fd: int) -> bool:
        """Wait until ``fd`` takes a write: while the run lives, as long as it takes (print() would wait too);
        once it is ending, at most ``TEE_GRACE_S``, so a reader that stopped reading cannot hang ``finish()``."""
        stopping = self._stopping
        assert stopping is not None
        deadline: float | None = None
        while True:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            timeout_ms: float | None = None
            if not stopping.is_set:
                poller.register(stopping.fd, select.POLLIN)  # the run ending ends the unbounded wait
            else:
                deadline = time.monotonic() + TEE_GRACE_S if deadline is None else deadline
                timeout_ms = max(0.0, deadline - time.monotonic()) * 1000
            # Any event on fd (POLLOUT, or POLLERR/POLLHUP that the write will report) ends the wait.
            if any(ready == fd for ready, _ in poller.poll(timeout_ms)):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False


def _redirect(name: str, fd: int, mode: TqdmMode) -> _Stream | None:
    try:
        saved = os.dup(fd)  # non-inheritable: child processes get the pipe, not this copy
    except OSError:
        return None  # fd 1/2 is not open in this process (a daemon): nothing to capture
    try:
        read_fd, write_fd = os.pipe()
    except BaseException:
        os.close(saved)
        raise
    try:
        os.dup2(write_fd, fd)  # inheritable, like the fd it replaces
    except BaseException:
        os.close(read_fd)
        os.close(saved)
        raise
    finally:
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    return _Stream(name, fd, saved, read_fd, ConsoleLines(mode))


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError, RuntimeError):
            # Closed or broken: nothing buffered can reach the fd anyway. RuntimeError: a signal handler
            # ending the run interrupted a print() that holds the buffer.
            pass


def _forget_in_child() -> None:
    # A forked child (a data-loader worker) writes into the parent's pipes, and the parent stores it. It has
    # no reader of its own, may start its own capture, and must not keep the parent's read ends open: a
    # child that outlives the run would otherwise fill a pipe nobody reads and block, instead of getting
    # EPIPE once the parent's capture is gone.
    global _holder, _claim_lock
    holder, _holder = _holder, None
    _claim_lock = threading.Lock()
    if holder is not None:
        inherited = [fd for stream in holder._streams for fd in (stream.read_fd, stream.saved)]
        for signal in (holder._stopping, holder._restored):
            if signal is not None:
                inherited += signal.fds
        for fd in inherited:
            with contextlib.suppress(OSError):
                os.close(fd)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
