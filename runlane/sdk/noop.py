"""The run ``init()`` returns when tracking is disabled: same shape as ``Run``, every method does nothing.

Lets shared training code keep its ``run.log(...)`` calls when tracking is switched off
(``runlane.set_enabled(False)`` or ``RUNLANE_MODE=disabled``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any


class NoOpRun:
    """A run that records nothing."""

    id = None
    display_id = None
    uid = None
    alias = None
    parent_run_id = None
    fork_run_id = None
    fork_step = None
    dir = None
    info = None
    status = "disabled"

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        self.project = project
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.tags: tuple[str, ...] = tuple(tags or ())
        self.step = 0

    def __repr__(self) -> str:
        return "<runlane.NoOpRun (tracking disabled)>"

    def log(self, data: Mapping[str, Any] | None = None, step: int | None = None, stage: str | None = None,
            **metrics: Any) -> None:  # fmt: skip
        return None

    def log_text(self, text: str) -> None:
        return None

    def log_image(self, key: str, image: Any, caption: str | None = None, step: int | None = None) -> None:
        return None

    def summary(self, update: Mapping[str, Any]) -> None:
        return None

    def update_config(self, update: Mapping[str, Any]) -> None:
        return None

    def add_tags(self, *tags: str | Iterable[str]) -> None:
        return None

    def remove_tags(self, *tags: str | Iterable[str]) -> None:
        return None

    def set_primary_metric(self, metric_name: str, mode: str = "max") -> None:
        return None

    def finish(self, status: str | None = None) -> None:
        return None

    def flush(self, *, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> NoOpRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None
