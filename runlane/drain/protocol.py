"""What an owner process and its drain process agree on, with no pipe between them.

- The spool (``runlane.spool``): the owner's journals are the files named ``<owner pid>.<writer id>.rlj``
  in it, so a drain tells its owner's journals from others' by the name alone, without opening the store.
- The doorbell: SIGUSR1 from the owner means "look again" (a run was registered, or the last one ended).
  It is blocked in the drain from the moment it is spawned, so a ring is never fatal, only pending.
- ``active_lock(drain pid)``: the file a drain holds locked (flock) while it has the store open. The owner
  waits on it at the end of its last run on a store, so when that returns nothing of runlane has the
  store open.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

DOORBELL = signal.SIGUSR1


def active_lock(drain_pid: int) -> Path:
    import tempfile  # here, not at the top: tempfile (with random and shutil) would cost every first init()

    return Path(tempfile.gettempdir()) / f"runlane-drain-{os.getuid()}-{drain_pid}.lock"
