"""The run-context options of ``init()`` and the object that starts and stops their capture for one run.

Three phases, so that a bad option or an oversized workspace refuses the run before it exists and a
failure half-way leaves nothing behind:

1. ``check_options()`` validates the arguments (no side effects; ``init()`` calls it first).
2. ``RunCapture.prepare()`` does what may refuse the run: claims the console, lists the snapshot's files
   against its limits. Called before the run is created; ``stop()`` undoes it if creation fails.
3. ``RunCapture.start()`` starts the threads once the run exists; ``stop()`` (from ``Run._end``, before the
   journal is drained) stops them and waits for the environment and snapshot to be recorded.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ...diagnostics import log
from ...journal import File
from . import Emit, OpenJournal
from .lines import TQDM_MODES, TqdmMode
from .system import DEFAULT_INTERVAL_S, MIN_INTERVAL_S, SystemMonitor

if TYPE_CHECKING:
    from ...blobs import BlobSink
    from .console import ConsoleCapture
    from .snapshot import SnapshotPlan

# The console, snapshot and environment modules are imported when a run asks for them: every init()
# loads this module, and a process's first init() has a budget of milliseconds.

SNAPSHOT_FORMATS = ("zip",)


class CaptureOptions(NamedTuple):
    """Validated run-context options (see ``init()``)."""

    console: bool = False
    tqdm_mode: TqdmMode = "smart"
    system_interval: float | None = DEFAULT_INTERVAL_S
    system_auto: bool = True  # the interval was not chosen: off when attaching to a run another process writes
    env: bool = False
    snapshot: bool = False
    workspace_root: str | os.PathLike[str] | None = None
    force_snapshot: bool = False


def check_options(
    *,
    capture_console: bool,
    tqdm_mode: str,
    system_metrics_interval: float | str | None,
    capture_env: bool,
    snapshot_code: bool,
    workspace_root: str | os.PathLike[str] | None,
    snapshot_format: str,
    force_snapshot: bool,
) -> CaptureOptions:
    """Validate the options; ``ValueError``/``TypeError`` naming the bad one, before anything happens."""
    if not isinstance(tqdm_mode, str) or tqdm_mode not in TQDM_MODES:
        raise ValueError(f"tqdm_mode must be one of {', '.join(map(repr, TQDM_MODES))}, got {tqdm_mode!r}")
    if not isinstance(snapshot_format, str) or snapshot_format not in SNAPSHOT_FORMATS:
        raise ValueError(f"snapshot_format must be 'zip' (the only format), got {snapshot_format!r}")
    if capture_console:
        import select

        if not hasattr(select, "poll") or not hasattr(os, "posix_spawn"):
            raise NotImplementedError(
                "capture_console=True needs select.poll() and os.posix_spawn(), which this platform lacks (Windows)"
            )
    if workspace_root is not None and not isinstance(workspace_root, (str, os.PathLike)):
        raise TypeError(f"workspace_root must be a path, got {type(workspace_root).__name__}")
    return CaptureOptions(
        console=bool(capture_console),
        tqdm_mode=tqdm_mode,
        system_interval=DEFAULT_INTERVAL_S if system_metrics_interval == "auto" else _interval(system_metrics_interval),
        system_auto=system_metrics_interval == "auto",
        env=bool(capture_env),
        snapshot=bool(snapshot_code),
        workspace_root=workspace_root,
        force_snapshot=bool(force_snapshot),
    )


def _interval(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"system_metrics_interval must be a number of seconds, 'auto', or None/0 for off; got {value!r}"
        )
    if value == 0:
        return None
    if not math.isfinite(value) or value < MIN_INTERVAL_S:
        raise ValueError(
            f"system_metrics_interval must be at least {MIN_INTERVAL_S} seconds (or None/0 for off), got {value!r}"
        )
    return float(value)


class RunCapture:
    """Everything that captures context for one run; created by ``init()``, stopped by ``Run._end``."""

    def __init__(self, options: CaptureOptions, store_dir: Path) -> None:
        self.options = options
        self._store_dir = store_dir  # what runlane writes here (the store, or the spool): cut out of the snapshot
        self._blobs: BlobSink | None = None  # given by start(): the run's link to its store
        self._workdir: Path | None = None  # where the environment's git facts come from
        self._console: ConsoleCapture | None = None
        self._snapshot: SnapshotPlan | None = None
        self._monitor: SystemMonitor | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def prepare(self) -> None:
        """Claim the console, list the snapshot's files, note the working directory: errors here refuse the
        run before it exists."""
        try:
            if self.options.env:
                # Taken now, not on the capture thread: the process may change directory meanwhile.
                root = self.options.workspace_root
                self._workdir = Path(os.fspath(root)).expanduser().absolute() if root is not None else Path.cwd()
            if self.options.snapshot:
                from . import snapshot

                snapshot_root = snapshot.default_root(self.options.workspace_root)
                self._snapshot = snapshot.plan(snapshot_root, self._store_dir, force=self.options.force_snapshot)
            if self.options.console:
                from .console import ConsoleCapture

                self._console = ConsoleCapture.claim(self.options.tqdm_mode)
        except BaseException:
            self.stop()
            raise

    def sample_system_metrics(self, enabled: bool) -> None:
        """Switch the monitor off (or keep it) once the run is known, if its interval was left to "auto"."""
        if self.options.system_auto and not enabled:
            self.options = self.options._replace(system_interval=None)

    def start(self, emit: Emit, label: str, open_journal: OpenJournal, blobs: BlobSink) -> None:
        """Start capturing for the run ``label`` (its display id); on failure, stop what was started.

        ``emit`` takes the records of the capture threads; ``open_journal`` gives the console its own journal,
        appended to by its tee process; ``blobs`` takes the environment and the snapshot."""
        self._blobs = blobs
        try:
            if self._console is not None:
                self._console.start(open_journal, label)
            jobs: list[tuple[str, Callable[[], tuple[Any, ...]]]] = []
            if self.options.env:
                jobs.append(("environment", self._environment_record))
            if self._snapshot is not None:
                jobs.append(("code snapshot", self._snapshot_record))
            if jobs:
                self._thread = threading.Thread(
                    target=self._background, args=(emit, jobs), name="runlane-context", daemon=True
                )
                self._thread.start()
            if self.options.system_interval is not None:
                self._monitor = SystemMonitor(emit, self.options.system_interval)
                self._monitor.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop sampling, wait for the environment and snapshot, then put the console back. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            if self._monitor is not None:
                self._monitor.stop()
            if self._thread is not None:
                self._thread.join()
        finally:
            # Last, so that whatever the other parts printed while stopping is still captured.
            if self._console is not None:
                self._console.stop()

    # -- the background thread: environment and code snapshot -----------------------------------

    def _background(self, emit: Emit, jobs: list[tuple[str, Callable[[], tuple[Any, ...]]]]) -> None:
        for what, job in jobs:
            try:
                emit([job()])
            except Exception:
                log.warning("runlane: could not record the run's %s", what, exc_info=True)

    def _environment_record(self) -> tuple[Any, ...]:
        from ... import wire
        from .environment import collect

        assert self._workdir is not None
        document = wire.dumps(collect(self._workdir)).encode("utf-8")
        assert self._blobs is not None
        name = self._blobs.put_bytes(document, "json")
        return File.new(time.time(), "environment", name, {"bytes": len(document)})

    def _snapshot_record(self) -> tuple[Any, ...]:
        from .snapshot import build

        assert self._snapshot is not None
        assert self._blobs is not None
        name, meta = build(self._snapshot, self._blobs)
        return File.new(time.time(), "code", name, meta)
