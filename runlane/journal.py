"""The journal: a per-process, append-only file of msgpack records, one per SDK call.

Why a file and not a queue: once ``os.write`` has returned, the bytes belong to the kernel and survive
the death of the process (SIGKILL, OOM kill, a crash), so ``log()`` can promise durability at the cost of
one system call. The file is also the backlog when the store is slow or remote: memory stays bounded.

Format: records are msgpack arrays written back to back (msgpack is self-delimiting, so no framing is
needed); the first element is the record type. A record torn by a dying process is an incomplete msgpack
object at the very end of the file, which the reader leaves alone. Readers record how far they got as a
byte offset, committed in the same transaction as the data, so replay is exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

from .errors import JournalWriteError

# Record types: the first element of each record.
METRICS = 0  # (METRICS, time, step, stage, {key: number})
TEXT = 1  # (TEXT, time, stream, text)
SUMMARY = 2  # (SUMMARY, time, {key: value})   merged into the run summary
CONFIG = 3  # (CONFIG, time, {key: value})    deep-merged into the run config
TAGS = 4  # (TAGS, time, [added], [removed])
PRIMARY = 5  # (PRIMARY, time, name, mode)
IMAGE = 6  # (IMAGE, time, key, step, caption, blob, width, height)   blob: "<sha256>.png" in the store
SYSTEM = 7  # (SYSTEM, time, {key: number})   one sample of the system monitor, keys under "sys/"
FILE = 8  # (FILE, time, kind, blob, {meta})   a run-level file: kind "environment" or "code"

RECORD_TYPES = frozenset({METRICS, TEXT, SUMMARY, CONFIG, TAGS, PRIMARY, IMAGE, SYSTEM, FILE})
_ARITY = {METRICS: 5, TEXT: 4, SUMMARY: 3, CONFIG: 3, TAGS: 4, PRIMARY: 4, IMAGE: 8, SYSTEM: 3, FILE: 5}

# A single record may not exceed this; callers split large text before it gets here.
MAX_RECORD_BYTES = 64 * 1024 * 1024
SUFFIX = ".rlj"


class JournalCorruptError(Exception):
    """Bytes at ``offset`` are not a valid record (a damaged file, not a torn tail)."""

    def __init__(self, path: Path, offset: int, detail: str) -> None:
        super().__init__(f"journal {path} is damaged at byte {offset}: {detail}")
        self.offset = offset


def new_packer() -> Any:
    """A packer that encodes floats as float64 (exact round-trip of NaN and +/-Inf)."""
    return msgpack.Packer(use_bin_type=True, use_single_float=False)


class JournalFile:
    """The write end of one journal, owned by one run in one process."""

    def __init__(self, path: Path, fd: int | None = None) -> None:
        """Create (or open) the journal at ``path``; or, given ``fd``, adopt that open journal (the console
        tee gets its journal open from the training process)."""
        self.path = path
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(path, flags, 0o600)
        self.fd: int | None = fd
        self.size = os.fstat(fd).st_size

    def append(self, data: bytes) -> None:
        """Append one encoded record with a single write; raise ``JournalWriteError`` if it cannot."""
        fd = self.fd
        if fd is None:
            raise JournalWriteError(f"journal {self.path} is closed")
        try:
            written = os.write(fd, data)
        except OSError as exc:
            raise JournalWriteError(f"could not append to journal {self.path}: {exc}") from exc
        if written != len(data):
            self._complete_partial(data, written)
        self.size += len(data)

    def _complete_partial(self, data: bytes, written: int) -> None:
        # A short write to a regular file happens only when the disk fills up. Finish the record, or
        # cut the torn bytes off so later records are not hidden behind garbage.
        assert self.fd is not None
        view = memoryview(data)
        try:
            while written < len(data):
                written += os.write(self.fd, view[written:])
        except OSError as exc:
            os.ftruncate(self.fd, self.size)
            raise JournalWriteError(f"could not append to journal {self.path}: {exc}") from exc

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def hold(fd: int) -> bool:
    """Mark the journal open on ``fd`` as still being appended to, until every copy of that open file is closed
    (in whichever processes inherited it): recovery leaves a held journal alone even when the process its
    writer names is gone. Used where that process is not the one appending: the console tee, which outlives
    the training process to store its last output. False where the platform or file system has no ``flock``.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return False
    try:
        # An flock belongs to the open file, not the process: it passes to a child with the fd.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def is_held(path: Path) -> bool:
    """True while some process still holds the journal at ``path`` (see ``hold``)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # missing, or not ours to read: nothing to wait for
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two recoverers checking do not see each other
    except BlockingIOError:
        return True
    except OSError:  # no locks on this file system: cannot tell
        return False
    finally:
        os.close(fd)  # also releases the shared lock
    return False


class JournalBatch(NamedTuple):
    """Complete records read from ``start`` up to ``end`` (byte offsets in the journal)."""

    records: list[list[Any]]
    start: int
    end: int


class JournalReader:
    """Reads complete records from a journal, from a committed offset onward.

    msgpack's streaming unpacker counts the bytes of a half-read object in ``tell()``, so the offset of
    the last *complete* record is tracked here; it is what callers commit and resume from.
    """

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._base = offset  # journal offset where the current unpacker's stream begins
        self._fed = 0  # bytes fed to the current unpacker
        self._done = 0  # bytes of that stream taken up by complete records
        self._unpacker = self._new_unpacker()
        self._damage: JournalCorruptError | None = None

    @staticmethod
    def _new_unpacker() -> Any:
        return msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=2 * MAX_RECORD_BYTES)

    @property
    def offset(self) -> int:
        """Journal offset just past the last complete record handed out."""
        return self._base + self._done

    def read(self, max_bytes: int = 8 * 1024 * 1024) -> JournalBatch:
        """Return the complete records available now, reading at most ``max_bytes`` new bytes.

        Damage is reported (``JournalCorruptError``) once the good records before it were returned.
        """
        if self._damage is not None:
            raise self._damage
        start = self.offset
        chunk = self._file.read(max_bytes)
        if chunk:
            self._unpacker.feed(chunk)
            self._fed += len(chunk)
        records: list[list[Any]] = []
        while True:
            try:
                record = next(self._unpacker)
            except StopIteration:
                break
            except (ValueError, msgpack.UnpackException) as exc:
                self._damage = JournalCorruptError(self.path, self.offset, str(exc))
                break
            if not (
                isinstance(record, list) and record and record[0] in RECORD_TYPES and len(record) == _ARITY[record[0]]
            ):
                self._damage = JournalCorruptError(self.path, self.offset, f"not a runlane record: {record!r:.80}")
                break
            self._done = self._unpacker.tell()
            records.append(record)
        if self._damage is not None and not records:
            raise self._damage
        if not chunk and not records and self._done == self._fed:
            # Nothing is pending: start a fresh unpacker so its bookkeeping does not grow forever.
            self._base += self._fed
            self._fed = self._done = 0
            self._unpacker = self._new_unpacker()
        return JournalBatch(records, start, self.offset)

    def at_end(self) -> bool:
        """True when every byte of the file has been handed out as a record."""
        return self.offset >= os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()


def read_all(path: Path, offset: int = 0) -> Iterator[JournalBatch]:
    """Yield every complete record batch of a journal from ``offset``; for replay and ``runlane sync``."""
    reader = JournalReader(path, offset)
    try:
        while True:
            batch = reader.read()
            if not batch.records:
                return
            yield batch
    finally:
        reader.close()
