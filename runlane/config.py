"""Settings: resolved once from arguments > ``RUNLANE_*`` environment > defaults, then passed down.

Nothing else in runlane reads the environment for these values (a drain process is handed them), so a
test or a script points a run at a store by passing ``dir=`` and shortens an interval by setting its
variable, without patching module constants.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple

Mode = Literal["online", "offline", "disabled"]
MODES: tuple[Mode, ...] = ("online", "offline", "disabled")
DrainKind = Literal["process", "thread"]
DRAIN_KINDS: tuple[DrainKind, ...] = ("process", "thread")

DEFAULT_DIR = ".runlane"
ENV_DIR = "RUNLANE_DIR"
ENV_MODE = "RUNLANE_MODE"
ENV_DRAIN = "RUNLANE_DRAIN"
ENV_SPOOL = "RUNLANE_SPOOL"
ENV_FINISH_TIMEOUT = "RUNLANE_FINISH_TIMEOUT"
ENV_URL = "RUNLANE_URL"  # a runlane server (http(s)://host:port)
ENV_API_KEY = "RUNLANE_API_KEY"  # sent to it as a Bearer token

#: Schemes of store locations that name a store elsewhere (resolved by ``runlane.store.open_store``).
URL_SCHEMES = ("postgresql", "postgres", "http", "https")
#: An embedded store's own spool, inside its directory: a crashed run is replayed by its next opener.
STORE_JOURNALS = "journals"


class Tunables(NamedTuple):
    """Intervals and timeouts, each with its ``RUNLANE_*`` variable (seconds, positive)."""

    poll_s: float = 0.05  # RUNLANE_POLL_INTERVAL: how long an idle drain waits before looking again
    heartbeat_s: float = 15.0  # RUNLANE_HEARTBEAT_INTERVAL: how often a drain says its writers are alive
    retry_max_s: float = 5.0  # RUNLANE_RETRY_MAX: back-off ceiling for transient store errors
    # RUNLANE_REMOTE_TIMEOUT: a writer that cannot be probed by pid (another host, another PID namespace)
    # is presumed dead once its heartbeat is this old.
    remote_timeout_s: float = 300.0
    finish_timeout_s: float = 120.0  # RUNLANE_FINISH_TIMEOUT: how long finish() waits for the store

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Tunables:
        defaults = cls()
        values = {
            field: _positive_seconds(env.get(name), name, getattr(defaults, field))
            for field, name in TUNABLE_ENV.items()
        }
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The variables that make ``from_env`` give these values back (handed to a drain process)."""
        return {name: repr(getattr(self, field)) for field, name in TUNABLE_ENV.items()}


TUNABLE_ENV = {
    "poll_s": "RUNLANE_POLL_INTERVAL",
    "heartbeat_s": "RUNLANE_HEARTBEAT_INTERVAL",
    "retry_max_s": "RUNLANE_RETRY_MAX",
    "remote_timeout_s": "RUNLANE_REMOTE_TIMEOUT",
    "finish_timeout_s": ENV_FINISH_TIMEOUT,
}


class Settings(NamedTuple):
    """Where the store is, where this process's journals go, whether runs are recorded, and how.

    - ``store``: the store's location, the key of everything per store in a process: an embedded store's
      absolute directory (given as a directory or ``sqlite:///path``; ``dir=``/``storage=``,
      ``RUNLANE_DIR``), or a URL (``postgresql://...``, ``http(s)://...``) that ``open_store`` resolves.
    - ``spool``: the directory of this process's journals for that store (see ``spool_dir``).
    - ``drain``: ``process`` (ingest in a drain process, the default) or ``thread`` (for interpreters that
      cannot start one); ``RUNLANE_DRAIN``.
    - ``tunables``: intervals and timeouts (``Tunables``).
    - ``api_key``: sent to a runlane server as a Bearer token (``api_key=``, ``RUNLANE_API_KEY``).

    A tracking server is named by ``url=`` or ``RUNLANE_URL`` (which win over ``RUNLANE_DIR``; passing
    both ``dir`` and ``url`` is an error), except in ``offline`` mode: runs then go to the embedded store
    only (``dir``, ``RUNLANE_DIR``), for a later ``runlane sync --url``.
    """

    store: str
    spool: Path
    mode: Mode
    drain: DrainKind = "process"
    tunables: Tunables = Tunables()
    api_key: str | None = None

    @property
    def dir(self) -> Path | None:
        """The embedded store's directory; None for a store named by a URL."""
        return embedded_dir(self.store)

    @property
    def finish_timeout_s(self) -> float:
        return self.tunables.finish_timeout_s

    @classmethod
    def resolve(
        cls,
        dir: str | os.PathLike[str] | None = None,
        mode: str | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve settings; an argument wins over the environment, which wins over the default.

        An empty ``dir`` is no ``dir``, as an empty ``RUNLANE_DIR`` is no ``RUNLANE_DIR``: ``Path("")`` is
        the working directory, and a store spread over a project's own files is never what was meant.
        """
        environ = os.environ if env is None else env
        given = dir is not None and os.fspath(dir) != ""
        raw_location = os.fspath(dir) if dir is not None and given else environ.get(ENV_DIR) or DEFAULT_DIR
        raw_mode = mode if mode is not None else environ.get(ENV_MODE) or "online"
        normalized = raw_mode.strip().lower()
        if normalized not in MODES:
            source = "mode" if mode is not None else ENV_MODE
            raise ValueError(f"{source}={raw_mode!r} is not a runlane mode; use one of {', '.join(MODES)}")
        store = store_location(raw_location, "dir" if given else ENV_DIR)
        server = url or None
        if server is not None and given:
            raise ValueError("pass dir= (the embedded store) or url= (a runlane server), not both")
        if server is None and not given:
            server = environ.get(ENV_URL) or None
        if server is not None and normalized != "offline":
            store = server_location(server, "url" if url else ENV_URL)
        if normalized == "offline" and embedded_dir(store) is None:
            raise ValueError(
                f"offline mode records runs in an embedded store, and {'dir' if given else ENV_DIR} names {store};"
                " give a directory (runlane sync --url copies its runs to a server later)"
            )
        return cls(
            store=store,
            spool=spool_dir(store, environ),
            mode=normalized,
            drain=_drain_kind(environ.get(ENV_DRAIN) or "process"),
            tunables=Tunables.from_env(environ),
            api_key=api_key or environ.get(ENV_API_KEY) or None,
        )


def store_location(location: str, source: str = "dir") -> str:
    """The canonical form of a store location: one store, one string (a registry key, a spool's name).

    A directory or ``sqlite:///path`` becomes the absolute directory; a URL of a scheme in
    ``URL_SCHEMES`` is kept (without a trailing ``/``). ``source`` names the argument in errors.
    """
    if "://" not in location:
        return str(Path(location).expanduser().absolute())
    scheme, _, rest = location.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite" and rest:
        return str(Path(rest).expanduser().absolute())
    if scheme in URL_SCHEMES and rest.strip("/"):
        return f"{scheme}://{rest.rstrip('/')}"
    raise ValueError(
        f"{source}={location!r}: a store is a directory, sqlite:///path to one, postgresql://... or http(s)://..."
    )


def server_location(url: str, source: str) -> str:
    """The canonical location of a runlane server's URL; ``ValueError`` naming ``source`` for anything else."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"{source}={url!r} is not a runlane server's URL; use http://host:port or https://...")
    return store_location(url, source)


def embedded_dir(location: str) -> Path | None:
    """The directory of an embedded store's canonical location; None for a URL."""
    return None if "://" in location else Path(location)


def spool_dir(location: str, env: Mapping[str, str] | None = None) -> Path:
    """Where this process's journals for the store at ``location`` live.

    With ``RUNLANE_SPOOL``: ``$RUNLANE_SPOOL/<short hash of the location>``, one spool per store. Without:
    an embedded store's own ``journals/`` directory (a crashed run's journal is replayed by whoever opens
    the store next), and for a URL ``$XDG_CACHE_HOME/runlane/spool/<hash>`` (else ``~/.cache/...``), where
    the next process on this machine finds and delivers what a dead one left.
    """
    environ = os.environ if env is None else env
    root = environ.get(ENV_SPOOL) or ""
    store_dir = embedded_dir(location)
    if not root and store_dir is not None:
        return store_dir / STORE_JOURNALS
    if not root:
        home = environ.get("HOME") or os.path.expanduser("~")
        cache = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
        root = os.path.join(cache, "runlane", "spool")
    import hashlib  # here: only a process with a spool outside its store pays for OpenSSL

    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    return Path(root).expanduser().absolute() / digest


def _drain_kind(raw: str) -> DrainKind:
    value = raw.strip().lower()
    for kind in DRAIN_KINDS:
        if value == kind:
            return kind
    raise ValueError(f"{ENV_DRAIN}={raw!r} is not a drain kind; use one of {', '.join(DRAIN_KINDS)}")


def _positive_seconds(raw: str | None, name: str, default: float) -> float:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name}={raw!r} must be a positive number of seconds")
    return value
