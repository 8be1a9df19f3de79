"""Pluto's run lifecycle on runlane: ``import runlane.compat.pluto as pluto``.

``init``, ``run.log``, ``finish`` vs ``close``, resume by numeric or display id, and forks with lineage
resolution and config/tag inheritance work as Pluto documents them. Statuses use Pluto's names:

=============  ==========
runlane        Pluto
=============  ==========
``running``    RUNNING
``finished``   COMPLETED
``failed``     FAILED
``killed``     TERMINATED
``scheduled``  QUEUED
=============  ==========

Runs are stored in runlane's store (``dir=``, else ``$RUNLANE_DIR``, else ``./.runlane``), not on a
Pluto server. Where runlane decides differently from Pluto: a script killed by SIGTERM or Ctrl-C leaves
its run TERMINATED rather than FAILED, and a run whose process was killed outright is marked FAILED by
the next process that opens the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import runlane

__all__ = ["Run", "Status", "init"]


class Status:
    """Pluto's names for run statuses."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    QUEUED = "QUEUED"

    FROM_RUNLANE: Mapping[str, str] = {
        "running": RUNNING,
        "finished": COMPLETED,
        "failed": FAILED,
        "killed": TERMINATED,
        "scheduled": QUEUED,
    }


class Run:
    """A Pluto run: log metrics, edit config and tags, then ``finish()`` or ``close()``."""

    def __init__(self, native: runlane.Run | runlane.NoOpRun) -> None:
        self._native = native

    @property
    def id(self) -> int | None:
        """Numeric run id."""
        return self._native.id

    @property
    def display_id(self) -> str | None:
        """Sequential display id like ``MMP-42``."""
        return self._native.display_id

    @property
    def name(self) -> str | None:
        return self._native.name

    @property
    def project(self) -> str | None:
        return self._native.project

    @property
    def config(self) -> dict[str, Any]:
        return self._native.config

    @property
    def tags(self) -> list[str]:
        return list(self._native.tags)

    @property
    def status(self) -> str:
        """RUNNING until this process ends the run; then COMPLETED, FAILED or TERMINATED."""
        return Status.FROM_RUNLANE.get(self._native.status, self._native.status.upper())

    @property
    def fork_run_id(self) -> int | None:
        """The resolved parent of a fork (the ancestor that owns ``fork_step``), or None."""
        return self._native.fork_run_id

    @property
    def fork_step(self) -> int | None:
        return self._native.fork_step

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Record metrics; without ``step`` the run's counter is used (0, 1, 2, ...)."""
        self._native.log(data, step=step)

    def update_config(self, config: Mapping[str, Any]) -> None:
        """Deep-merge edits into the config."""
        self._native.update_config(config)

    def add_tags(self, tags: str | Iterable[str]) -> None:
        self._native.add_tags(tags)

    def remove_tags(self, tags: str | Iterable[str]) -> None:
        self._native.remove_tags(tags)

    def finish(self) -> None:
        """Drain, release local resources and mark the run COMPLETED."""
        self._native.finish()

    def close(self) -> None:
        """Release local resources without changing the run's status; unregisters the exit hook."""
        self._native.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._native.__exit__(kind, exc, tb)

    def __repr__(self) -> str:
        return f"<pluto.Run {self.display_id} {self.status}>"


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    run_id: int | str | None = None,
    resume: bool = False,
    fork_run_id: int | str | None = None,
    fork_step: int | None = None,
    inherit_config: bool = True,
    inherit_tags: bool = False,
    *,
    dir: str | os.PathLike[str] | None = None,
) -> Run:
    """Start a run, resume one (``run_id`` with ``resume=True``) or fork one (``fork_run_id`` with
    ``fork_step``). The project is created on first use."""
    return Run(
        runlane.init(
            project=project,
            name=name,
            config=config,
            tags=tags,
            run_id=run_id,
            resume=resume,
            fork_run_id=fork_run_id,
            fork_step=fork_step,
            inherit_config=inherit_config,
            inherit_tags=inherit_tags,
            dir=dir,
        )
    )
