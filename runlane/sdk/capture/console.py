"""Console capture at the file-descriptor level: what reaches fds 1 and 2 is stored and still shown.

``start()`` flushes Python's ``sys.stdout``/``sys.stderr``, keeps a duplicate of each original fd and puts
the write end of a pipe in its place with ``dup2``. Everything that writes to fd 1 or 2 (``print``, C
extensions, ``os.write``, child processes that inherit the fds) now writes into the pipes. One reader
thread tees the bytes to the original fds (the terminal shows everything, unchanged), splits them into
lines (``lines.ConsoleLines``, which applies ``tqdm_mode``) and emits them as TEXT records with the stream
name and the time they were read. Order is kept within each stream, not across the two.

``stop()`` flushes Python's streams again, puts the original fds back, then lets the reader drain what
the pipes still hold: the last lines are stored before the run's journal is drained. A child process
that still holds the pipe after that (it outlived the run) is not waited for; its later output is lost
and its writes fail with EPIPE. Afterwards no fd or thread of the capture remains.

A process has one fd 1 and one fd 2, so one run at a time may capture them: ``claim()`` refuses a second.
"""

from __future__ import annotations

import codecs
import logging
import os
import select
import sys
import threading
import time
from dataclasses import dataclass, field

from ...errors import ConsoleBusyError
from ...journal import TEXT
from . import Emit
from .context import TqdmMode
from .lines import ConsoleLines

log = logging.getLogger("runlane")

READ_SIZE = 64 * 1024
STREAMS = (("stdout", 1), ("stderr", 2))

_claim_lock = threading.Lock()
_holder: ConsoleCapture | None = None


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
    tee: bool = True  # False once the original fd refused a write (a closed terminal): keep capturing
    eof: bool = False


class ConsoleCapture:
    """The console capture of one run. Create it with ``claim()`` before the run exists."""

    def __init__(self, mode: TqdmMode) -> None:
        self.mode = mode
        self.label = "another run being started"  # whose capture this is, for the busy error
        self._streams: list[_Stream] = []
        self._emit: Emit | None = None
        self._wake: tuple[int, int] | None = None  # a pipe that tells the reader to drain and stop
        self._thread: threading.Thread | None = None
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
        """Swap a pipe onto fds 1 and 2 and start the reader thread."""
        self.label = label
        self._emit = emit
        _flush_python_streams()
        try:
            for name, fd in STREAMS:
                stream = _redirect(name, fd, self.mode)
                if stream is not None:
                    self._streams.append(stream)
            if not self._streams:
                return
            self._wake = os.pipe()
            self._thread = threading.Thread(target=self._main, name="runlane-console", daemon=True)
            self._thread.start()
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
            _flush_python_streams()  # what print() buffered belongs to this run's log
            for stream in self._streams:
                os.dup2(stream.saved, stream.fd)  # also closes the pipe's write end that sat there
            if self._thread is not None and self._wake is not None:
                os.write(self._wake[1], b"x")
                self._thread.join()
        finally:
            for stream in self._streams:
                os.close(stream.read_fd)
                os.close(stream.saved)
            self._streams = []
            if self._wake is not None:
                os.close(self._wake[0])
                os.close(self._wake[1])
                self._wake = None
            with _claim_lock:
                if _holder is self:
                    _holder = None

    # -- the reader thread ----------------------------------------------------------------------

    def _main(self) -> None:
        assert self._wake is not None
        by_fd = {stream.read_fd: stream for stream in self._streams}
        poller = select.poll()
        for read_fd in by_fd:
            poller.register(read_fd, select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        stopping = False
        try:
            while not stopping and any(not s.eof for s in self._streams):
                for ready, _ in poller.poll():
                    if ready == self._wake[0]:
                        stopping = True
                    elif not by_fd[ready].eof:
                        self._read(by_fd[ready])
                        if by_fd[ready].eof:
                            poller.unregister(ready)
            # Stopping: the original fds are back, so the pipes hold all they will get from this process.
            for stream in self._streams:
                while not stream.eof and self._read(stream):
                    pass
        except Exception:
            log.exception("runlane: console capture stopped reading")
        finally:
            for stream in self._streams:
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
        if stream.tee:
            stream.tee = _write_all(stream.saved, data)
        self._store(stream, stream.lines.feed(stream.decoder.decode(data)))
        return True

    def _store(self, stream: _Stream, lines: list[str]) -> None:
        if lines and self._emit is not None:
            # One record per read: the lines of one read share its time. The trailing newline keeps a last
            # empty line (ingest drops one trailing empty piece).
            self._emit([(TEXT, time.time(), stream.name, "\n".join(lines) + "\n")])


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


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything to the original fd; False if it cannot take writes any more."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # the terminal's fd is non-blocking and full: wait as print() would
            select.select([], [fd], [])
            continue
        except OSError:
            return False
        view = view[written:]
    return True


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
    # A forked child writes into the parent's pipes (the parent stores it); it has no reader of its own
    # and may start its own capture.
    global _holder, _claim_lock
    _holder = None
    _claim_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
