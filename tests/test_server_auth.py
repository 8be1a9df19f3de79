"""API keys: made and revoked with the CLI, kept hashed, required by every route but health once one
exists, and read-only keys refused on every write."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runlane
from runlane.errors import StoreError

from .servers import Server, running_server

BLOB = "0" * 64 + ".png"


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlane", *args], capture_output=True, text=True, timeout=60, check=check
    )


def _new_key(store: Path, name: str, *extra: str) -> str:
    return _cli("keys", "create", name, *extra, "--store", str(store)).stdout.splitlines()[-1]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str, str]]:
    root = tmp_path_factory.mktemp("auth")
    store = root / "store"
    run = runlane.init(project="p", dir=store)
    run.log({"x": 1.0})
    run.finish()
    writer, reader = _new_key(store, "trainer"), _new_key(store, "dashboard", "--read-only")
    # With keys the server may bind every address (it is reached here through loopback).
    with running_server(store, root / "server.log", "--host", "0.0.0.0") as server:
        server.url = server.url.replace("0.0.0.0", "127.0.0.1")
        yield server, store, writer, reader


def _routes(server: Server) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled in with plausible values."""
    document = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30).json()
    values = {"{ref}": "1", "{kind}": "environment", "{name}": BLOB, "{writer_id}": "w"}
    out: list[tuple[str, str]] = []
    for template, methods in document["paths"].items():
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        out.extend((method.upper(), path) for method in methods)
    return out


def _call(server: Server, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=30, params={"key": "x"})


def test_keys_are_printed_once_on_the_last_line_and_kept_hashed(keyed: tuple[Server, Path, str, str]) -> None:
    _, store, writer, reader = keyed
    assert writer.startswith("rlk_")
    assert writer != reader
    listed = _cli("keys", "list", "--store", str(store)).stdout
    assert "trainer" in listed
    assert "read-only" in listed
    assert writer not in listed
    conn = sqlite3.connect(store / "runlane.db")
    try:
        stored = " ".join(str(cell) for row in conn.execute("SELECT * FROM api_keys") for cell in row)
    finally:
        conn.close()
    assert writer not in stored
    assert reader not in stored
    taken = _cli("keys", "create", "trainer", "--store", str(store), check=False)
    assert taken.returncode == 1
    assert "exists already" in taken.stderr
    bad = _cli("keys", "create", "../x", "--store", str(store), check=False)
    assert "key name" in bad.stderr


def test_every_route_but_health_needs_a_key(keyed: tuple[Server, Path, str, str]) -> None:
    server, *_ = keyed
    routes = _routes(server)
    assert len(routes) > 20
    for method, path in routes:
        response = _call(server, method, path, None)
        if path == "/api/v1/health":
            assert response.status_code == 200
            continue
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["field"] == "authorization"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert _call(server, method, path, "rlk_not-a-key").status_code == 401


def test_read_only_keys_read_and_are_refused_every_write(keyed: tuple[Server, Path, str, str]) -> None:
    server, _, _, reader = keyed
    for method, path in _routes(server):
        status = _call(server, method, path, reader).status_code
        if method == "GET":
            assert status not in (401, 403), (method, path)
        else:
            assert status == 403, (method, path)
    with runlane.Api(url=server.url, api_key=reader) as api:
        assert api.run(1).display_id == "PP-1"
        with pytest.raises(StoreError, match="read-only"):
            api.create_project("q")


def test_a_read_write_key_writes_and_a_revoked_key_is_refused_at_once(
    keyed: tuple[Server, Path, str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, store, writer, _ = keyed
    with runlane.Api(url=server.url, api_key=writer) as api:
        assert api.create_project("made/remotely").name == "made/remotely"
    monkeypatch.setenv("RUNLANE_API_KEY", writer)
    with runlane.Api(url=server.url) as api:
        assert api.history(1, "x").values == [1.0]
    spare = _new_key(store, "spare")
    assert _call(server, "GET", "/api/v1/projects", spare).status_code == 200
    assert "revoked" in _cli("keys", "revoke", "spare", "--store", str(store)).stdout
    assert _call(server, "GET", "/api/v1/projects", spare).status_code == 401
    with runlane.Api(url=server.url, api_key=spare) as api, pytest.raises(StoreError, match="not valid"):
        api.projects()
    again = _cli("keys", "revoke", "spare", "--store", str(store), check=False)
    assert again.returncode == 1
    assert "no valid API key" in again.stderr


def test_keys_are_managed_on_the_store_not_through_a_server(keyed: tuple[Server, Path, str, str]) -> None:
    server, *_ = keyed
    result = _cli("keys", "list", "--store", server.url, check=False)
    assert result.returncode == 1
    assert "managed on the store" in result.stderr


def _no_keys_needed(response: Any) -> None:
    assert response.status_code == 200


def test_without_keys_no_key_is_needed_and_one_sent_is_ignored(tmp_path: Path) -> None:
    with running_server(tmp_path / "store", tmp_path / "log") as server:
        _no_keys_needed(httpx.get(f"{server.url}/api/v1/projects", timeout=30))
        _no_keys_needed(httpx.get(f"{server.url}/api/v1/projects", headers={"Authorization": "Bearer x"}, timeout=30))
