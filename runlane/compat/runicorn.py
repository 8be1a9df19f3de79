"""Runicorn's run lifecycle on runlane: ``import runlane.compat.runicorn as rn``.

``init`` (paths, storage, alias, environment capture, code snapshot, console capture), ``log`` with
stages, ``set_primary_metric``, ``log_text``, ``summary``, ``log_config``, ``log_image``, ``finish`` and the
``with`` block behave as Runicorn documents them, with Runicorn's vocabulary on the outside:

- steps count from 1: the first ``log()`` without ``step`` is step 1, then 2, 3, ...;
- statuses are ``running``, ``finished``, ``failed`` and ``interrupted`` (runlane's ``killed``);
- ``path`` is the project: ``None`` -> ``"default"``, ``"/"`` -> the root project (named ``root``),
  backslashes become ``/``, invalid characters and traversal are refused;
- ``storage`` is the store directory; ``run_id`` names a new run, and an id already in use is an error;
- ``set_enabled(False)`` makes ``init`` return a ``NoOpRun``.

Where runlane decides differently: SIGTERM and Ctrl-C leave a run ``interrupted`` rather than ``failed``,
and a run whose process died is marked ``failed`` by the next process that opens the store.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import runlane

__all__ = ["NoOpRun", "Run", "init", "set_enabled"]

ROOT_PROJECT = "root"
DEFAULT_PATH = "default"

_STATUS_NAMES = {"killed": "interrupted"}


def set_enabled(enabled: bool) -> None:
    """Switch tracking on or off; while off, ``init`` returns a ``NoOpRun``."""
    runlane.set_enabled(enabled)


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

    def log_image(self, key: str, image: Any, caption: str | None = None, step: int | None = None) -> None:
        """Record an image (PIL, numpy or torch) at ``step`` (default: the latest logged step)."""
        self._native.log_image(key, image, caption=caption, step=step)

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
    )
    if isinstance(native, runlane.NoOpRun):
        return NoOpRun(native)
    return Run(native)
