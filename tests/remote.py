"""Run SDK tests against a live server too: a ``store_dir`` fixture that is a local store directory or the
URL of a fresh store behind one real server process (``contract/multistore.py``, shared by the session).

A test module opts in with ``from .remote import store_dir`` (overriding conftest's): every test there then
runs twice, ``[local]`` and ``[remote]``, unchanged, because ``init(dir=...)``, ``Api(...)`` and
``RUNLANE_DIR`` take a server's URL wherever they take a directory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .contract.multistore import token
from .servers import Server, wait_ready

_SERVER: list[Server] = []


def multistore_url(config: pytest.Config, store: Path, log: Path) -> str:
    """The URL of a fresh store in ``store`` behind the session's multistore server (started on first use,
    stopped when the session ends)."""
    if not _SERVER:
        config.add_cleanup(_stop)
        with log.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).parent / "contract" / "multistore.py")],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        _SERVER.append(Server(process, wait_ready(process, log), log))
    return f"{_SERVER[0].url}/s/{token(store)}"


def _stop() -> None:
    while _SERVER:
        _SERVER.pop().stop()


@pytest.fixture(params=["local", "remote"])
def store_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh store: a directory (``local``), or the URL of a server's store (``remote``)."""
    if request.param == "local":
        return tmp_path / "store"
    return multistore_url(request.config, tmp_path / "server-store", tmp_path.parent / "multistore.log")
