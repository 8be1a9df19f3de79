"""What an owner process and its drain process agree on, with no pipe between them.

- Journals are named ``journals/<owner pid>.<writer id>.rlj``: a drain tells its owner's journals from
  others' by the name alone, without opening the store.
- The doorbell: SIGUSR1 from the owner means "look again" (a run was registered, or the last one ended).
  It is blocked in the drain from the moment it is spawned, so a ring is never fatal, only pending.
- ``active_lock(drain pid)``: the file a drain holds locked (flock) while it has the store open. The owner
  waits on it at the end of its last run on a store, so when that returns nothing of runlane has the
  store open.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

from ..journal import SUFFIX

DOORBELL = signal.SIGUSR1
JOURNALS = "journals"


def journal_name(owner_pid: int, writer_id: str) -> str:
    """The journal of a writer, relative to the store directory."""
    return f"{JOURNALS}/{owner_pid}.{writer_id}{SUFFIX}"


def owner_journals(store_dir: Path, owner_pid: int) -> bool:
    """Whether any journal of the owner is in the store directory."""
    prefix = f"{owner_pid}."
    try:
        return any(name.startswith(prefix) for name in os.listdir(store_dir / JOURNALS))
    except FileNotFoundError:
        return False


def active_lock(drain_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"runlane-drain-{os.getuid()}-{drain_pid}.lock"
