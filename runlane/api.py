"""The read API used by scripts, the CLI and (later) the server: ``runlane.Api(dir=None)``.

Opening it replays journals that dead processes left behind, so a crashed run's last points and its
``failed`` status are visible to the first reader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import wire
from .config import Settings
from .entities import History, ImageInfo, LogLine, ProjectInfo, RunInfo, SystemPoint
from .errors import StoreError
from .naming import parse_run_ref
from .recovery import recover
from .store import open_store
from .store.base import Store


class Api:
    """Read access to a store: projects, runs, metric histories, logs, system metrics, images and files."""

    def __init__(self, dir: str | os.PathLike[str] | None = None) -> None:
        self.dir: Path = Settings.resolve(dir).dir
        self._store: Store = open_store(self.dir, create=False)
        recover(self._store, self.dir)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def projects(self) -> list[ProjectInfo]:
        """Every project with its display key and number of runs."""
        return self._store.projects()

    def runs(
        self,
        project: str | None = None,
        status: str | Iterable[str] | None = None,
        tags: str | Iterable[str] | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first; filter by project, by status (one or several) and by tags (all must match)."""
        statuses = [status] if isinstance(status, str) else list(status) if status is not None else None
        tag_list = [tags] if isinstance(tags, str) else list(tags) if tags is not None else None
        return self._store.runs(project=project, statuses=statuses, tags=tag_list)

    def run(self, ref: int | str) -> RunInfo:
        """One run by numeric id, display id (``"MMP-42"``) or uid."""
        return self._store.run(parse_run_ref(ref))

    def history(self, ref: int | str, key: str) -> History:
        """Every point of metric ``key`` of a run, in step order."""
        return self._store.history(self._resolve(ref), key)

    def logs(self, ref: int | str) -> list[LogLine]:
        """The run's text log lines, in the order they were written."""
        return self._store.logs(self._resolve(ref))

    def system_metrics(self, ref: int | str, key: str | None = None) -> dict[str, list[SystemPoint]]:
        """System metrics of a run: for each key (``sys/cpu_percent``, ``sys/gpu0/util_percent``, ...) its
        ``SystemPoint(time, value)`` samples in time order. With ``key``, only that key (an empty dict if
        it was never sampled)."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a string like 'sys/cpu_percent', got {type(key).__name__}")
        return self._store.system_metrics(self._resolve(ref), key)

    def images(self, ref: int | str, key: str | None = None) -> list[ImageInfo]:
        """Images logged with ``log_image()`` (only those of ``key`` if given), in step order; each item's
        ``path`` is a PNG file in the store: read it, do not change it (identical images share one file)."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a string, got {type(key).__name__}")
        return self._store.images(self._resolve(ref), key)

    def environment(self, ref: int | str) -> dict[str, Any] | None:
        """What ``init(capture_env=True)`` recorded (Python, platform, host, GPUs, packages, git, command
        line, environment variables with secrets redacted), or None if the run has no capture."""
        found = self._store.run_file(self._resolve(ref), "environment")
        if found is None:
            return None
        value = wire.loads(found.path.read_bytes())
        if not isinstance(value, dict):
            raise StoreError(f"the environment file {found.path} does not hold a JSON object")
        return value

    def code_snapshot(self, ref: int | str) -> Path | None:
        """The zip that ``init(snapshot_code=True)`` recorded (read it, do not change it: runs with
        identical code share one file), or None if the run has no snapshot."""
        found = self._store.run_file(self._resolve(ref), "code")
        return None if found is None else found.path

    def _resolve(self, ref: int | str) -> int:
        return self._store.resolve(parse_run_ref(ref))
