"""The code snapshot of ``init(snapshot_code=True)``: a deterministic zip of the workspace, stored once.

Which files: inside a git repository, git's own list (``git ls-files --cached --others
--exclude-standard``: tracked files plus untracked files that are not ignored; tracked files deleted from
the work tree are skipped). Elsewhere, a walk of the directory that leaves out version-control
directories, virtual environments, caches and other trackers' data (``WALK_EXCLUDED_DIRS``), compiled
Python files and ``.DS_Store``. Either way: never the store's own directory, never a symbolic link or
anything but a regular file (a link may point anywhere, including a dataset or ``/etc``), never a
submodule's files.

Listing and the limits run in ``init()`` (``plan()``), so a workspace over ``MAX_FILES`` files or
``MAX_BYTES`` bytes fails ``init()`` before any run exists, with a ``SnapshotTooLargeError`` naming the
limit and ``force_snapshot=True`` (no limits). Building the zip (``build()``) runs on the capture thread.

Deterministic bytes: entries sorted by path, a fixed timestamp (1980-01-01), permissions normalized to
0644 (0755 for executables, as git does), deflate at the default level. Identical code gives an identical
archive, hence one blob shared by every run of that code.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from ...errors import SnapshotTooLargeError
from .git import git, toplevel

if TYPE_CHECKING:
    from ...blobs import BlobSink

MAX_FILES = 5_000
MAX_BYTES = 50 * 2**20
WALK_EXCLUDED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "node_modules", ".runlane", ".mypy_cache",
        ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".ipynb_checkpoints", ".eggs", ".idea", "wandb", "mlruns",
    }
)  # fmt: skip
WALK_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
WALK_EXCLUDED_FILES = frozenset({".DS_Store"})
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
MAX_SKIPPED_LISTED = 100


@dataclass(frozen=True)
class SnapshotPlan:
    """The files a snapshot will hold: names relative to ``root`` (resolved; ``/``-separated), with sizes."""

    root: Path
    source: Literal["git", "walk"]
    files: tuple[tuple[str, int], ...]
    total_bytes: int
    skipped: tuple[str, ...] = field(default=())


def default_root(workspace_root: str | os.PathLike[str] | None) -> Path:
    """The directory to snapshot: ``workspace_root``, else the git work tree of the current directory,
    else the current directory."""
    if workspace_root is not None:
        if not isinstance(workspace_root, (str, os.PathLike)):
            raise TypeError(f"workspace_root must be a path, got {type(workspace_root).__name__}")
        root = Path(os.fspath(workspace_root)).expanduser().absolute()
        if not root.is_dir():
            raise ValueError(f"workspace_root={os.fspath(workspace_root)!r} is not a directory")
        return root
    cwd = Path.cwd()
    return toplevel(cwd) or cwd


def plan(root: Path, store_dir: Path, *, force: bool = False) -> SnapshotPlan:
    """List the files to snapshot; ``SnapshotTooLargeError`` over the limits unless ``force``."""
    real_root, real_store = root.resolve(), store_dir.resolve()
    if real_root == real_store or real_store in real_root.parents:
        raise ValueError(f"workspace_root {root} is inside the runlane store {store_dir}; snapshot your code instead")
    store_rel = real_store.relative_to(real_root).as_posix() if real_root in real_store.parents else None
    limits = _Limits(real_root, force)
    listed = _git_files(real_root)  # None outside a repository (or where git is missing or refuses)
    source: Literal["git", "walk"] = "git" if listed is not None else "walk"
    names: Iterable[str] = listed if listed is not None else _walk(real_root, store_rel)
    files: list[tuple[str, int]] = []
    skipped: list[str] = []
    for name in names:
        if store_rel is not None and (name == store_rel or name.startswith(store_rel + "/")):
            continue
        try:
            info = os.lstat(real_root / name)
        except OSError:  # deleted from the work tree but still in git's index
            continue
        if not stat.S_ISREG(info.st_mode):  # symbolic links, submodules, sockets
            continue
        if not _zip_safe(name):
            # Listed as skipped in a form that can be recorded (the record is UTF-8, like the zip's names).
            skipped.append(os.fsencode(name).decode("utf-8", "backslashreplace"))
            continue
        files.append((name, info.st_size))
        limits.add(info.st_size)
    files.sort()
    return SnapshotPlan(real_root, source, tuple(files), limits.bytes, tuple(skipped))


def build(snapshot: SnapshotPlan, blobs: BlobSink) -> tuple[str, dict[str, Any]]:
    """Write the zip as a blob through ``blobs``; return its name and what it holds."""
    skipped = list(snapshot.skipped)
    count = size = 0

    def write(handle: BinaryIO) -> None:
        nonlocal count, size
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, _ in snapshot.files:
                try:
                    source = open(snapshot.root / name, "rb")  # noqa: SIM115 - closed below
                except OSError:  # removed or unreadable since init() listed it
                    skipped.append(name)
                    continue
                with source:
                    info = os.fstat(source.fileno())
                    entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.create_system = 3  # unix, whatever the platform: the permission bits below mean that
                    executable = info.st_mode & stat.S_IXUSR
                    entry.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
                    with archive.open(entry, "w", force_zip64=info.st_size >= 2**31) as target:
                        shutil.copyfileobj(source, target, 1024 * 1024)
                count += 1
                size += info.st_size

    name = blobs.put_written(write, "zip")
    meta = {
        "root": str(snapshot.root),
        "source": snapshot.source,
        "files": count,
        "bytes": size,
        "skipped": sorted(skipped)[:MAX_SKIPPED_LISTED],
    }
    return name, meta


class _Limits:
    def __init__(self, root: Path, force: bool) -> None:
        self.root = root
        self.force = force
        self.files = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.force:
            return
        how = (
            "pass force_snapshot=True to snapshot it anyway, point workspace_root= at a smaller directory, "
            "or leave snapshot_code off"
        )
        if self.files > MAX_FILES:
            raise SnapshotTooLargeError(
                f"snapshot_code: the workspace {self.root} holds more than {MAX_FILES:,} files, the snapshot's "
                f"file-count limit; {how}"
            )
        if self.bytes > MAX_BYTES:
            raise SnapshotTooLargeError(
                f"snapshot_code: the workspace {self.root} holds more than {MAX_BYTES // 2**20} MiB, the snapshot's "
                f"size limit; {how}"
            )


def _git_files(root: Path) -> list[str] | None:
    out = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    if out is None:
        return None
    # A file with merge conflicts is listed once per stage; keep one.
    return sorted({os.fsdecode(raw) for raw in out.split(b"\0") if raw})


def _walk(root: Path, store_rel: str | None) -> Iterator[str]:
    # A generator, so that the limits stop a walk of a huge tree (a home directory) early.
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into symbolic links
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in WALK_EXCLUDED_DIRS and not d.endswith(WALK_EXCLUDED_SUFFIXES) and prefix + d != store_rel
        )
        for name in sorted(filenames):
            if name not in WALK_EXCLUDED_FILES and not name.endswith(WALK_EXCLUDED_SUFFIXES):
                yield prefix + name


def _zip_safe(name: str) -> bool:
    # A file name that is not valid UTF-8 (surrogate-escaped bytes) cannot be written into a zip entry.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
