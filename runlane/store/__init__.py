"""Stores: the only code that touches a database. Backends are chosen by URL scheme and imported lazily.

Import rule (tests/test_package.py): ``store`` may import the foundation modules (``entities``, ``errors``,
``naming``, ``statuses``, ``wire``, ``blobs``, ``journal``, ``lineage``, ``liveness``, ``merge``, ``steps``,
``downsample``, ``diagnostics``, ...); never ``runlane.sdk``, ``drain``, ``recovery``, ``api`` or ``cli``.
A SQLite user never imports a PostgreSQL or HTTP driver: ``SCHEMES`` names each backend's opener as
``"module:function"``, imported on first use.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from .base import Store


class Opener(Protocol):
    """Opens the store at a URL of its scheme (``create``/``allow_read_only`` as in ``open_store``; an
    opener that takes ``api_key`` gets it when one is given)."""

    def __call__(self, url: str, *, create: bool, allow_read_only: bool) -> Store: ...


def _open_sqlite(url: str, *, create: bool, allow_read_only: bool) -> Store:
    from .sqlite import SQLiteStore

    _, _, path = url.partition("://")
    if not path:
        raise ValueError(f"{url!r}: a SQLite store is sqlite:///path/to/its/directory")
    return SQLiteStore(Path(path), create=create, allow_read_only=allow_read_only)


#: URL scheme -> the opener of its stores, as a callable or ``"module:function"`` (imported when first used).
#: A backend adds its scheme here (``register_scheme``); a location without ``://`` is a SQLite directory.
SCHEMES: dict[str, Opener | str] = {
    "sqlite": _open_sqlite,
    "http": "runlane.store.http:open_http",
    "https": "runlane.store.http:open_http",
    "postgresql": "runlane.store.postgres:PostgresStore",
    "postgres": "runlane.store.postgres:PostgresStore",  # libpq accepts both spellings
}


def register_scheme(scheme: str, opener: Opener | str) -> None:
    """Make ``open_store`` open ``scheme://...`` locations with ``opener``."""
    SCHEMES[scheme.lower()] = opener


def open_store(
    location: str | os.PathLike[str],
    *,
    create: bool = True,
    allow_read_only: bool = False,
    api_key: str | None = None,
) -> Store:
    """Open the store at ``location``: a directory (embedded SQLite), ``sqlite:///path``, or a URL of
    another registered scheme (``SCHEMES``): ``http(s)://host:port`` is a runlane server, sent ``api_key``
    (else ``$RUNLANE_API_KEY``) as its Bearer token.

    A store this process may not write to is opened read-only with ``allow_read_only`` (readers), else
    refused with ``StoreError`` (writers).
    """
    text = os.fspath(location)
    if "://" not in text:
        return _open_sqlite(f"sqlite://{text}", create=create, allow_read_only=allow_read_only)
    scheme = text.partition("://")[0].lower()
    entry = SCHEMES.get(scheme)
    if entry is None:
        known = ", ".join(f"{name}://" for name in sorted(SCHEMES))
        raise ValueError(
            f"no store backend for {scheme}:// locations ({text!r}) in this installation;"
            f" use a directory or one of {known}"
        )
    opener: Callable[..., Store]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        opener = cast("Callable[..., Store]", getattr(importlib.import_module(module), attr))
    else:
        opener = cast("Callable[..., Store]", entry)  # an HTTP opener also takes api_key
    if api_key is not None:
        if scheme not in ("http", "https"):
            raise ValueError(f"api_key is for a runlane server (http(s)://...), not for {text!r}")
        return opener(text, create=create, allow_read_only=allow_read_only, api_key=api_key)
    return opener(text, create=create, allow_read_only=allow_read_only)
