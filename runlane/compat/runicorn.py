"""Runicorn's run lifecycle on runlane: ``import runlane.compat.runicorn as rn``.

``init`` (paths, storage, alias, environment capture, code snapshot, console capture), ``log`` with
stages, ``set_primary_metric``, ``log_text``, ``get_logging_handler``, ``summary``, ``log_config``,
``log_image``, ``log_dataset``, ``log_pretrained``, ``finish``, the ``with`` block, ``get_active_run``
and ``set_enabled``/``is_enabled``/``reset_enabled``/``enabled`` behave as Runicorn (``runicorn/sdk.py``
and ``runicorn/enabled.py`` upstream) does, with Runicorn's vocabulary on the outside:

- steps count from 1: the first ``log()`` without ``step`` is step 1, then 2, 3, ...;
- statuses are ``running``, ``finished``, ``failed`` and ``interrupted`` (runlane's ``killed``);
- ``path`` is the project: ``None`` -> ``"default"``, ``"/"`` -> the root project (named ``root``),
  backslashes become ``/``, outer slashes are stripped, traversal is refused;
- ``storage`` is the store directory; ``run_id`` names a new run, and an id already in use is an error;
- ``is_enabled()`` is what ``set_enabled`` said, else ``$RUNICORN_ON`` (``1/true/yes/y/on`` or
  ``0/false/no/n/off``), else True; while off, ``init`` returns a ``NoOpRun`` (and runlane is off too);
- ``get_logging_handler(level=logging.INFO, fmt=None)`` is a ``logging.Handler`` whose records become
  lines of the run's log, formatted ``%(asctime)s | %(levelname)s | %(name)s | %(message)s`` with
  ``%H:%M:%S`` times unless ``fmt`` says otherwise; records after the run ended are dropped, as upstream
  drops them without a run;
- ``log_image(key, image, step=None, caption=None, format="png", quality=90)`` takes a PIL image, a
  numpy array, a torch tensor, an image file's bytes or its path;
- ``log_dataset`` and ``log_pretrained`` record metadata, as upstream's ``assets.json`` entries do
  (``name``, ``context``/``source_type``, ``uri``/``path_or_uri``, ``description``, ``saved``,
  ``fingerprint``), plus ``size_bytes`` and ``sha256``, a content hash: of a file, its bytes; of a
  directory, the sha256 of one line ``<relative path>\0<size>\0<file sha256>\n`` per file in path
  order. They are stored in the run summary under ``datasets`` and ``pretrained`` (lists, in logging
  order), so ``runlane.Api().run(id).summary["datasets"]`` reads them back.

Where runlane differs, and why:

- ``path`` may hold any printable characters (runlane's project rule), where upstream allows only
  letters, digits, ``_``, ``-`` and ``/``: names upstream accepts mean the same here.
- SIGTERM and Ctrl-C leave a run ``interrupted`` rather than ``failed``, and a run whose process died is
  marked ``failed`` by the next process that opens the store.
- ``log_dataset``/``log_pretrained`` never archive the files: ``save=True`` logs a warning and records
  ``saved: False`` (``force_save`` and the ``max_archive_*`` limits therefore do nothing). Content over
  1 GiB (``HASH_LIMIT_BYTES``) is not hashed (``sha256: None``; size and fingerprint are still recorded),
  because hashing runs on the caller's thread; a ``uri`` that is not a local path (``s3://...``, a dict)
  has neither.
- ``log_image`` stores PNG whatever ``format`` says (runlane keeps images lossless; ``quality`` is
  unused) and returns None rather than the path of a media file: images live in the store
  (``runlane.Api().images(id)``). Its default step is the latest logged step, where upstream records
  none.
- The logging handler writes the formatted record (upstream prefixes nothing more either); each line
  also carries the time it was logged.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import runlane

__all__ = [
    "HASH_LIMIT_BYTES",
    "NoOpRun",
    "Run",
    "enabled",
    "get_active_run",
    "init",
    "is_enabled",
    "reset_enabled",
    "set_enabled",
]

HASH_LIMIT_BYTES = 1 << 30
"""Datasets and pretrained files larger than this are recorded without a content hash."""

ROOT_PROJECT = "root"
DEFAULT_PATH = "default"

_STATUS_NAMES = {"killed": "interrupted"}


_log = logging.getLogger("runlane")
_override: bool | None = None  # set_enabled's word, which wins over $RUNICORN_ON
_active: Run | None = None
_TRUE = frozenset({"1", "true", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "no", "n", "off"})


def is_enabled() -> bool:
    """Whether ``init`` records runs: ``set_enabled``'s value, else ``$RUNICORN_ON``, else True."""
    if _override is not None:
        return _override
    value = os.environ.get("RUNICORN_ON", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return runlane.is_enabled()


def set_enabled(enabled: bool) -> None:
    """Switch tracking on or off; while off, ``init`` returns a ``NoOpRun``."""
    global _override
    _override = bool(enabled)
    runlane.set_enabled(_override)


def reset_enabled() -> None:
    """Forget ``set_enabled``: ``$RUNICORN_ON`` decides again."""
    global _override
    _override = None
    runlane.set_enabled(True)


@contextlib.contextmanager
def enabled(enabled: bool) -> Iterator[None]:
    """``with rn.enabled(False): ...`` switches tracking for the block, then back to what it was."""
    global _override
    before = _override
    set_enabled(enabled)
    try:
        yield
    finally:
        _override = before
        runlane.set_enabled(True if before is None else before)


def get_active_run() -> Run | None:
    """The run the latest ``init`` returned (kept after it finishes, as upstream); None after an ``init``
    while tracking was off."""
    return _active


def _project(path: str | None) -> str:
    if path is None:
        return DEFAULT_PATH
    if not isinstance(path, str):
        raise ValueError(f"path must be a string like 'cv/resnet50/baseline', got {type(path).__name__}")
    normalized = path.replace("\\", "/")
    if normalized.strip() in ("/", ""):
        return ROOT_PROJECT
    # Runicorn strips both outer slashes (runlane keeps a leading one, for MLflow's names); runlane
    # validates the rest: control characters, empty segments and traversal are refused.
    return normalized.strip("/")


class Run:
    """A Runicorn run: steps from 1, Runicorn's status names, ``log_config``."""

    def __init__(self, native: runlane.Run | runlane.NoOpRun) -> None:
        self._native = native
        self._next_step = 1 if native.step == 0 else native.step
        self._assets: dict[str, list[dict[str, Any]]] = {"datasets": [], "pretrained": []}

    @property
    def id(self) -> str | None:
        """The run id (runlane's uid)."""
        return self._native.uid

    @property
    def run_id(self) -> str | None:
        return self._native.uid

    @property
    def path(self) -> str | None:
        return self._native.project

    @property
    def alias(self) -> str | None:
        return self._native.alias

    @property
    def status(self) -> str:
        return _STATUS_NAMES.get(self._native.status, self._native.status)

    @property
    def native(self) -> runlane.Run | runlane.NoOpRun:
        """The runlane run underneath, for what Runicorn does not offer."""
        return self._native

    def log(
        self, data: Mapping[str, Any] | None = None, step: int | None = None, stage: str | None = None, **kwargs: Any
    ) -> None:
        """Log scalar metrics; without ``step`` the global step is incremented (starting at 1)."""
        chosen = self._next_step if step is None else step
        self._native.log(data, step=chosen, stage=stage, **kwargs)
        self._next_step = chosen + 1

    def set_primary_metric(self, metric_name: str, mode: str = "max") -> None:
        self._native.set_primary_metric(metric_name, mode=mode)

    def log_text(self, text: str) -> None:
        """Append to the run's log (not printed); each non-empty line is time-stamped."""
        self._native.log_text(text)

    def summary(self, update: Mapping[str, Any]) -> None:
        """Merge run-level fields into the summary."""
        self._native.summary(update)

    def log_config(
        self,
        args: argparse.Namespace | Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        config_files: Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        """Record the run's configuration as Runicorn lays it out: ``args`` (an argparse namespace or a
        dict), ``extra`` and ``config_files`` (paths), each under its own key of the config."""
        config: dict[str, Any] = {}
        if args is not None:
            config["args"] = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
        if extra is not None:
            config["extra"] = dict(extra)
        if config_files is not None:
            config["config_files"] = [os.fspath(path) for path in config_files]
        if config:
            self._native.update_config(config)

    def get_logging_handler(self, level: int = logging.INFO, fmt: str | None = None) -> logging.Handler:
        """A ``logging.Handler`` that writes each record it takes as a line of this run's log:
        ``logger.addHandler(run.get_logging_handler())``."""
        return _RunLogHandler(self, level, fmt)

    def log_image(
        self,
        key: str,
        image: Any,
        step: int | None = None,
        caption: str | None = None,
        format: str = "png",
        quality: int = 90,
    ) -> None:
        """Record an image at ``step`` (default: the latest logged step): a PIL image, a numpy array, a
        torch tensor, or an image file's bytes or path. Stored as PNG whatever ``format`` says."""
        self._native.log_image(key, image, caption=caption, step=step)

    def log_dataset(
        self,
        name: str,
        root_or_uri: str | os.PathLike[str] | Mapping[str, Any],
        *,
        context: str = "train",
        save: bool = False,
        description: str | None = None,
        force_save: bool = False,
        max_archive_bytes: int = 5 * 1024 * 1024 * 1024,
        max_archive_files: int = 2_000_000,
    ) -> None:
        """Record which dataset the run used: a local file or directory (fingerprinted and hashed) or a
        URI; stored in the summary's ``datasets`` list. The files are not archived."""
        if isinstance(self._native, runlane.NoOpRun):
            return  # tracking is off: not even the hashing
        uri, found = _locate(root_or_uri, "root_or_uri")
        entry = {"name": _name(name), "context": context, "uri": uri, "description": description, "saved": False}
        entry.update(_fingerprint(found))
        self._record_asset("datasets", entry, save)

    def log_pretrained(
        self,
        name: str,
        *,
        path_or_uri: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        save: bool = False,
        source_type: str = "unknown",
        description: str | None = None,
        force_save: bool = False,
        max_archive_bytes: int = 5 * 1024 * 1024 * 1024,
        max_archive_files: int = 2_000_000,
    ) -> None:
        """Record which pretrained weights the run started from; stored in the summary's ``pretrained``
        list. The files are not archived."""
        if save and path_or_uri is None:
            raise ValueError("save=True requires path_or_uri")
        if isinstance(self._native, runlane.NoOpRun):
            return
        uri, found = (None, None) if path_or_uri is None else _locate(path_or_uri, "path_or_uri")
        entry = {
            "name": _name(name),
            "source_type": source_type,
            "path_or_uri": uri,
            "description": description,
            "saved": False,
        }
        entry.update(_fingerprint(found))
        self._record_asset("pretrained", entry, save)

    def _record_asset(self, section: str, entry: dict[str, Any], save: bool) -> None:
        if save:
            _log.warning(
                "runlane: %s %r is recorded as metadata only; its files are not archived (save=True has no effect)",
                "dataset" if section == "datasets" else "pretrained model",
                entry["name"],
            )
        listed = [*self._assets[section], entry]
        self._native.summary({section: listed})  # the whole list: the summary merges top-level keys
        self._assets[section] = listed

    def finish(self, status: str = "finished") -> None:
        """End the run: ``finished`` (default), ``failed`` or ``interrupted``."""
        self._native.finish(status)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._native.__exit__(kind, exc, tb)

    def __repr__(self) -> str:
        return f"<runicorn.Run {self.path}/{self.id} {self.status}>"


class NoOpRun(Run):
    """What ``init`` returns while tracking is disabled: every method does nothing."""


class _RunLogHandler(logging.Handler):
    """Formats records and appends them to a run's log with ``log_text``."""

    DEFAULT_FORMAT = "%(asctime)s | %(levelname)s | %(name)s | %(message)s"
    DEFAULT_DATEFMT = "%H:%M:%S"

    def __init__(self, run: Run, level: int, fmt: str | None) -> None:
        super().__init__(level)
        self._run = run
        # runlane may log a warning while storing a line; if this handler hears it, it must not recurse.
        self._inside = threading.local()
        self.setFormatter(
            logging.Formatter(fmt) if fmt else logging.Formatter(self.DEFAULT_FORMAT, self.DEFAULT_DATEFMT)
        )

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._inside, "active", False):
            return
        self._inside.active = True
        try:
            self._run.log_text(self.format(record))
        except runlane.RunClosedError:
            pass  # the run has ended: upstream drops records when there is no run to write to
        except Exception:
            self.handleError(record)
        finally:
            self._inside.active = False


def _name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    return name


def _locate(where: object, argument: str) -> tuple[Any, Path | None]:
    """What to record as the location, and the local path to fingerprint (None for a URI or a dict)."""
    if isinstance(where, Mapping):
        return dict(where), None
    if not isinstance(where, (str, os.PathLike)):
        raise TypeError(f"{argument} must be a path, a URI string or a dict, got {type(where).__name__}")
    path = Path(os.fspath(where)).expanduser()
    if not path.exists():  # a URI (s3://..., hf://...) or a path on another machine: recorded as given
        return os.fspath(where), None
    return str(path), path


def _fingerprint(path: Path | None) -> dict[str, Any]:
    """Upstream's stat fingerprint, the total size and a content hash (None over ``HASH_LIMIT_BYTES``)."""
    if path is None:
        return {"size_bytes": None, "sha256": None, "fingerprint": None}
    mtime = path.stat().st_mtime
    if path.is_file():
        size = path.stat().st_size
        digest = _file_sha256(path) if size <= HASH_LIMIT_BYTES else None
        return {"size_bytes": size, "sha256": digest, "fingerprint": {"size_bytes": size, "mtime": mtime}}
    files = sorted((file.relative_to(path).as_posix(), file) for file in path.rglob("*") if file.is_file())
    sizes = [file.stat().st_size for _, file in files]
    total = sum(sizes)
    digest = None
    if total <= HASH_LIMIT_BYTES:
        listing = hashlib.sha256()
        for (relative, file), size in zip(files, sizes, strict=True):
            listing.update(f"{relative}\0{size}\0{_file_sha256(file)}\n".encode())
        digest = listing.hexdigest()
    fingerprint = {"mtime": mtime, "file_count": len(files), "total_size_bytes": total}
    return {"size_bytes": total, "sha256": digest, "fingerprint": fingerprint}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def init(
    path: str | None = None,
    storage: str | None = None,
    run_id: str | None = None,
    alias: str | None = None,
    capture_env: bool = False,
    snapshot_code: bool = False,
    workspace_root: str | None = None,
    snapshot_format: str = "zip",
    force_snapshot: bool = False,
    capture_console: bool = False,
    tqdm_mode: str = "smart",
) -> Run | NoOpRun:
    """Create a run under ``path`` in ``storage`` (default: runlane's store directory)."""
    global _active
    native = runlane.init(
        project=_project(path),
        uid=run_id,
        alias=alias,
        dir=storage,
        capture_env=capture_env,
        snapshot_code=snapshot_code,
        workspace_root=workspace_root,
        snapshot_format=snapshot_format,
        force_snapshot=force_snapshot,
        capture_console=capture_console,
        tqdm_mode=tqdm_mode,
        mode=None if is_enabled() else "disabled",
    )
    if isinstance(native, runlane.NoOpRun):
        _active = None
        return NoOpRun(native)
    _active = Run(native)
    return _active
