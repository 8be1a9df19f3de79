"""The store side of recovery, run by the server: runs whose writers stopped heartbeating are failed.

A remote writer cannot be probed by its pid from here (it runs on another machine, or in another PID
namespace), so it is judged by its heartbeat, written by its drain every ``RUNLANE_HEARTBEAT_INTERVAL``: one
older than ``RUNLANE_REMOTE_TIMEOUT`` means the process is gone, and a run left without a live owner is
marked failed with the reason (``runlane.recovery.close_dead_writers``, the same rule an embedded store's
next opener applies). Every server process sweeps; the store's transactions make concurrent sweeps
harmless, so nothing has to elect one. A writer that comes back after being judged dead (a network
partition longer than the timeout) still delivers its records: ingest checks offsets, not liveness.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..config import Tunables
from ..diagnostics import log
from ..recovery import close_dead_writers
from ..store.base import Store

#: Sweeps per timeout: a dead writer's run is failed at most this fraction of the timeout late.
SWEEPS_PER_TIMEOUT = 4
MAX_SWEEP_INTERVAL_S = 30.0


class LivenessSweep:
    """A daemon thread failing abandoned runs of the store that ``factory`` opens, until ``stop()``."""

    def __init__(self, factory: Callable[[], Store], store_dir: Path | None, tunables: Tunables) -> None:
        self._factory = factory
        self._store_dir = store_dir
        self._tunables = tunables
        self.interval_s = min(MAX_SWEEP_INTERVAL_S, tunables.remote_timeout_s / SWEEPS_PER_TIMEOUT)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="runlane-liveness", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sweep_once(self) -> list[int]:
        store = self._factory()
        try:
            if store.read_only:
                return []
            return close_dead_writers(store, self._store_dir, self._tunables)
        finally:
            store.close()

    def _main(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.sweep_once()
            except Exception as exc:  # a store briefly unavailable, a damaged journal: the next sweep tries again
                log.warning("runlane server: liveness sweep failed: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
