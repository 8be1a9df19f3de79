"""The store contract fixture: one ``store`` per backend, every contract test run against each.

Each backend is a param of ``store`` and a factory in ``FACTORIES`` that opens an empty store of that kind
under the test's ``tmp_path``. A PostgreSQL store joins by adding ``"postgresql"`` and a factory that opens
a fresh database (one per test). The HTTP store (``http``) is a client of one real server process for the
whole suite (``multistore.py``), which serves each test a fresh SQLite store in that test's ``tmp_path``
under its own URL prefix. The tests never reach past ``runlane.store.base.Store``, so nothing else has to
change for them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runlane.store import open_store
from runlane.store.base import Store

from ..servers import Server, wait_ready


def _sqlite(tmp_path: Path) -> Store:
    return open_store(tmp_path / "store")


_SERVERS: list[Server] = []


def _http(tmp_path: Path) -> Store:
    from .multistore import token

    if not _SERVERS:
        log = tmp_path.parent / "contract-server.log"
        with log.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("multistore.py"))],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        _SERVERS.append(Server(process, wait_ready(process, log), log))
    return open_store(f"{_SERVERS[0].url}/s/{token(tmp_path / 'store')}")


#: backend name -> how to open an empty store of that kind for one test.
FACTORIES: dict[str, Callable[[Path], Store]] = {"sqlite": _sqlite, "http": _http}
BACKENDS = tuple(FACTORIES)


@pytest.fixture(scope="session", autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    while _SERVERS:
        _SERVERS.pop().stop()


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = FACTORIES[request.param](tmp_path)
    try:
        yield opened
    finally:
        opened.close()
