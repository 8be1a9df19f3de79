"""The journal: a per-process, append-only file of msgpack records, one per SDK call.

Why a file and not a queue: once ``os.write`` has returned, the bytes belong to the kernel and survive
the death of the process (SIGKILL, OOM kill, a crash), so ``log()`` can promise durability at the cost of
one system call. The file is also the backlog when the store is slow or remote: memory stays bounded.

Format: records are msgpack arrays written back to back (msgpack is self-delimiting, so no framing is
needed); the first element is the record type. A record torn by a dying process is an incomplete msgpack
object at the very end of the file, which the reader leaves alone. Readers record how far they got as a
byte offset, committed in the same transaction as the data, so replay is exactly once.

The writing process holds an advisory lock on its journal for as long as the file is open (children
forked from it inherit it, and they may append too). The kernel drops it when the last holder dies,
however it dies, so "is this journal locked?" tells any process on the same machine, whatever its PID
namespace, whether the journal may still grow.
"""

from __future__ import annotations

import contextlib
import operator
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

from .errors import JournalWriteError

# Record types: the first element of each record. The shape of each is the named tuple below.
METRICS = 0
TEXT = 1
SUMMARY = 2
CONFIG = 3
TAGS = 4
PRIMARY = 5
IMAGE = 6
SYSTEM = 7
FILE = 8
END = 9


# -- the record shapes: the only place that knows the order of a record's elements ------------------
#
# A record on disk is the msgpack array of its named tuple (msgpack packs any tuple as an array), so
# these classes change nothing in the bytes. Writers build records with each shape's ``new``, which fills
# in its type; ``log()`` uses ``metrics_encoder``, the same bytes without the named tuple. Readers get
# plain arrays and read them by field name with ``fields``.


class Metrics(NamedTuple):
    """``log()``: metric values at one step."""

    kind: int
    time: float
    step: int
    stage: str | None
    values: dict[str, float | int]

    @classmethod
    def new(cls, time: float, step: int, stage: str | None, values: dict[str, float | int]) -> Metrics:
        return cls(METRICS, time, step, stage, values)


class Text(NamedTuple):
    """Text for the run's log: ``log_text`` (stream ``log``) or captured console output; split into lines
    at ingest."""

    kind: int
    time: float
    stream: str
    text: str

    @classmethod
    def new(cls, time: float, stream: str, text: str) -> Text:
        return cls(TEXT, time, stream, text)


class Summary(NamedTuple):
    """``summary()``: fields merged into the run summary."""

    kind: int
    time: float
    values: dict[str, Any]

    @classmethod
    def new(cls, time: float, values: dict[str, Any]) -> Summary:
        return cls(SUMMARY, time, values)


class Config(NamedTuple):
    """``update_config()``: deep-merged into the run config."""

    kind: int
    time: float
    values: dict[str, Any]

    @classmethod
    def new(cls, time: float, values: dict[str, Any]) -> Config:
        return cls(CONFIG, time, values)


class Tags(NamedTuple):
    """``add_tags()``/``remove_tags()``."""

    kind: int
    time: float
    added: list[str]
    removed: list[str]

    @classmethod
    def new(cls, time: float, added: list[str], removed: list[str]) -> Tags:
        return cls(TAGS, time, added, removed)


class Primary(NamedTuple):
    """``set_primary_metric()``: ``mode`` is ``max`` or ``min``."""

    kind: int
    time: float
    name: str
    mode: str

    @classmethod
    def new(cls, time: float, name: str, mode: str) -> Primary:
        return cls(PRIMARY, time, name, mode)


class Image(NamedTuple):
    """``log_image()``: ``blob`` names the PNG (``"<sha256>.png"``), put before this record was written."""

    kind: int
    time: float
    key: str
    step: int
    caption: str | None
    blob: str
    width: int
    height: int

    @classmethod
    def new(cls, time: float, key: str, step: int, caption: str | None, blob: str, width: int, height: int) -> Image:
        return cls(IMAGE, time, key, step, caption, blob, width, height)


class System(NamedTuple):
    """One sample of the system monitor: ``{key: number}`` with keys under ``sys/``."""

    kind: int
    time: float
    values: dict[str, float]

    @classmethod
    def new(cls, time: float, values: dict[str, float]) -> System:
        return cls(SYSTEM, time, values)


class File(NamedTuple):
    """A run-level file: ``file_kind`` is ``environment`` (a JSON blob) or ``code`` (a zip blob)."""

    kind: int
    time: float
    file_kind: str
    blob: str
    meta: dict[str, Any]

    @classmethod
    def new(cls, time: float, file_kind: str, blob: str, meta: dict[str, Any]) -> File:
        return cls(FILE, time, file_kind, blob, meta)


class End(NamedTuple):
    """The last record of a journal: its writer is done. ``status`` (None for ``close()``) ends the run;
    whoever applies the journal, the drain or a later process replaying it, closes the writer with it."""

    kind: int
    time: float
    status: str | None
    reason: str | None

    @classmethod
    def new(cls, time: float, status: str | None, reason: str | None) -> End:
        return cls(END, time, status, reason)


Record = Metrics | Text | Summary | Config | Tags | Primary | Image | System | File | End
SHAPES: dict[int, type[Record]] = {
    METRICS: Metrics,
    TEXT: Text,
    SUMMARY: Summary,
    CONFIG: Config,
    TAGS: Tags,
    PRIMARY: Primary,
    IMAGE: Image,
    SYSTEM: System,
    FILE: File,
    END: End,
}
RECORD_TYPES = frozenset(SHAPES)
_ARITY = {kind: len(shape._fields) for kind, shape in SHAPES.items()}


def is_record(raw: object) -> bool:
    """Whether ``raw`` (an array read from a journal) has the type and the number of elements of a record."""
    return isinstance(raw, (list, tuple)) and bool(raw) and _ARITY.get(raw[0]) == len(raw) and type(raw[0]) is int


def fields(shape: type[Record], *names: str) -> Callable[[Sequence[Any]], Any]:
    """Read fields of ``shape`` by name from a record as the reader hands it out (an array, not a named
    tuple: building one per record would cost the drain more than decoding it did).

    ``get = fields(Metrics, "time", "values"); time, values = get(record)``; with one name, the value itself.
    """
    return operator.itemgetter(*(shape._fields.index(name) for name in names))


record_time = fields(Metrics, "time")
"""The wall time of any record: every shape starts with ``kind, time``."""


def metrics_encoder(packer: Any) -> Callable[[float, int, str | None, dict[str, Any]], bytes]:
    """The bytes of ``Metrics.new(time, step, stage, values)``, for ``log()``: the same array without
    building a named tuple, which would cost about a fifth of a ``log()`` call."""
    pack = packer.pack
    kind = METRICS

    def encode(time: float, step: int, stage: str | None, values: dict[str, Any]) -> bytes:
        return pack((kind, time, step, stage, values))  # type: ignore[no-any-return]

    return encode


# A single record may not exceed this (encoded), so a reader never holds more than about this much of one
# record in memory, nor a store more than this in one batch. Calls refuse larger records
# (``check_record_size``); ``log_text`` splits large text before it gets here.
MAX_RECORD_BYTES = 64 * 1024 * 1024
SUFFIX = ".rlj"


def check_record_size(data: bytes, what: str) -> None:
    """Refuse an encoded record larger than ``MAX_RECORD_BYTES``: ``ValueError`` naming the call and the limit."""
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError(
            f"{what}: the record is {len(data)} bytes encoded; a journal record holds at most {MAX_RECORD_BYTES} "
            f"bytes ({MAX_RECORD_BYTES >> 20} MiB); nothing was recorded (store large arrays as files or images)"
        )


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
        """Create (or open) and lock the journal at ``path``; or, given ``fd``, adopt that open journal: the
        console tee inherits its journal from the training process, and with it the lock, which belongs to
        the open file rather than to a process (``in_use`` stays true while the tee holds it)."""
        self.path = path
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(path, flags, 0o600)
            _lock(fd)
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


def _lock(fd: int) -> None:
    if sys.platform == "win32":
        return
    import fcntl

    # On a filesystem without locks, liveness rests on the writer's identity and heartbeat alone.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def in_use(path: Path) -> bool:
    """True while some process holds the journal open for appending: its writer, a child forked from it, or
    the console tee it handed its console journal to.

    False when nobody does, when the file is gone, and where the filesystem has no locks.
    """
    if sys.platform == "win32":
        return False
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # conflicts only with the writer's exclusive lock
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops our shared lock
    return False


class JournalBatch(NamedTuple):
    """Complete records read from ``start`` up to ``end`` (byte offsets in the journal)."""

    records: list[list[Any]]  # each in the shape of its type (see SHAPES); read fields with ``fields``
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
        """Return the complete records available now, reading ``max_bytes`` new bytes at a time.

        Returns no records only when the file holds no complete one past the offset: a record larger than
        ``max_bytes`` is read on until it is whole (or the file ends), so an empty batch always means
        "nothing more for now", never "come back for the rest". Damage is reported
        (``JournalCorruptError``) once the good records before it were returned.
        """
        if self._damage is not None:
            raise self._damage
        start = self.offset
        records: list[list[Any]] = []
        while True:
            chunk = self._file.read(max_bytes)
            if chunk:
                try:
                    self._unpacker.feed(chunk)
                except msgpack.BufferFull:  # more than 2 * MAX_RECORD_BYTES of one record pending: not ours
                    self._damage = JournalCorruptError(self.path, self.offset, "a record too large to read")
                    break
                self._fed += len(chunk)
            self._take_records(records)
            if records or not chunk or self._damage is not None:
                break
        if self._damage is not None and not records:
            raise self._damage
        if not chunk and not records and self._done == self._fed:
            # Nothing is pending: start a fresh unpacker so its bookkeeping does not grow forever.
            self._base += self._fed
            self._fed = self._done = 0
            self._unpacker = self._new_unpacker()
        return JournalBatch(records, start, self.offset)

    def _take_records(self, records: list[list[Any]]) -> None:
        while True:
            try:
                record = next(self._unpacker)
            except StopIteration:
                return
            except (ValueError, msgpack.UnpackException) as exc:
                self._damage = JournalCorruptError(self.path, self.offset, str(exc))
                return
            if not is_record(record):
                self._damage = JournalCorruptError(self.path, self.offset, f"not a runlane record: {record!r:.80}")
                return
            self._done = self._unpacker.tell()
            records.append(record)

    def at_end(self) -> bool:
        """True when every byte of the file has been handed out as a record."""
        return self.offset >= os.fstat(self._file.fileno()).st_size

    def close(self) -> None:
        self._file.close()
