"""A run as seen from the training process: cheap writes into the journal, lifecycle on the writer.

Every write method validates its input completely, encodes one journal record and appends it with a
single ``os.write``; nothing here touches the database. ``log()`` is the hot path: a flat dict of known
keys with plain int/float values takes an inline fast path of a few microseconds.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import journal
from ..entities import RunInfo
from ..errors import RunClosedError
from ..logs import log as _log
from ..merge import deep_merge
from ..naming import check_metric_key
from ..statuses import FINISHED, normalize_status
from ..store.ingest import split_lines
from . import ending, hooks
from .values import metric_values, plain_mapping
from .writer import StoreWriter, release

if TYPE_CHECKING:
    from .capture.context import RunCapture


_FAST_TYPES = frozenset({float, int})
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
MAX_TAG_LENGTH = 256
TEXT_PIECE = 1024 * 1024  # log_text splits larger texts into records of about this many characters
PRIMARY_MODES = ("max", "min")
MAX_CAPTION = 4096
CAPTURE_LOCK_POLL_S = 0.05  # how often a capture thread waiting for the run lock checks whether the run ends


class Run:
    """A run this process writes to. Create it with ``runlane.init()``."""

    def __init__(
        self,
        info: RunInfo,
        *,
        store_writer: StoreWriter,
        writer_id: str,
        journal_file: journal.JournalFile,
        next_step: int,
        store_dir: Path,
        capture: RunCapture | None = None,
    ) -> None:
        self._info = info
        self._writer = store_writer
        self._writer_id = writer_id
        self._journal = journal_file
        self._store_dir = store_dir
        self._step = next_step
        self._status = info.status
        self._config = copy.deepcopy(info.config)
        self._tags: dict[str, None] = dict.fromkeys(info.tags)
        self._known_keys: set[str] = set()
        self._packer = journal.new_packer()
        self._capture = capture
        # Capture threads encode with their own packer (a Packer is not meant to be shared between threads),
        # only while holding the run lock or, once the run ends, on the ending thread after they stopped.
        self._capture_packer = journal.new_packer()
        self._ending_records: list[tuple[Any, ...]] = []  # captured while the run ends; see _record
        # Reentrant: a signal handler that ends the run may interrupt this thread inside log().
        self._lock = threading.RLock()
        self._ended = False
        self._ended_status: str | None = None
        self._late_end: tuple[str, str | None] | None = None  # set by a fatal signal while the run ends
        self._owner_pid = os.getpid()
        _runs.add(self)
        hooks.register(self)

    # -- identity -------------------------------------------------------------------------------

    @property
    def id(self) -> int:
        """Numeric id, unique in the store."""
        return self._info.id

    @property
    def display_id(self) -> str:
        """Per-project sequential id like ``MMP-42``."""
        return self._info.display_id

    @property
    def uid(self) -> str:
        """Globally unique id minted by the client."""
        return self._info.uid

    @property
    def name(self) -> str | None:
        return self._info.name

    @property
    def alias(self) -> str | None:
        return self._info.alias

    @property
    def project(self) -> str:
        return self._info.project

    @property
    def status(self) -> str:
        """``running`` until this process ends the run; afterwards the status it set (or left)."""
        return self._status

    @property
    def config(self) -> dict[str, Any]:
        """A copy of the config; change it with ``update_config()``."""
        return copy.deepcopy(self._config)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self._tags)

    @property
    def step(self) -> int:
        """The step the next ``log()`` without ``step=`` will use."""
        return self._step

    @property
    def parent_run_id(self) -> int | None:
        return self._info.parent_run_id

    @property
    def fork_run_id(self) -> int | None:
        """The resolved parent of a fork (see lineage resolution), or None."""
        return self._info.fork_run_id

    @property
    def fork_step(self) -> int | None:
        return self._info.fork_step

    @property
    def dir(self) -> Path:
        """The store directory this run lives in."""
        return self._store_dir

    @property
    def info(self) -> RunInfo:
        """What the store said about this run when it was created or resumed."""
        return self._info

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<runlane.Run {self.display_id}{name} {self._status}>"

    # -- writes ---------------------------------------------------------------------------------

    def log(
        self,
        data: Mapping[str, Any] | None = None,
        step: int | None = None,
        stage: str | None = None,
        **metrics: Any,
    ) -> None:
        """Record metrics at a step: ``log({"loss": 0.3})``, ``log(loss=0.3, step=10, stage="train")``.

        Without ``step`` the run's counter is used and incremented; an explicit step sets the counter to
        ``step + 1``. Nested dicts are flattened with ``/``. A value that is not a number raises
        ``TypeError`` naming its key, and nothing of the call is recorded.
        """
        if data is None:
            values: Any = metrics
        elif type(data) is dict and not metrics:
            values = data
        else:
            values = metric_values(data, metrics)
        known = self._known_keys
        for key, value in values.items():
            if key not in known or type(value) not in _FAST_TYPES:
                values = metric_values(values, {})
                known.update(values)
                break
        if stage is not None and type(stage) is not str:
            raise TypeError(f"stage must be a string, got {type(stage).__name__}")
        with self._lock:
            if self._ended:
                raise RunClosedError(self._closed_message())
            if step is None:
                step = self._step
            elif type(step) is not int or step < 0:
                step = _check_step(step)
            if not values:
                self._step = step + 1
                return
            try:
                record = self._packer.pack((journal.METRICS, time.time(), step, stage, values))
            except OverflowError:  # an int beyond 64 bits slipped past the fast path
                record = self._packer.pack((journal.METRICS, time.time(), step, stage, metric_values(values, {})))
            self._journal.append(record)
            self._step = step + 1

    def log_text(self, text: str) -> None:
        """Append text to the run's log (not printed). Each line is stored with the time it was logged."""
        if not isinstance(text, str):
            raise TypeError(f"log_text takes a string, got {type(text).__name__}")
        pieces = [text] if len(text) <= TEXT_PIECE else _split_text(text)
        self._append_all([(journal.TEXT, time.time(), "log", piece) for piece in pieces])

    def summary(self, update: Mapping[str, Any]) -> None:
        """Merge fields into the run summary (final scores, notes, chosen checkpoint, ...)."""
        values = plain_mapping(update, "summary")
        self._append_all([(journal.SUMMARY, time.time(), values)])

    def update_config(self, update: Mapping[str, Any]) -> None:
        """Deep-merge later edits into the config (nested dicts merge, other values replace)."""
        values = plain_mapping(update, "config")
        self._append_all([(journal.CONFIG, time.time(), values)])
        self._config = deep_merge(self._config, values)

    def add_tags(self, *tags: str | Iterable[str]) -> None:
        """Add tags: ``add_tags("a", "b")`` or ``add_tags(["a", "b"])``; existing tags are kept once."""
        added = [tag for tag in dict.fromkeys(_tag_list(tags)) if tag not in self._tags]
        if added:
            self._append_all([(journal.TAGS, time.time(), added, [])])
            self._tags.update(dict.fromkeys(added))

    def remove_tags(self, *tags: str | Iterable[str]) -> None:
        """Remove tags; tags the run does not have are ignored."""
        removed = [tag for tag in dict.fromkeys(_tag_list(tags)) if tag in self._tags]
        if removed:
            self._append_all([(journal.TAGS, time.time(), [], removed)])
            for tag in removed:
                del self._tags[tag]

    def set_primary_metric(self, metric_name: str, mode: str = "max") -> None:
        """Name the metric that scores this run; its best value and step are tracked as points arrive."""
        check_metric_key(metric_name)
        if mode not in PRIMARY_MODES:
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self._append_all([(journal.PRIMARY, time.time(), metric_name, mode)])

    def log_image(self, key: str, image: Any, caption: str | None = None, step: int | None = None) -> None:
        """Record an image under ``key`` at ``step``: a PIL image, a numpy array (H, W) or (H, W, C) with C in
        1, 3, 4, or a torch tensor (C, H, W); uint8, or floats in [0, 1] (scaled by 255 and rounded).

        Without ``step`` the image goes with the latest ``log()`` call's step (0 before any), so an image
        logged after a training step lines up with that step's metrics. Stored as a PNG file in the store.
        """
        check_metric_key(key)
        if caption is not None:
            if not isinstance(caption, str):
                raise TypeError(f"caption must be a string, got {type(caption).__name__}")
            if len(caption) > MAX_CAPTION:
                raise ValueError(f"caption is {len(caption)} characters; at most {MAX_CAPTION}")
        if step is None:
            step = max(self._step - 1, 0)  # the step of the latest log(): the counter is one past it
        elif type(step) is not int or step < 0:
            step = _check_step(step)
        if self._ended:  # before the encoding work; _append_all checks again under the lock
            raise RunClosedError(self._closed_message())
        from .. import blobs
        from . import media

        encoded = media.encode_png(image)
        name = blobs.put_bytes(self._store_dir, encoded.png, "png")
        self._append_all([(journal.IMAGE, time.time(), key, step, caption, name, encoded.width, encoded.height)])

    def _append_all(self, records: list[tuple[Any, ...]]) -> None:
        encoded = [self._packer.pack(record) for record in records]  # encode all before writing any
        with self._lock:
            if self._ended:
                raise RunClosedError(self._closed_message())
            for data in encoded:
                self._journal.append(data)

    def _record(self, records: list[tuple[Any, ...]]) -> None:
        """Append records from runlane's own capture threads (console, system monitor, environment).

        Unlike user writes this works after ``_end`` has begun: records that arrive while the run ends are
        handed to ``_end``, which appends them once the capture threads have stopped and before the journal
        is drained. Never raises: a full disk must not kill a capture thread.
        """
        if not self._lock_for_capture():
            self._ending_records.extend(records)
            return
        try:
            for data in [self._capture_packer.pack(record) for record in records]:
                self._journal.append(data)
        except Exception as exc:
            _log.warning("runlane: could not record captured context for %s: %s", self._info.display_id, exc)
        finally:
            self._lock.release()

    def _lock_for_capture(self) -> bool:
        """Take the run lock for a capture thread, or return False once the run is ending.

        While the run lives, wait as long as it takes (a slow disk under a user's write). Once it is ending
        the lock may never come: a signal handler that ends the run may have interrupted the thread holding
        it inside ``log()``, and that handler waits for the capture threads to stop.
        """
        while not self._ended:
            if self._lock.acquire(timeout=CAPTURE_LOCK_POLL_S):
                if not self._ended:
                    return True
                self._lock.release()  # keep the order: from now on everything goes through _end
        return False

    def _append_ending_records(self) -> None:
        records, self._ending_records = self._ending_records, []
        if not records:
            return
        try:
            encoded = [self._capture_packer.pack(record) for record in records]
            with self._lock:  # reentrant: this thread may hold it already (a signal handler inside log())
                for data in encoded:
                    self._journal.append(data)
        except Exception as exc:
            _log.warning("runlane: could not record captured context for %s: %s", self._info.display_id, exc)

    # -- ending ---------------------------------------------------------------------------------

    def finish(self, status: str | None = None) -> None:
        """End the run: drain everything into the store, stop background work, set the final status
        (default ``finished``) and write the best primary-metric value into the summary.

        Idempotent; after ``close()`` it does nothing.
        """
        final = FINISHED if status is None else normalize_status(status)
        self._end(final, None)

    def close(self) -> None:
        """Release local resources without changing the run's status (for side processes attached to
        a run another process will finish). Unregisters the exit hook. Idempotent."""
        self._end(None, None)

    def _end_automatically(self, status: str, reason: str | None) -> None:
        self._end(status, reason)

    def _end_with(self, status: str, reason: str | None) -> None:
        """Make an end in progress set ``status`` instead (a SIGTERM arrived while it drains)."""
        self._late_end = (status, reason)

    def _end(self, status: str | None, reason: str | None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._ended_status = status
        hooks.unregister(self)
        if os.getpid() != self._owner_pid:
            return  # a forked child: the parent owns the writer, the journal and the capture threads
        settled: list[str | None] = []

        def settle() -> tuple[str | None, str | None]:
            # Asked on the writer thread once the journal is drained, so a signal during the drain still counts.
            final = self._late_end if status is not None and self._late_end is not None else (status, reason)
            settled.append(final[0])
            return final

        with hooks.ending_run(self):
            try:
                if self._capture is not None:
                    try:
                        self._capture.stop()  # before draining: the last console lines and samples are stored
                    except Exception:  # the run must still end; what was captured so far is in the journal
                        _log.exception("runlane: stopping the context capture of %s failed", self._info.display_id)
                    self._append_ending_records()
                self._writer.unfollow(self._writer_id, settle)
            finally:
                self._journal.close()
                release(self._writer)
            if settled and settled[-1] is not None:
                self._status = settled[-1]

    def _closed_message(self) -> str:
        how = "was closed" if self._ended_status is None else f"has ended ({self._ended_status})"
        return f"run {self._info.display_id} {how} in this process; it takes no more data"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._end(*hooks.outcome(ending.ending_of(exc)))


# Every Run of this process, for the fork handler below.
_runs: weakref.WeakSet[Run] = weakref.WeakSet()


def _new_locks_in_child() -> None:
    # A forked child has one thread. A run lock another thread of the parent held at the fork (inside log(),
    # or a capture thread recording) would never be released there, and the child's next write would wait
    # forever: give every run a fresh one. The journal needs no lock (one O_APPEND write per record).
    for run in list(_runs):
        run._lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks_in_child)


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise TypeError(f"step must be a non-negative integer, got {type(step).__name__} {step!r}")
    value = int(step.__index__())
    if value < 0:
        raise ValueError(f"step must be a non-negative integer, got {value}")
    if value > _UINT64_MAX // 2:
        raise ValueError(f"step {value} is too large")
    return value


def _tag_list(tags: tuple[str | Iterable[str], ...]) -> list[str]:
    out: list[str] = []
    for item in tags:
        for tag in [item] if isinstance(item, str) else item:
            if not isinstance(tag, str):
                raise TypeError(f"tags must be strings, got {type(tag).__name__} {tag!r}")
            if not tag.strip():
                raise ValueError("a tag must not be empty")
            if len(tag) > MAX_TAG_LENGTH:
                raise ValueError(f"tag {tag[:40]!r}... is {len(tag)} characters; at most {MAX_TAG_LENGTH}")
            out.append(tag)
    return out


def _split_text(text: str) -> list[str]:
    """Cut a huge text into pieces at line ends (or hard, for a single giant line)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for whole_line in split_lines(text):
        line = whole_line
        while len(line) > TEXT_PIECE:
            pieces.append(line[:TEXT_PIECE])
            line = line[TEXT_PIECE:]
        if size + len(line) > TEXT_PIECE and current:
            pieces.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append("\n".join(current))
    return pieces
