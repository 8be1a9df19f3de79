"""The console tee: a small process that stores and shows what the training process writes to fds 1 and 2,
and outlives it long enough to do both with its last bytes (an abort, a segfault, ``os._exit``).

``console.ConsoleCapture`` starts it with ``posix_spawn`` before putting the write ends of two pipes on fds
1 and 2. Its file descriptors:

- ``CONTROL_FD`` (0): the control pipe from the training process. ``STOPPING`` when the run ends; end of
  file once that process has put its original fds back, or has died (the kernel closes the write end then).
- 1 and 2: the original stdout and stderr (inherited), where everything read is shown.
- ``PIPE_FDS``: the read ends of the stdout and stderr pipes.
- ``JOURNAL_FD``: the run's console journal it appends to, one TEXT record per read (stored before it is
  shown). Its lock (``JournalFile``) came with the fd, so the journal is ``in_use`` until this process closes
  it: recovery leaves it alone, and does not fail the run, while the tee stores a dead process's last words.
- ``DONE_FD``: never written; its closing, when this process exits, tells the training process.

Each stream has a reader thread (read, split into lines, store) and a shower thread (write to the terminal),
with a backlog of at most ``BACKLOG`` bytes between them: a terminal that stops taking stdout holds up
stdout only, and holds up the training process's writes to it as it would without the capture, but what
was read is stored at once, also while the terminal is stuck.

Once the control pipe ends, the readers take what the pipes still hold without waiting and finish, the
journal is closed, and the showers write out their backlog. A run that ends (``STOPPING``, and the training
process still there) gets an END record first, with no status: whoever applies it closes the tee's writer,
and only that; the exit status ``ENDED`` tells the training process so. After a crash there is no END:
recovery closes the writer and fails the run, naming the training process. If the run was ending (``STOPPING``), a
terminal that takes no output for ``TEE_GRACE_S`` is no longer fed: the training process waits for this
process in ``finish()`` and its SIGTERM handler. If the training process died, nothing waits: the
terminal gets every byte, however slowly it reads.

The spawn blocks every signal that would end or stop this process (the fatal ones of its own faults
aside): a Ctrl-C, a SIGTERM to the process group or a hang-up must not take the tee down before the
training process has written its last words. It ends by itself once that process has let go.

Import rule: the standard library, ``lines`` and ``runlane.journal`` only. The tee runs in a fresh
interpreter (``-I -S``) that loads these modules without runlane's package ``__init__`` (see ``console``).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ...journal import End, JournalFile, Text, new_packer
from .lines import ConsoleLines, TqdmMode

CONTROL_FD = 0
TERMINAL_FDS = {"stdout": 1, "stderr": 2}
PIPE_FDS = {"stdout": 3, "stderr": 4}
JOURNAL_FD = 5
DONE_FD = 6
STOPPING = b"s"
ENDED = 0  # exit status: the journal ends with its END record (any other: the training process appends it)
NOT_ENDED = 3

READ_SIZE = 64 * 1024
BACKLOG = READ_SIZE  # bytes stored but not yet shown before a reader waits for its terminal
PIPE_BUF = select.PIPE_BUF  # a pipe that polls writable takes a write this large without blocking
TEE_GRACE_S = 1.0  # once the run ends, how long a terminal may take no output before it is no longer fed
PARENT_CHECK_S = 1.0  # how often to look whether the training process is gone while its control pipe is not


class _Signal:
    """A flag that ``poll()`` can wait on: a pipe that becomes readable, for good, when the flag is set."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        self.is_set = False

    def set(self) -> None:
        if not self.is_set:
            self.is_set = True
            os.write(self._write_fd, b"x")  # never read: it stays readable for every waiter


class _Backlog:
    """Bytes a stream's reader stored and its shower has yet to show."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._changed = threading.Condition()
        self._closed = False
        self._bounded = True

    def put(self, data: bytes) -> None:
        """Queue ``data``; while the backlog is full, wait for the shower (the terminal's back-pressure)."""
        with self._changed:
            while self._bounded and self._size >= BACKLOG:
                self._changed.wait()
            self._chunks.append(data)
            self._size += len(data)
            self._changed.notify_all()

    def get(self) -> bytes | None:
        """The next chunk to show, waiting for one; None once the reader is done and all was taken."""
        with self._changed:
            while not self._chunks and not self._closed:
                self._changed.wait()
            if not self._chunks:
                return None
            data = self._chunks.popleft()
            self._size -= len(data)
            self._changed.notify_all()
            return data

    def unbound(self) -> None:
        """From now on ``put`` never waits: the last bytes are stored however slow the terminal is."""
        with self._changed:
            self._bounded = False
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class _Stream:
    __slots__ = ("backlog", "decoder", "eof", "lines", "name", "pipe", "shown", "terminal")

    def __init__(self, name: str, mode: TqdmMode) -> None:
        self.name = name
        self.pipe = PIPE_FDS[name]
        self.terminal = TERMINAL_FDS[name]
        self.lines = ConsoleLines(mode)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.backlog = _Backlog()
        self.eof = False
        self.shown = True  # False once the terminal refused output (closed, or stuck while the run ends)


class Tee:
    """The tee's work, in the tee process: one reader and one shower thread per stream."""

    def __init__(self, mode: TqdmMode, names: list[str], journal_path: str) -> None:
        self._journal = JournalFile(Path(journal_path), fd=JOURNAL_FD)
        self._packer = new_packer()
        self._journal_lock = threading.Lock()
        self._store_failed = False
        self._stopping = _Signal()
        self._restored = _Signal()
        self._streams = [_Stream(name, mode) for name in names]

    def run(self, parent: int) -> bool:
        """Tee until the training process lets go; True if the journal got its END record."""
        readers = [threading.Thread(target=self._read_loop, args=(stream,)) for stream in self._streams]
        showers = [threading.Thread(target=self._show_loop, args=(stream,)) for stream in self._streams]
        for stream in self._streams:
            os.set_blocking(stream.pipe, False)
        for thread in readers + showers:
            thread.start()
        try:
            self._follow_control(parent)
        finally:
            self._restored.set()
            for stream in self._streams:
                stream.backlog.unbound()
        for thread in readers:
            thread.join()
        # The run is ending in a live process, which waits for this one: close this writer. A process that
        # died gets none, so that recovery fails its run.
        ended = self._stopping.is_set and os.getppid() == parent and self._append(End.new(time.time(), None, None))
        self._journal.close()  # lets go of the journal: recovery may replay it from now on
        for thread in showers:
            thread.join()
        return ended

    def _follow_control(self, parent: int) -> None:
        """Return once the training process has put its fds back or is gone; note ``STOPPING`` on the way."""
        poller = select.poll()
        poller.register(CONTROL_FD, select.POLLIN)
        while True:
            try:
                if not poller.poll(PARENT_CHECK_S * 1000):
                    # A process it forked may still hold the control pipe (a fork that ran no at-fork hook):
                    # once the parent is gone this one has been handed to another.
                    if os.getppid() != parent:
                        return
                    continue
                data = os.read(CONTROL_FD, 64)
            except OSError:
                return
            if not data:
                return
            if STOPPING in data:
                self._stopping.set()

    # -- readers: pipe -> lines -> journal -> backlog ---------------------------------------------

    def _read_loop(self, stream: _Stream) -> None:
        poller = select.poll()
        poller.register(stream.pipe, select.POLLIN)
        poller.register(self._restored.fd, select.POLLIN)
        try:
            while not stream.eof and not self._restored.is_set:
                if any(ready == stream.pipe for ready, _ in poller.poll()):
                    self._read(stream)
            # The training process let go: take what the pipe holds without waiting for anyone who still
            # holds its write end (a child that outlived the run; its later writes fail with EPIPE).
            while not stream.eof and self._read(stream):
                pass
        finally:
            tail = stream.decoder.decode(b"", final=True)
            self._store(stream, stream.lines.feed(tail) + stream.lines.flush())
            stream.backlog.close()

    def _read(self, stream: _Stream) -> bool:
        """Read once; False when the pipe is empty for now or at its end."""
        try:
            data = os.read(stream.pipe, READ_SIZE)
        except BlockingIOError:
            return False
        if not data:
            stream.eof = True
            return False
        self._store(stream, stream.lines.feed(stream.decoder.decode(data)))  # stored before shown
        stream.backlog.put(data)
        return True

    def _store(self, stream: _Stream, lines: list[str]) -> None:
        if not lines:
            return
        # One record per read: the lines of one read share its time. The trailing newline keeps a last
        # empty line (ingest drops one trailing empty piece).
        self._append(Text.new(time.time(), stream.name, "\n".join(lines) + "\n"))

    def _append(self, record: Text | End) -> bool:
        with self._journal_lock:
            try:
                self._journal.append(self._packer.pack(record))
            except Exception as exc:  # a full disk: go on showing (and trying), never stop reading
                if not self._store_failed:
                    self._store_failed = True
                    _say(f"runlane: could not store console output: {exc}")
                return False
            return True

    # -- showers: backlog -> terminal -------------------------------------------------------------

    def _show_loop(self, stream: _Stream) -> None:
        while (data := stream.backlog.get()) is not None:
            if stream.shown:
                stream.shown = show(stream.terminal, data, self._writable)

    def _writable(self, fd: int) -> bool:
        """Wait until ``fd`` takes a write: as long as it takes (print() would wait too) unless the run is
        ending, then at most ``TEE_GRACE_S``, so a terminal that stopped reading cannot hang ``finish()``."""
        deadline: float | None = None
        while True:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            timeout_ms: float | None = None
            if not self._stopping.is_set:
                poller.register(self._stopping.fd, select.POLLIN)  # the run ending ends the unbounded wait
            else:
                deadline = time.monotonic() + TEE_GRACE_S if deadline is None else deadline
                timeout_ms = max(0.0, deadline - time.monotonic()) * 1000
            # Any event on fd (POLLOUT, or POLLERR/POLLHUP that the write will report) ends the wait.
            if any(ready == fd for ready, _ in poller.poll(timeout_ms)):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False


def show(fd: int, data: bytes, writable: Callable[[int], bool]) -> bool:
    """Write ``data`` to ``fd`` in pieces a pipe takes without blocking once ``writable(fd)`` says it polls
    writable; False if the fd refused (closed, broken, or ``writable`` gave up)."""
    view = memoryview(data)
    while view:
        if not writable(fd):
            return False
        try:
            written = os.write(fd, view[:PIPE_BUF])
        except BlockingIOError:  # the fd is non-blocking and was filled meanwhile
            continue
        except OSError:  # closed terminal, broken pipe
            return False
        view = view[written:]
    return True


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(TERMINAL_FDS["stderr"], message.encode("utf-8", "replace") + b"\n")


def main(argv: list[str]) -> None:
    """The tee process: ``<training process pid> <tqdm mode> <journal path> <stream name>...``."""
    parent, mode, journal_path, *names = argv
    _close_inherited()
    os.chdir("/")  # do not keep the training process's working directory busy
    ended = Tee(mode, names, journal_path).run(int(parent))  # type: ignore[arg-type]
    # Everything is written (os.write, no buffers) and every thread joined: skip the interpreter's teardown,
    # which ``finish()`` would otherwise wait for.
    os._exit(ENDED if ended else NOT_ENDED)


def _close_inherited() -> None:
    """Close what else the training process left inheritable: it must not live on in here (a pipe's write
    end kept open by the tee would keep its reader from seeing the end)."""
    try:
        names = os.listdir("/dev/fd")  # Linux and macOS; SC_OPEN_MAX may be a million
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd > DONE_FD:
            with contextlib.suppress(OSError):  # the directory listdir had open
                os.close(fd)
