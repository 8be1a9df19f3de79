"""Settings: resolved once from arguments > ``RUNLANE_*`` environment > defaults, then passed down.

Nothing else in runlane reads the environment for these values, so a test or a script can point a
run at a store by passing ``dir=`` without patching module constants.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, NamedTuple

Mode = Literal["online", "offline", "disabled"]
MODES: tuple[Mode, ...] = ("online", "offline", "disabled")

DEFAULT_DIR = ".runlane"
ENV_DIR = "RUNLANE_DIR"
ENV_MODE = "RUNLANE_MODE"


class Settings(NamedTuple):
    """Where the store lives and whether runs are recorded at all."""

    dir: Path
    mode: Mode

    @classmethod
    def resolve(cls, dir: str | os.PathLike[str] | None = None, mode: str | None = None) -> Settings:
        """Resolve settings; an argument wins over the environment, which wins over the default.

        An empty ``dir`` is no ``dir``, as an empty ``RUNLANE_DIR`` is no ``RUNLANE_DIR``: ``Path("")`` is
        the working directory, and a store spread over a project's own files is never what was meant.
        """
        raw_dir = (os.environ.get(ENV_DIR) or DEFAULT_DIR) if dir is None or dir == "" else dir
        raw_mode = mode if mode is not None else os.environ.get(ENV_MODE) or "online"
        normalized = raw_mode.strip().lower()
        if normalized not in MODES:
            source = "mode" if mode is not None else ENV_MODE
            raise ValueError(f"{source}={raw_mode!r} is not a runlane mode; use one of {', '.join(MODES)}")
        resolved_dir = Path(os.fspath(raw_dir)).expanduser()
        return cls(dir=resolved_dir.absolute(), mode=normalized)
