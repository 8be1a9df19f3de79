"""Blobs of a remote run wait in its spool, next to its journal, until the batch naming them is delivered.

A run on a server writes its images, code snapshots and environment captures into ``<spool>/blobs/``
(``runlane.blobs.LocalBlobs``, so ``log_image()`` never waits for the network and works while the server is
down); whoever delivers a batch of its journal puts the blobs that batch names first (the server refuses a
record naming a blob it lacks) and deletes the local copies once the batch is committed. Blob names are
content hashes and the server never deletes one, so a copy deleted after one batch that another record still
names is already on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import journal
from .blobs import blob_path
from .store.base import Store

_IMAGE_BLOB = journal.fields(journal.Image, "blob")
_FILE_BLOB = journal.fields(journal.File, "blob")


def named(records: Sequence[Sequence[Any]]) -> list[str]:
    """The blob names records refer to, in order, once each."""
    names: dict[str, None] = {}
    for record in records:
        kind = record[0]
        if kind == journal.IMAGE:
            names[_IMAGE_BLOB(record)] = None
        elif kind == journal.FILE:
            names[_FILE_BLOB(record)] = None
    return list(names)


def deliver(store: Store, records: Sequence[Sequence[Any]], spool_dir: Path) -> list[Path]:
    """Put into ``store`` the blobs ``records`` name that wait in ``spool_dir``; return their local paths
    (``forget`` them once the batch is committed). Nothing to do for a journal in an embedded store."""
    sent = []
    for name in named(records):
        try:
            path = blob_path(spool_dir, name)
            data = path.read_bytes()
        except (ValueError, FileNotFoundError):
            continue  # delivered already (or not a blob name: the store refuses the record and says why)
        store.put_blob(data, name.rpartition(".")[2])
        sent.append(path)
    return sent


def forget(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
