"""Shared fixtures: real stores on tmp_path and real Python subprocesses that use them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runlane.sdk import start


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A fresh store directory; nothing exists there until a run is created."""
    return tmp_path / "store"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # Tests pass dir= explicitly; anything that forgets must not touch the developer's ./.runlane.
    monkeypatch.setenv("RUNLANE_DIR", str(tmp_path / "env-store"))
    monkeypatch.delenv("RUNLANE_MODE", raising=False)
    monkeypatch.delenv("RUNLANE_URL", raising=False)  # nor a server the developer's shell points at
    monkeypatch.delenv("RUNLANE_API_KEY", raising=False)
    # Nor the developer's spools: a store named by a URL spools under the cache directory.
    monkeypatch.delenv("RUNLANE_SPOOL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield
    start.set_enabled(True)


def script_env(store: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["RUNLANE_DIR"] = str(store)
    env.pop("RUNLANE_MODE", None)
    env.update(extra)
    return env


def run_script(
    code: str, store: Path, *, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python process whose default store is ``store``."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env or script_env(store),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_script(
    code: str, store: Path, *, env: dict[str, str] | None = None, **popen: object
) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh Python process (stdout piped, text mode); the caller waits for it."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env or script_env(store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


# Commits in test repositories must not depend on the developer's git configuration.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "runlane tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "runlane tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` (failing the test if it fails) and return its output."""
    result = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return result.stdout


def write(root: Path, files: dict[str, str | bytes]) -> None:
    """Create files (and their directories) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def stored_status(store: Path, run_id: int) -> str:
    """A run's status read from the database file itself, read-only, through no runlane code at all."""
    conn = sqlite3.connect(f"file:{store / 'runlane.db'}?mode=ro", uri=True, timeout=60)
    try:
        (status,) = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return str(status)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of the test module's own, dropped afterwards (see tests/postgres.py)."""
    from tests.postgres import fresh_database

    with fresh_database() as url:
        yield url
