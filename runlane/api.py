"""The read API used by scripts, the CLI and (later) the server: ``runlane.Api(dir=None)``.

Opening it replays journals that dead processes left behind, so a crashed run's last points and its
``failed`` status are visible to the first reader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .config import Settings
from .entities import History, LogLine, ProjectInfo, RunInfo
from .naming import parse_run_ref
from .recovery import recover
from .store import open_store
from .store.base import Store


class Api:
    """Read access to a store: projects, runs, metric histories and logs."""

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
        return self._store.history(self._store.resolve(parse_run_ref(ref)), key)

    def logs(self, ref: int | str) -> list[LogLine]:
        """The run's text log lines, in the order they were written."""
        return self._store.logs(self._store.resolve(parse_run_ref(ref)))
