"""Content-addressed files: images, code snapshots and environment captures.

A blob is named by the sha256 of its bytes plus an extension (``<sha256>.png``). Identical content is
stored once, whichever run or process wrote it. Records in the journal, rows in a database and the
entities the read API returns carry only the name; a store turns a name into bytes
(``Store.open_blob``), so the same entities can come from a local store or a server.

Two sides, one rule each:

- **Writing, in the training process**: through a ``BlobSink``, which ``init()`` chooses once per run
  (``runlane.sdk.start.blob_sink``) and hands to the run and its capture threads. A blob is put before
  the record naming it is journaled, so a record never names a missing blob. For the embedded store the
  sink is ``LocalBlobs`` on the store directory; a remote store replaces it there (e.g. with one that
  writes into the spool and has the writer upload each blob before the record that names it).
- **Storing, in a store**: ``LocalBlobs`` keeps blobs at ``<dir>/blobs/<first two hex digits>/<name>``.
  The path is rebuilt from a name that must match ``<64 hex digits>.<known extension>``, so no string read
  from a journal, a database, a user or a request reaches outside the directory.

Writes are atomic (a temporary file beside the blobs, then a rename): a reader sees a whole blob or none,
and two writers of the same content race harmlessly. Like the journal, blobs are not fsynced: they
survive the death of the process, not a power cut.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from .errors import StoreError

BLOB_DIR = "blobs"
EXTENSIONS = ("json", "png", "zip")
_NAME = re.compile(r"[0-9a-f]{64}\.(?:json|png|zip)")
_TEMP_DIR = ".tmp"  # inside BLOB_DIR: same file system as the final place, so the rename is atomic
_READ_CHUNK = 1024 * 1024


def blob_name(digest: str, ext: str) -> str:
    """The name of a blob with this sha256 hex digest and extension."""
    name = f"{digest}.{ext}"
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a blob name: {name!r} (expected a sha256 hex digest and one of {EXTENSIONS})")
    return name


def check_blob_name(name: object) -> str:
    """``name`` if it is a blob name (``<sha256>.<ext>``), else ``ValueError``: nothing else reaches a path."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"not a blob name: {name!r} (expected a sha256 hex digest and one of {EXTENSIONS})")
    return name


def blob_path(store_dir: Path, name: str) -> Path:
    """Where the blob ``name`` lives in ``store_dir``; ``ValueError`` for anything that is not a blob name."""
    name = check_blob_name(name)
    return store_dir / BLOB_DIR / name[:2] / name


class BlobSink(Protocol):
    """Where a training process puts blobs: the one seam a remote store replaces on the SDK side."""

    def put_bytes(self, data: bytes, ext: str) -> str:
        """Store ``data`` as a blob (once per content) and return its name."""
        ...

    def put_written(self, write: Callable[[BinaryIO], None], ext: str) -> str:
        """Store what ``write`` writes into the binary file it is given (a blob too large to build in
        memory, like a code snapshot) and return its name. If ``write`` raises, nothing is stored."""
        ...


class LocalBlobs:
    """The blobs of a store directory: the embedded store's blob storage and its training processes' sink."""

    def __init__(self, store_dir: Path) -> None:
        self.dir = Path(store_dir)

    def path(self, name: str) -> Path:
        return blob_path(self.dir, name)

    def put_bytes(self, data: bytes, ext: str) -> str:
        import hashlib  # here, not at the top: loading OpenSSL costs milliseconds of every process's first init()

        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a blob is bytes, got {type(data).__name__}")
        name = blob_name(hashlib.sha256(data).hexdigest(), ext)
        path = self.path(name)
        if path.exists():
            return name
        fd, temp = self._temp()
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            _place(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return name

    def put_written(self, write: Callable[[BinaryIO], None], ext: str) -> str:
        import hashlib

        if ext not in EXTENSIONS:
            raise ValueError(f"not a blob extension: {ext!r} (expected one of {EXTENSIONS})")
        fd, temp = self._temp()
        try:
            with os.fdopen(fd, "w+b") as out:
                write(out)
                out.seek(0)
                digest = hashlib.sha256()
                while chunk := out.read(_READ_CHUNK):
                    digest.update(chunk)
            name = blob_name(digest.hexdigest(), ext)
            path = self.path(name)
            if path.exists():
                temp.unlink()
            else:
                _place(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return name

    def open(self, name: str) -> BinaryIO:
        """The blob ``name`` opened for reading; ``StoreError`` if this store does not hold it."""
        path = self.path(name)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise StoreError(f"blob {name} is not in the store {self.dir}") from None

    def _temp(self) -> tuple[int, Path]:
        import tempfile  # with shutil and random behind it: only a process that writes a blob pays for it

        temp_dir = self.dir / BLOB_DIR / _TEMP_DIR
        temp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=temp_dir, suffix=".part")
        return fd, Path(name)


def _place(temp: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two processes placing the same content race harmlessly: the bytes are identical.
    os.replace(temp, path)
