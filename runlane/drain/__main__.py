"""The drain process: ``python -m runlane.drain STORE SPOOL OWNER_HOST OWNER_PID OWNER_STARTED``.

``STORE`` is the store's location as ``open_store`` takes it (a directory or a URL), ``SPOOL`` the
directory of the owner's journals; the tunables come from the ``RUNLANE_*`` variables the owner sets
(``runlane.config.Tunables``). Started by the SDK when a process first opens a store to write, detached
(its own session, no pipe to the owner: the journals, the store and ``protocol`` are all they share).
Two states:

- **active** while the owner has runs open on the store: it holds ``active_lock(pid)`` and a connection,
  and tails the owner's journals into the store;
- **idle** once none is open: no connection, no lock, waiting for the owner's doorbell (SIGUSR1, rung
  after a run is created or resumed, and by the end of the last run so an active drain lets go).

The owner keeps one idle drain for its next ``init()`` (a sweep or a notebook does not pay for a new
process per run) and stops it with SIGTERM when it needs another store's. The drain exits by itself when
the owner is gone; if the owner died without warning (SIGKILL, OOM, a segfault) it first applies what the
journals still hold and lets recovery fail the runs left unfinished, so a crashed run is complete and
marked within moments instead of at the next open of the store.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path

from ..config import ENV_API_KEY, Tunables, store_location
from ..diagnostics import log
from ..liveness import is_alive
from ..recovery import recover
from ..spool import Spool
from ..store import open_store
from .loop import Drain, Owner
from .protocol import DOORBELL, active_lock

NICENESS = 5  # a quarter of a contended core, all of an idle one
IDLE_CHECK_S = 1.0  # while idle, how often to look whether the owner is still there
ACTIVATE_AFTER_S = 0.1  # how long after a doorbell an idle drain opens the store (see _let_short_runs_end)
# After the owner is gone, how long to keep retrying a store that refuses writes before leaving the
# journals for the next process that opens the store.
ORPHAN_RETRY_S = 300.0


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: python -m runlane.drain STORE SPOOL OWNER_HOST OWNER_PID OWNER_STARTED", file=sys.stderr)
        return 2
    location, spool_path, host = store_location(argv[0]), argv[1], argv[2]
    pid, started = int(argv[3]), None if argv[4] == "-" else float(argv[4])
    owner = Owner(host, pid, started)
    spool = Spool(Path(spool_path), location)
    tunables = Tunables.from_env(os.environ)
    # Blocked (the owner spawns us so): a ring waits, pending, for the next sigtimedwait, never kills.
    signal.pthread_sigmask(signal.SIG_BLOCK, {DOORBELL})
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # The training process comes first: where cores are scarce the drain takes the idle time, and what it
    # has not applied when a run ends, the ending process applies itself.
    os.nice(NICENESS)
    lock_path = active_lock(os.getpid())
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while is_alive(pid, started):
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                # Checked under the lock: the owner deletes a run's journal before it looks at the lock, so
                # a doorbell that arrives after the run ended never reopens the store.
                if spool.owner_has_journals(pid):
                    _drain_while_active(spool, owner, tunables)
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
            if signal.sigtimedwait({DOORBELL}, IDLE_CHECK_S) is not None:
                _let_short_runs_end(pid, started)
        return _drain_orphaned(spool, owner, tunables)
    finally:
        os.close(lock_fd)
        lock_path.unlink(missing_ok=True)


def _let_short_runs_end(pid: int, started: float | None) -> None:
    """Wait ``ACTIVATE_AFTER_S`` after a doorbell before opening the store, swallowing further rings.

    A run that ends within that time (a sweep's short trial, a test) is applied by its own ``finish()``
    on the training thread anyway: a drain that opened the store for it would only add a connection whose
    close checkpoints the database while ``finish()`` waits for it. Longer runs lose nothing but the
    delay, and the owner never waits on it: the drain holds no lock meanwhile.
    """
    deadline = time.monotonic() + ACTIVATE_AFTER_S
    while (left := deadline - time.monotonic()) > 0 and is_alive(pid, started):
        signal.sigtimedwait({DOORBELL}, left)


def _drain_while_active(spool: Spool, owner: Owner, tunables: Tunables) -> None:
    store = open_store(spool.store, api_key=os.environ.get(ENV_API_KEY) or None)
    drain = Drain(store, spool.store_dir, owner, tunables, pending_dir=spool.dir if spool.store_dir is None else None)
    try:
        while is_alive(owner.pid, owner.pid_started):
            busy = drain.pump()
            if not busy:
                if drain.owner_writers == 0:
                    return  # the owner has no run open here: go idle (no connection, no lock)
                signal.sigtimedwait({DOORBELL}, drain.tunables.poll_s)
    finally:
        drain.close()
        store.close()


def _drain_orphaned(spool: Spool, owner: Owner, tunables: Tunables) -> int:
    """The owner is gone: apply what its journals still hold, then let recovery close its writers and
    fail the runs it did not end (the ones it ended have their END record in the store by now)."""
    if not spool.owner_has_journals(owner.pid):
        return 0
    store = open_store(spool.store, api_key=os.environ.get(ENV_API_KEY) or None)
    drain = Drain(store, spool.store_dir, owner, tunables, pending_dir=spool.dir if spool.store_dir is None else None)
    try:
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
        recover(store, spool, tunables)
        return 0
    finally:
        drain.close()
        store.close()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds through the finally blocks: the transaction rolls back, the store closes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
