"""The store contract fixture: one ``store`` per backend, every contract test run against each.

Each backend is a param of ``store`` and a factory in ``FACTORIES`` that opens an empty store of that kind
for one test. SQLite: a new store directory under the test's ``tmp_path``. PostgreSQL: the test module's
own database on the local server (``postgres_url``, made fresh per module and dropped afterwards), emptied
before each test; a missing server fails these tests, never skips them. The HTTP store joins the same way
with a factory that starts a server over a fresh store and returns the client. The tests never reach past
``runlane.store.base.Store``, so nothing else has to change for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runlane.store import open_store
from runlane.store.base import Store
from tests.postgres import truncate


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    return open_store(tmp_path / "store")


def _postgresql(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    url: str = request.getfixturevalue("postgres_url")
    opened = open_store(url)  # creates the schema on the module's first test
    truncate(url)
    return opened


#: backend name -> how to open an empty store of that kind for one test.
FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {"sqlite": _sqlite, "postgresql": _postgresql}
BACKENDS = tuple(FACTORIES)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = FACTORIES[request.param](tmp_path, request)
    try:
        yield opened
    finally:
        opened.close()
