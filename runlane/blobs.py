"""Content-addressed files in the store directory: images, code snapshots and environment captures.

A blob is named by the sha256 of its bytes plus an extension (``<sha256>.png``) and lives at
``<store>/blobs/<first two hex digits>/<name>``. Identical content is stored once, whichever run or
process wrote it. Records in the journal and rows in the database carry only the name; the path is
rebuilt here from a name that must match ``<64 hex digits>.<known extension>``, so nothing read from a
journal or a database can point outside the store directory.

Writes are atomic (a temporary file in the store, then a rename): a reader sees a whole blob or none.
Like the journal, blobs are not fsynced: they survive the death of the process, not a power cut.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

BLOB_DIR = "blobs"
EXTENSIONS = ("json", "png", "zip")
_NAME = re.compile(r"[0-9a-f]{64}\.(?:json|png|zip)")
_TEMP_DIR = ".tmp"  # inside BLOB_DIR: same file system as the final place, so the rename is atomic


def blob_name(digest: str, ext: str) -> str:
    """The name of a blob with this sha256 hex digest and extension."""
    name = f"{digest}.{ext}"
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a blob name: {name!r} (expected a sha256 hex digest and one of {EXTENSIONS})")
    return name


def blob_path(store_dir: Path, name: str) -> Path:
    """Where the blob ``name`` lives in ``store_dir``; ``ValueError`` for anything that is not a blob name."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"not a blob name: {name!r}")
    return store_dir / BLOB_DIR / name[:2] / name


def put_bytes(store_dir: Path, data: bytes, ext: str) -> str:
    """Store ``data`` (unless a blob with the same content exists) and return its name."""
    import hashlib  # here, not at the top: loading OpenSSL costs milliseconds of every process's first init()

    name = blob_name(hashlib.sha256(data).hexdigest(), ext)
    path = blob_path(store_dir, name)
    if path.exists():
        return name
    fd, temp = _temp(store_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        _place(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return name


def open_temp(store_dir: Path) -> tuple[BinaryIO, Path]:
    """A new temporary file in the store to build a blob in (e.g. a zip); hand it to ``put_file``."""
    fd, temp = _temp(store_dir)
    return os.fdopen(fd, "w+b"), temp


def put_file(store_dir: Path, temp: Path, ext: str) -> str:
    """Turn a finished temporary file from ``open_temp`` into a blob (or drop it if the blob exists)."""
    import hashlib

    try:
        digest = hashlib.sha256()
        with open(temp, "rb") as source:
            while chunk := source.read(1024 * 1024):
                digest.update(chunk)
        name = blob_name(digest.hexdigest(), ext)
        path = blob_path(store_dir, name)
        if path.exists():
            temp.unlink()
        else:
            _place(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return name


def _temp(store_dir: Path) -> tuple[int, Path]:
    temp_dir = store_dir / BLOB_DIR / _TEMP_DIR
    temp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=temp_dir, suffix=".part")
    return fd, Path(name)


def _place(temp: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two processes placing the same content race harmlessly: the bytes are identical.
    os.replace(temp, path)
