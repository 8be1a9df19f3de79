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
END = 9  # (END, time, status | None, reason | None)   the last record: this writer is done (status ends the run)

RECORD_TYPES = frozenset({METRICS, TEXT, SUMMARY, CONFIG, TAGS, PRIMARY, IMAGE, SYSTEM, FILE, END})
_ARITY = {METRICS: 5, TEXT: 4, SUMMARY: 3, CONFIG: 3, TAGS: 4, PRIMARY: 4, IMAGE: 8, SYSTEM: 3, FILE: 5, END: 4}

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

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self.fd: int | None = os.open(path, flags, 0o600)
        self.size = os.fstat(self.fd).st_size

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

    def read(self, max_bytes: int = 1024 * 1024) -> JournalBatch:
        """Return the complete records available now, reading about ``max_bytes`` new bytes (more when
        one record is larger: a batch never comes back empty while the file holds a complete record).

        Damage is reported (``JournalCorruptError``) once the good records before it were returned.
        """
        if self._damage is not None:
            raise self._damage
        start = self.offset
        records: list[list[Any]] = []
        read_any = False
        while not records and self._damage is None:
            chunk = self._file.read(max_bytes)
            if not chunk:
                break
            read_any = True
            self._unpacker.feed(chunk)
            self._fed += len(chunk)
            self._take(records)
        if not read_any and self._damage is None:
            self._take(records)  # records fed earlier but not handed out (none, as read() is used today)
        if self._damage is not None and not records:
            raise self._damage
        if not read_any and not records and self._done == self._fed:
            # Nothing is pending: start a fresh unpacker so its bookkeeping does not grow forever.
            self._base += self._fed
            self._fed = self._done = 0
            self._unpacker = self._new_unpacker()
        return JournalBatch(records, start, self.offset)

    def _take(self, records: list[list[Any]]) -> None:
        """Move the complete records the unpacker holds into ``records``; note damage where it starts."""
        while True:
            try:
                record = next(self._unpacker)
            except StopIteration:
                return
            except (ValueError, msgpack.UnpackException) as exc:
                self._damage = JournalCorruptError(self.path, self.offset, str(exc))
                return
            if not (
                isinstance(record, list) and record and record[0] in RECORD_TYPES and len(record) == _ARITY[record[0]]
            ):
                self._damage = JournalCorruptError(self.path, self.offset, f"not a runlane record: {record!r:.80}")
                return
            self._done = self._unpacker.tell()
            records.append(record)

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
