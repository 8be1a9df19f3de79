"""Stores: the only code that touches a database. Backends are chosen by URL and imported lazily.

Import rule: ``store`` may import ``runlane.entities``, ``errors``, ``naming``, ``statuses``, ``wire``, ``blobs``,
``journal``; never ``runlane.sdk``. A SQLite user never imports a PostgreSQL or HTTP driver.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Store


def open_store(
    location: str | os.PathLike[str],
    *,
    create: bool = True,
    allow_read_only: bool = False,
    api_key: str | None = None,
) -> Store:
    """Open the store at ``location``: a directory (embedded SQLite), ``sqlite:///path``, or a runlane
    server's ``http(s)://host:port`` (``api_key`` is sent to it; a server's store always exists).

    A store this process may not write to is opened read-only with ``allow_read_only`` (readers), else
    refused with ``StoreError`` (writers).
    """
    text = os.fspath(location)
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme in ("http", "https"):
            from .http import HttpStore

            return HttpStore(text, api_key=api_key)
        if scheme != "sqlite":
            raise ValueError(
                f"unsupported store URL scheme {scheme!r} in {text!r}; use a directory, sqlite:///dir or http(s)://"
            )
        text = rest
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(text), create=create, allow_read_only=allow_read_only)
