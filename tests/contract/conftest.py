"""The store contract fixture: one ``store`` per backend, every contract test run against each.

Each backend is a param of ``store`` and a factory in ``FACTORIES`` that opens an empty store of that kind
under the test's ``tmp_path``. Today only the embedded SQLite store exists. A PostgreSQL store joins by
adding ``"postgresql"`` to ``BACKENDS`` and a factory that opens a fresh database (one per test); the HTTP
store joins the same way with a factory that starts a server over a fresh store and returns the client.
The tests never reach past ``runlane.store.base.Store``, so nothing else has to change for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runlane.store import open_store
from runlane.store.base import Store


def _sqlite(tmp_path: Path) -> Store:
    return open_store(tmp_path / "store")


#: backend name -> how to open an empty store of that kind for one test.
FACTORIES: dict[str, Callable[[Path], Store]] = {"sqlite": _sqlite}
BACKENDS = tuple(FACTORIES)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = FACTORIES[request.param](tmp_path)
    try:
        yield opened
    finally:
        opened.close()
