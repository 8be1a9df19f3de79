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
from ..config import Tunables, embedded_dir
from ..diagnostics import log as _log
from ..entities import RunInfo
from ..errors import RunClosedError, RunlaneError
from ..merge import deep_merge
from ..naming import RunRef, check_metric_key
from ..statuses import FINISHED, normalize_status
from ..steps import STEP_MAX, STEP_MIN, as_integer
from ..store.ingest import split_lines
from . import ending, hooks
from .values import metric_values, plain_mapping
from .writer import SideJournal, StoreWriter, release

if TYPE_CHECKING:
    from ..blobs import BlobSink
    from ..store.base import Store, WriterSpec
    from .capture.context import RunCapture


_FAST_TYPES = frozenset({float, int})
_MAX_RECORD_BYTES = journal.MAX_RECORD_BYTES  # a module global: log() is the hot path
MAX_TAG_LENGTH = 256
TEXT_PIECE = 1024 * 1024  # log_text splits larger texts into records of about this many characters
PRIMARY_MODES = ("max", "min")
MAX_CAPTION = 4096
LOOKUP_INTERVAL_S = 1.0  # how often an unregistered run asks its server whether it knows it by now
LOOKUP_PATIENCE_S = 0.5
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
        store: str,
        blobs: BlobSink,
        capture: RunCapture | None = None,
        owner: bool = True,
        finish_timeout_s: float = Tunables().finish_timeout_s,
        registered: bool = True,
    ) -> None:
        self._info = info
        # False while the store has not registered the run (started while its server was unreachable):
        # ``info`` is then what this process knows, without ids, and the ids are looked up when asked for.
        self._registered = registered
        self._next_lookup = 0.0
        self._finish_timeout_s = finish_timeout_s
        # The owner (this process created the run, or resumed it while no other owner was open) decides the
        # run's final status; a side process's automatic ends only close its writer.
        self._owner = owner
        # A side process's counter knows nothing of the owner's: say so on its first log() without step=.
        self._warn_on_implicit_step = not owner
        self._writer = store_writer
        self._writer_id = writer_id
        self._journal = journal_file
        self._store = store
        self._blobs = blobs
        self._step = next_step
        self._logged_step: int | None = None  # the latest log() call's step: log_image's default
        self._status = info.status
        self._config = copy.deepcopy(info.config)
        self._tags: dict[str, None] = dict.fromkeys(info.tags)
        self._known_keys: set[str] = set()
        self._packer = journal.new_packer()
        self._encode_metrics = journal.metrics_encoder(self._packer)
        self._capture = capture
        self._side_journals: list[SideJournal] = []  # the console tee's, applied before the run's own at its end
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
    def id(self) -> int | None:
        """Numeric id, unique in the store; None while the store has not registered the run (a remote run
        started while its server was unreachable: known once the server is back)."""
        self._learn_ids()
        return self._info.id if self._registered else None

    @property
    def display_id(self) -> str | None:
        """Per-project sequential id like ``MMP-42``; None while the store has not registered the run."""
        self._learn_ids()
        return self._info.display_id if self._registered else None

    @property
    def _label(self) -> str:
        """How messages name the run: its display id, else its uid."""
        return self._info.display_id if self._registered else f"(uid {self._info.uid})"

    def _learn_ids(self) -> None:
        # The drain registers the run when the server answers; ask the server (at most once a second, briefly:
        # a property must not hang on a server that is down) whether it has by now.
        if self._registered or time.monotonic() < self._next_lookup or self._ended:
            return
        self._next_lookup = time.monotonic() + LOOKUP_INTERVAL_S
        uid = self._info.uid

        def look_up(store: Store) -> RunInfo:
            with store.patience(LOOKUP_PATIENCE_S):
                return store.run(RunRef("uid", uid))

        try:
            found = self._writer.call(look_up)
        except (RunlaneError, ValueError):  # not there yet, or the server still does not answer
            return
        self._info, self._registered = found, True

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
    def dir(self) -> Path | None:
        """The directory of the embedded store this run lives in; None for a store named by a URL."""
        return embedded_dir(self._store)

    @property
    def store(self) -> str:
        """The location of the store this run lives in: its directory, or its URL."""
        return self._store

    @property
    def info(self) -> RunInfo:
        """What the store said about this run when it was created or resumed (without ids, ``id == 0``,
        while the store has not registered it)."""
        self._learn_ids()
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
                if self._warn_on_implicit_step:
                    self._warn_about_implicit_steps()
                if step > STEP_MAX:  # only after an explicit step=STEP_MAX: the counter is one past it
                    raise ValueError(_counter_past_the_end(step))
            elif type(step) is not int or step < STEP_MIN or step > STEP_MAX:
                step = _check_step(step)
            if not values:
                self._step = step + 1
                self._logged_step = step
                return
            try:
                record = self._encode_metrics(time.time(), step, stage, values)
            except OverflowError:  # an int beyond 64 bits slipped past the fast path
                record = self._encode_metrics(time.time(), step, stage, metric_values(values, {}))
            if len(record) > _MAX_RECORD_BYTES:
                journal.check_record_size(record, "log()")
            self._journal.append(record)
            self._step = step + 1
            self._logged_step = step

    def log_text(self, text: str) -> None:
        """Append text to the run's log (not printed). Each line is stored with the time it was logged."""
        if not isinstance(text, str):
            raise TypeError(f"log_text takes a string, got {type(text).__name__}")
        pieces = [text] if len(text) <= TEXT_PIECE else _split_text(text)
        self._append_all([journal.Text.new(time.time(), "log", piece) for piece in pieces], "log_text()")

    def summary(self, update: Mapping[str, Any]) -> None:
        """Merge fields into the run summary (final scores, notes, chosen checkpoint, ...)."""
        values = plain_mapping(update, "summary")
        self._append_all([journal.Summary.new(time.time(), values)], "summary()")

    def update_config(self, update: Mapping[str, Any]) -> None:
        """Deep-merge later edits into the config (nested dicts merge, other values replace)."""
        values = plain_mapping(update, "config")
        self._append_all([journal.Config.new(time.time(), values)], "update_config()")
        self._config = deep_merge(self._config, values)

    def add_tags(self, *tags: str | Iterable[str]) -> None:
        """Add tags: ``add_tags("a", "b")`` or ``add_tags(["a", "b"])``; existing tags are kept once."""
        added = [tag for tag in dict.fromkeys(_tag_list(tags, "add_tags()")) if tag not in self._tags]
        if added:
            self._append_all([journal.Tags.new(time.time(), added, [])], "add_tags()")
            self._tags.update(dict.fromkeys(added))

    def remove_tags(self, *tags: str | Iterable[str]) -> None:
        """Remove tags; tags the run does not have are ignored."""
        removed = [tag for tag in dict.fromkeys(_tag_list(tags, "remove_tags()")) if tag in self._tags]
        if removed:
            self._append_all([journal.Tags.new(time.time(), [], removed)], "remove_tags()")
            for tag in removed:
                del self._tags[tag]

    def set_primary_metric(self, metric_name: str, mode: str = "max") -> None:
        """Name the metric that scores this run; its best value and step are tracked as points arrive."""
        check_metric_key(metric_name)
        if mode not in PRIMARY_MODES:
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self._append_all([journal.Primary.new(time.time(), metric_name, mode)], "set_primary_metric()")

    def log_image(self, key: str, image: Any, caption: str | None = None, step: int | None = None) -> None:
        """Record an image under ``key`` at ``step``: a PIL image, a numpy array (H, W) or (H, W, C) with C in
        1, 3, 4, or a torch tensor (C, H, W), holding uint8 or floats in [0, 1] (scaled by 255 and rounded);
        or an image file (PNG, JPEG, ...) as its bytes or its path.

        Without ``step`` the image goes with the latest ``log()`` call's step (0 before any), so an image
        logged after a training step lines up with that step's metrics. Stored as a PNG file in the store.
        """
        check_metric_key(key)
        if caption is not None:
            if not isinstance(caption, str):
                raise TypeError(f"caption must be a string, got {type(caption).__name__}")
            if len(caption) > MAX_CAPTION:
                raise ValueError(f"caption is {len(caption)} characters; at most {MAX_CAPTION}")
        # Without a step: the latest log()'s; before any, the one before the counter (a resumed run's
        # highest step), and 0 on a new run.
        if step is None:
            step = self._logged_step if self._logged_step is not None else max(self._step - 1, 0)
        else:
            step = _check_step(step)
        if self._ended:  # before the encoding work; _append_all checks again under the lock
            raise RunClosedError(self._closed_message())
        from . import media

        encoded = media.encode_png(image)
        name = self._blobs.put_bytes(encoded.png, "png")  # before the record: a record never names a missing blob
        self._append_all(
            [journal.Image.new(time.time(), key, step, caption, name, encoded.width, encoded.height)], "log_image()"
        )

    def _append_all(self, records: list[tuple[Any, ...]], what: str) -> None:
        encoded = [self._packer.pack(record) for record in records]  # encode all before writing any
        for data in encoded:
            journal.check_record_size(data, what)
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
            _log.warning("runlane: could not record captured context for %s: %s", self._label, exc)
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
            _log.warning("runlane: could not record captured context for %s: %s", self._label, exc)

    def flush(self, *, timeout: float | None = None) -> None:
        """Apply everything this process has logged to the run so far to the store, so that a read made
        next (``runlane.Api``, ``mlflow.get_run``) sees it. Waits at most ``timeout`` seconds (default as
        ``finish``); on a busy store it applies what it can and returns. Does nothing once the run ended."""
        if self._ended or os.getpid() != self._owner_pid:
            return
        timeout = self._finish_timeout_s if timeout is None else timeout
        self._writer.catch_up(self._writer_id, self._journal.path, time.monotonic() + timeout)

    # -- ending ---------------------------------------------------------------------------------

    def finish(self, status: str | None = None, *, timeout: float | None = None) -> None:
        """End the run: drain everything into the store, stop background work, set the final status
        (default ``finished``) and write the best primary-metric value into the summary.

        Waits at most ``timeout`` seconds (default 120, or ``RUNLANE_FINISH_TIMEOUT``) for the store to take what is
        still in the journal; past that it warns how much is unsent and where, and returns: the drain
        goes on, and whatever it cannot deliver is replayed by the next process that opens the store.
        Idempotent; after ``close()`` it does nothing.
        """
        final = FINISHED if status is None else normalize_status(status)
        self._end(final, None, timeout)

    def close(self, *, timeout: float | None = None) -> None:
        """Release local resources without changing the run's status (for side processes attached to
        a run another process will finish). Unregisters the exit hook. Idempotent."""
        self._end(None, None, timeout)

    def _end_automatically(self, status: str, reason: str | None) -> None:
        """An end this process did not ask for by name (exit, exception, signal, ``with``): the run's owner
        ends the run with ``status``; a side process only closes its writer, noting why."""
        if self._owner:
            self._end(status, reason, None)
        else:
            self._end(None, reason if reason is not None else f"the side process ended ({status})")

    def _end_with(self, status: str, reason: str | None) -> None:
        """Make an end in progress set ``status`` instead (a SIGTERM arrived while it drains)."""
        self._late_end = (status, reason)

    def _warn_about_implicit_steps(self) -> None:
        self._warn_on_implicit_step = False
        owners = [f"process {w.pid} on {w.host}" for w in self._info.writers if w.owner and w.closed_at is None]
        _log.warning(
            "runlane: run %s is written by its owner (%s) as well as by this process, which attached beside it;"
            " log() without step= counts on from step %d here, unaware of the owner's steps, so both may log"
            " the same step and a metric logged at one step by both keeps only one value: pass step= explicitly",
            self._label,
            ", ".join(owners) or "another process",
            self._step,
        )

    def _end(self, status: str | None, reason: str | None, timeout: float | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._ended_status = status
        hooks.unregister(self)
        if os.getpid() != self._owner_pid:
            return  # a forked child: the parent owns the writer, the journal and the capture threads
        with hooks.ending_run(self):
            try:
                if self._capture is not None:
                    try:
                        self._capture.stop()  # before draining: the last console lines and samples are stored
                    except Exception:  # the run must still end; what was captured so far is in the journal
                        _log.exception("runlane: stopping the context capture of %s failed", self._label)
                    self._append_ending_records()
                timeout = self._finish_timeout_s if timeout is None else timeout
                deadline = time.monotonic() + timeout
                for side in self._side_journals:  # their END records are in by now (capture.stop saw to it)
                    try:
                        self._wait_until_stored(side.writer_id, side.file.path, None, deadline, timeout)
                    except RuntimeError as exc:  # damaged: kept, its writer closed with the reason; the run ends
                        _log.error("runlane: run %s: %s", self._label, exc)
                if status is not None:
                    # Apply the journal first and only then settle the status: a SIGTERM that arrives while
                    # the backlog is applied still makes this run end killed (_end_with), since the status
                    # is only fixed once the END record is written.
                    self._writer.catch_up(self._writer_id, self._journal.path, deadline)
                    if self._late_end is not None:
                        status, reason = self._late_end
                        self._ended_status = status
                # The END record makes the ending durable: whoever applies the journal (our drain, or a
                # later process replaying it after a crash) closes the writer with this status.
                with self._lock:
                    self._journal.append(self._capture_packer.pack(journal.End.new(time.time(), status, reason)))
                self._journal.close()
                self._wait_until_stored(self._writer_id, self._journal.path, status, deadline, timeout)
            finally:
                self._journal.close()
                release(self._writer)
            if status is not None:
                self._status = status

    def _open_side_journal(self, process: WriterSpec) -> SideJournal:
        """A journal of this run for the console tee (``capture.OpenJournal``), applied at the run's end."""
        side = SideJournal(self._writer, process, self.id, self._info.uid)
        self._side_journals.append(side)
        return side

    def _wait_until_stored(
        self, writer_id: str, path: Path, status: str | None, deadline: float, timeout: float
    ) -> None:
        left = max(0.0, deadline - time.monotonic())
        if not self._writer.complete(writer_id, path, status, left):
            _log.warning(
                "runlane: run %s: the store did not take everything within %.0f s: %s record(s) are unsent, kept"
                " in %s; the drain goes on delivering them while it can, else the next process that opens the"
                " store (or `runlane sync --url %s`) does",
                self._label,
                timeout,
                f"{self._writer.unsent(writer_id, path):,}",
                path,
                self._store,
            )

    def _closed_message(self) -> str:
        how = "was closed" if self._ended_status is None else f"has ended ({self._ended_status})"
        return f"run {self._label} {how} in this process; it takes no more data"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._end_automatically(*hooks.outcome(ending.ending_of(exc)))


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
    value = as_integer(step)
    if value is None:
        raise TypeError(f"step must be an integer, got {type(step).__name__} {step!r}")
    if value < STEP_MIN:
        raise ValueError(f"step {value} is below the smallest step a store can hold ({STEP_MIN}, -2**63)")
    if value > STEP_MAX:
        raise ValueError(f"step {value} is beyond the largest step a store can hold ({STEP_MAX}, 2**63 - 1)")
    return value


def _counter_past_the_end(counter: int) -> str:
    return (
        f"the step counter is at {counter}, beyond the largest step a store can hold ({STEP_MAX}, 2**63 - 1), "
        "because the previous step was that largest one; pass step= explicitly"
    )


def _tag_list(tags: tuple[object, ...], what: str) -> list[str]:
    """Tags given as strings or iterables of strings; ``what`` names the argument in errors."""
    out: list[str] = []
    for item in tags:
        if isinstance(item, str):
            items: Iterable[object] = [item]
        elif isinstance(item, Iterable) and not isinstance(item, (bytes, bytearray, Mapping)):
            items = item
        else:
            raise TypeError(f"{what} takes strings or lists of strings, got {type(item).__name__} {item!r}")
        for tag in items:
            if not isinstance(tag, str):
                raise TypeError(f"{what}: tags must be strings, got {type(tag).__name__} {tag!r}")
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
