"""The drain process: ``python -m runlane.drain STORE OWNER_HOST OWNER_PID OWNER_STARTED``.

Started by the SDK when a process opens a store to write, detached (its own session, no pipes to the
owner). It tails the owner's journals into the store while the owner runs, and exits:

- on SIGTERM, which the owner sends once its last run on the store has ended and everything is in (a
  clean exit: the transaction in progress rolls back, the connection closes);
- when the owner has had no open writer for ``IDLE_EXIT_S`` (it was left to finish a run whose end timed
  out, and has finished it);
- when the owner is gone. If the owner died without warning (SIGKILL, OOM, a segfault), the drain first
  applies whatever the journals still hold and then lets recovery fail the runs it left unfinished, so a
  crashed run is complete and marked within moments instead of at the next open of the store.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from ..liveness import is_alive
from ..logs import log
from ..recovery import recover
from ..store import open_store
from .loop import Drain, Owner, Tunables

IDLE_EXIT_S = 10.0
NICENESS = 5  # a quarter of a contended core, all of an idle one
# After the owner is gone, how long to keep retrying a store that refuses writes before leaving the
# journals for the next process that opens the store.
ORPHAN_RETRY_S = 300.0


def main(argv: list[str]) -> int:
    location, host, pid, started = argv[0], argv[1], int(argv[2]), None if argv[3] == "-" else float(argv[3])
    owner = Owner(host, pid, started)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # The training process comes first: where cores are scarce the drain takes the idle time, and what it
    # has not applied when a run ends, the ending process applies itself.
    os.nice(NICENESS)
    store = open_store(location)
    drain = Drain(store, Path(location), owner, Tunables())
    try:
        idle_since = time.monotonic()
        while is_alive(pid, started):
            busy = drain.pump()
            if drain.following:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_EXIT_S:
                return 0
            if not busy:
                time.sleep(drain.tunables.poll_s)
        # The owner is gone. What its journals still hold goes in; then recovery closes its writers and
        # fails the runs it did not end (the ones it ended have their END record in the store by now).
        gone_at = time.monotonic()
        while True:
            busy = drain.pump(heartbeat=False)
            if not busy and not drain.backlog():
                break
            if time.monotonic() - gone_at > ORPHAN_RETRY_S:
                log.error("runlane: the store still refuses writes; the journals stay for the next process")
                return 1
            if not busy:
                time.sleep(drain.tunables.poll_s)
        drain.close()
        recover(store, Path(location))
        return 0
    finally:
        drain.close()
        store.close()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds through the finally blocks: the transaction rolls back, the store closes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
