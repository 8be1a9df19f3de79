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
DrainKind = Literal["process", "thread"]
DRAIN_KINDS: tuple[DrainKind, ...] = ("process", "thread")

DEFAULT_DIR = ".runlane"
DEFAULT_FINISH_TIMEOUT_S = 120.0
ENV_DIR = "RUNLANE_DIR"
ENV_MODE = "RUNLANE_MODE"
ENV_DRAIN = "RUNLANE_DRAIN"
ENV_FINISH_TIMEOUT = "RUNLANE_FINISH_TIMEOUT"
ENV_URL = "RUNLANE_URL"  # a runlane server (http(s)://host:port)
ENV_API_KEY = "RUNLANE_API_KEY"  # sent to it as a Bearer token


class Settings(NamedTuple):
    """Where the store lives, whether runs are recorded at all, and how they reach the store.

    - ``dir``: the embedded store's directory (``dir=``/``storage=``, ``RUNLANE_DIR``; a directory or
      ``sqlite:///path``).
    - ``drain``: ``process`` (ingest in a drain process, the default) or ``thread`` (for interpreters that
      cannot start one); ``RUNLANE_DRAIN``.
    - ``finish_timeout_s``: how long ``finish()`` waits for the store by default; ``RUNLANE_FINISH_TIMEOUT``.
    """

    dir: Path
    mode: Mode
    drain: DrainKind = "process"
    finish_timeout_s: float = DEFAULT_FINISH_TIMEOUT_S

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
        source_dir = "dir" if dir is not None and dir != "" else ENV_DIR
        resolved_dir = Path(_store_path(os.fspath(raw_dir), source_dir)).expanduser()
        return cls(
            dir=resolved_dir.absolute(),
            mode=normalized,
            drain=_drain_kind(os.environ.get(ENV_DRAIN) or "process"),
            finish_timeout_s=_positive_seconds(os.environ.get(ENV_FINISH_TIMEOUT), ENV_FINISH_TIMEOUT),
        )


def _store_path(location: str, source: str) -> str:
    """The directory of an embedded store given as a directory or ``sqlite:///path``."""
    if "://" not in location:
        return location
    scheme, _, rest = location.partition("://")
    if scheme.lower() != "sqlite" or not rest:
        raise ValueError(
            f"{source}={location!r}: a store is a directory or sqlite:///path to one "
            "(PostgreSQL and tracking-server URLs are not supported by this version)"
        )
    return rest


def _drain_kind(raw: str) -> DrainKind:
    value = raw.strip().lower()
    for kind in DRAIN_KINDS:
        if value == kind:
            return kind
    raise ValueError(f"{ENV_DRAIN}={raw!r} is not a drain kind; use one of {', '.join(DRAIN_KINDS)}")


def _positive_seconds(raw: str | None, name: str) -> float:
    if raw is None or raw.strip() == "":
        return DEFAULT_FINISH_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r} must be a positive number of seconds")
    return value
