"""Stores: the only code that touches a database. Backends are chosen by URL and imported lazily.

Import rule: ``store`` may import ``runlane.entities``, ``errors``, ``naming``, ``statuses``, ``wire``, ``blobs``,
``journal``; never ``runlane.sdk``. A SQLite user never imports a PostgreSQL or HTTP driver: each backend's
module (and its driver) is imported only when a location of its kind is opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Store


def _sqlite(rest: str, create: bool, allow_read_only: bool) -> Store:
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(rest), create=create, allow_read_only=allow_read_only)


def _postgresql(url: str, create: bool, allow_read_only: bool) -> Store:
    from .postgres import PostgresStore

    return PostgresStore(url, create=create, allow_read_only=allow_read_only)


#: URL scheme -> how to open a store of that kind. SQLite's opener gets the path after ``sqlite://``; the
#: others get the whole URL.
OPENERS: dict[str, Callable[[str, bool, bool], Store]] = {"sqlite": _sqlite, "postgresql": _postgresql}
_PATH_SCHEMES = {"sqlite"}
_ALIASES = {"postgres": "postgresql"}


def open_store(location: str | os.PathLike[str], *, create: bool = True, allow_read_only: bool = False) -> Store:
    """Open the store at ``location``: a directory (embedded SQLite), ``sqlite:///path`` or
    ``postgresql://user@host:port/dbname``.

    A store this process may not write to is opened read-only with ``allow_read_only`` (readers), else
    refused with ``StoreError`` (writers).
    """
    text = os.fspath(location)
    if "://" not in text:
        return _sqlite(text, create, allow_read_only)
    scheme, _, rest = text.partition("://")
    scheme = _ALIASES.get(scheme, scheme)
    opener = OPENERS.get(scheme)
    if opener is None:
        raise ValueError(
            f"unsupported store URL scheme {scheme!r} in {text!r}; use a directory, sqlite:///dir or"
            " postgresql://user@host:port/dbname"
        )
    if scheme in _PATH_SCHEMES:
        return opener(rest, create, allow_read_only)
    return opener(f"{scheme}://{rest}", create, allow_read_only)
