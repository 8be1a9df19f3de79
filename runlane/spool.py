"""The spool: the directory where this machine's journals for one store wait to be delivered.

One spool per store location (``runlane.config.spool_dir``). An embedded store's default spool is its
own ``journals/`` directory, so whoever opens the store next replays what a crashed run left; any other
spool records the store its journals target in a ``target`` file, so leftovers can be delivered later
by the next process (or tool) that finds the spool, whatever it was asked to open.

Journals are named ``<owner pid>.<writer id>.rlj``: a drain tells its owner's journals from others' by
the name alone. A writer's registration in the store names its journal (``WriterSpec.journal``) relative
to the store directory when it is in the store's own ``journals/`` (the store can be moved and still finds
them), else by its absolute path on the writer's machine (another process of that machine finds it).
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import STORE_JOURNALS, embedded_dir
from .journal import SUFFIX

TARGET = "target"


class SpoolMismatchError(ValueError):
    """A spool directory already holds journals for another store."""


class Spool:
    """This machine's journals for the store at ``store`` (a canonical location), in ``dir``."""

    def __init__(self, dir: Path, store: str) -> None:
        self.dir = dir
        self.store = store
        store_dir = embedded_dir(store)
        self.store_dir = store_dir
        # The store's own journals need no target file: the directory they are in is the store.
        self.inside_store = store_dir is not None and dir == store_dir / STORE_JOURNALS

    def prepare(self) -> None:
        """Create the spool (private to this user) and, outside the store, say which store it serves."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.inside_store:
            return
        recorded = read_target(self.dir)
        if recorded is None:
            temp = self.dir / f".{TARGET}.{os.getpid()}"
            temp.write_text(self.store + "\n", encoding="utf-8")
            os.replace(temp, self.dir / TARGET)
        elif recorded != self.store:
            raise SpoolMismatchError(
                f"the spool {self.dir} holds journals for the store {recorded!r}, not {self.store!r};"
                " point RUNLANE_SPOOL elsewhere or deliver those first"
            )

    def journal_name(self, owner_pid: int, writer_id: str) -> str:
        """The journal of a new writer as its registration in the store names it (see the module doc)."""
        file = f"{owner_pid}.{writer_id}{SUFFIX}"
        return f"{STORE_JOURNALS}/{file}" if self.inside_store else str(self.dir / file)

    def owner_has_journals(self, owner_pid: int) -> bool:
        """Whether any journal of the process ``owner_pid`` is in the spool."""
        prefix = f"{owner_pid}."
        try:
            return any(name.startswith(prefix) and name.endswith(SUFFIX) for name in os.listdir(self.dir))
        except FileNotFoundError:
            return False

    def journals(self) -> list[Path]:
        """Every journal in the spool, oldest name first."""
        try:
            names = sorted(name for name in os.listdir(self.dir) if name.endswith(SUFFIX))
        except FileNotFoundError:
            return []
        return [self.dir / name for name in names]


def read_target(spool: Path) -> str | None:
    """The store location a spool outside a store serves; None if it records none."""
    try:
        return (spool / TARGET).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def journal_path(name: str, store_dir: Path | None) -> Path | None:
    """Where a registered writer's journal is on this machine; None when it cannot be known here
    (named relative to a store directory, and the store is not one)."""
    path = Path(name)
    if path.is_absolute():
        return path
    return None if store_dir is None else store_dir / path
