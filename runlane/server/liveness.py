"""The server's liveness sweep (SPEC.md 6.2): runs whose writers stopped heartbeating are failed.

A remote writer cannot be probed by pid, so the store side of recovery
(``runlane.recovery.close_dead_writers``) presumes it dead once its heartbeat is older than
``RUNLANE_REMOTE_TIMEOUT``: the sweep closes such writers (keeping what of their journals reached the
store; the rest is still in their spool for a later process or ``runlane sync``) and fails the runs they
left running. Every server process sweeps on a thread of its own; sweeps of several processes are
harmless together (closing a writer and failing a run are atomic and idempotent in the store).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..config import Tunables
from .pool import StorePool

log = logging.getLogger("runlane.server")

#: Bounds of the sweep interval: a tenth of the heartbeat timeout, within these.
MIN_INTERVAL_S = 0.5
MAX_INTERVAL_S = 30.0


def interval(tunables: Tunables) -> float:
    return min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, tunables.remote_timeout_s / 10))


class LivenessSweep:
    def __init__(self, pool: StorePool, store_dir: Path | None, tunables: Tunables) -> None:
        self._pool = pool
        self._store_dir = store_dir
        self._tunables = tunables
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runlane-liveness", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sweep(self) -> list[int]:
        from ..recovery import close_dead_writers

        with self._pool.lease() as store:
            if store.read_only:
                return []
            return close_dead_writers(store, self._store_dir, self._tunables)

    def _run(self) -> None:
        every = interval(self._tunables)
        while not self._stop.wait(every):
            try:
                failed = self.sweep()
            except Exception as exc:  # a locked or unreachable store: the next sweep tries again
                log.warning("liveness sweep failed (%s); retrying in %.1f s", exc, every)
                continue
            if failed:
                log.info("liveness sweep: failed runs %s (their writers stopped heartbeating)", failed)
