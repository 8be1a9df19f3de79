"""Stores for request handlers: a ``Store`` object is used by one thread at a time, requests are many.

FastAPI runs each synchronous handler on a worker thread, so each request leases a store of its own
from this pool and gives it back when it is answered. Stores are opened on demand from the factory and
kept for the next request (an idle list, most recent first, capped): a busy server holds about as many
as it answers requests at once, each with its own database connection (SQLite in WAL mode serves
concurrent readers; writers queue on its lock). Nothing else is kept between requests, so any number
of server processes can share one store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import StoreUnavailableError
from ..store.base import Store

StoreFactory = Callable[[], Store]

#: Idle stores kept open for later requests; more are opened when more requests run at once.
MAX_IDLE = 16


class StorePool:
    def __init__(self, factory: StoreFactory, *, max_idle: int = MAX_IDLE) -> None:
        self._factory = factory
        self._max_idle = max_idle
        self._idle: list[Store] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def lease(self) -> Iterator[Store]:
        """A store for this thread alone until the block ends."""
        store = self._take()
        healthy = True
        try:
            yield store
        except StoreUnavailableError:
            healthy = False  # its connection may be the broken part: open a fresh one next time
            raise
        finally:
            self._give_back(store, healthy)

    def _take(self) -> Store:
        with self._lock:
            if self._closed:
                raise StoreUnavailableError("the server is shutting down")
            if self._idle:
                return self._idle.pop()
        return self._factory()

    def _give_back(self, store: Store, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(store)
                return
        store.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for store in idle:
            store.close()
