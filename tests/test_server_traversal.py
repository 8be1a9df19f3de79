"""Path traversal: no path, query or body parameter that names a run, a metric key, a blob, a writer or an
API key reaches a file outside the store, whatever encoding it arrives in."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

import runlane

from .servers import Server, running_server

SECRET = "top-secret-sentinel"
PAYLOADS = (
    "../secret.txt",
    "../../secret.txt",
    "..%2Fsecret.txt",
    "..%2F..%2Fsecret.txt",
    "%2e%2e%2fsecret.txt",
    "%252e%252e%252fsecret.txt",
    "..\\secret.txt",
    "..%5Csecret.txt",
    "....//secret.txt",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "secret.txt%00.png",
    "..",
    "%2e%2e",
    "~",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("traversal")
    (root / "secret.txt").write_text(SECRET)
    (root / "secret.png").write_text(SECRET)
    store = root / "store"
    run = runlane.init(project="p", dir=store, capture_env=True)
    run.log({"x": 1.0})
    run.finish()
    with running_server(store, root / "server.log") as server:
        yield server, root


def _outside(root: Path) -> set[str]:
    return {
        str(path) for path in root.rglob("*") if not path.is_relative_to(root / "store") and path.name != "server.log"
    }


def _send(server: Server, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    # http.client sends the path exactly as given: no client-side normalisation of "..".
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body and body.startswith(b"{") else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _routes(payload: str) -> list[tuple[str, str, bytes | None]]:
    q = quote(payload, safe="%")  # keep the payload's own escapes, escape the rest
    body = json.dumps
    return [
        ("GET", f"/api/v1/runs/{payload}", None),
        ("GET", f"/api/v1/runs/{payload}/history?key=x", None),
        ("GET", f"/api/v1/runs/{payload}/logs", None),
        ("GET", f"/api/v1/runs/{payload}/images", None),
        ("GET", f"/api/v1/runs/{payload}/lineage", None),
        ("GET", f"/api/v1/runs/1/files/{payload}", None),
        ("GET", f"/api/v1/blobs/{payload}", None),
        ("PUT", f"/api/v1/blobs/{payload}", SECRET.encode()),
        ("DELETE", f"/api/v1/runs/{payload}", None),
        ("POST", f"/api/v1/writers/{payload}/batches?run_id=1&start=0&end=1", b"\x90"),
        ("POST", f"/api/v1/writers/{payload}/close", b"{}"),
        ("GET", f"/api/v1/runs/1/history?key={q}", None),
        ("GET", f"/api/v1/runs/1/images?key={q}", None),
        ("GET", f"/api/v1/runs/1/system?key={q}", None),
        ("GET", f"/api/v1/runs?project={q}", None),
        ("GET", f"/api/v1/runs?cursor={q}", None),
        ("GET", f"/api/v1/run-list?project={q}", None),
        ("POST", "/api/v1/projects", body({"name": payload}).encode()),
        (
            "POST",
            "/api/v1/runs",
            body(
                {
                    "run": {"uid": "t1", "project": payload},
                    "writer": {"id": "tw", "host": "h", "pid": 1, "journal": payload},
                }
            ).encode(),
        ),
        (
            "POST",
            "/api/v1/runs",
            body(
                {
                    "run": {"uid": "t2", "project": "p", "fork": {"ref": payload, "step": 0}},
                    "writer": {"id": "tw2", "host": "h", "pid": 1, "journal": "j"},
                }
            ).encode(),
        ),
        (
            "POST",
            f"/api/v1/runs/{payload}/attach",
            body({"writer": {"id": "tw3", "host": "h", "pid": 1, "journal": "j"}}).encode(),
        ),
    ]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_parameter_reaches_outside_the_store(served: tuple[Server, Path], payload: str) -> None:
    server, root = served
    before = _outside(root)
    for method, path, body in _routes(payload):
        status, content = _send(server, method, path, body)
        assert status < 500, (method, path, content)
        assert SECRET.encode() not in content, (method, path)
        assert b"root:" not in content, (method, path)  # /etc/passwd
        if status == 200 and method == "GET" and "/blobs/" in path:
            raise AssertionError(f"{path} served a file: {content[:80]!r}")
    assert _outside(root) == before
    assert "Traceback" not in server.stderr()


def test_the_static_ui_never_serves_a_file_outside_its_directory(served: tuple[Server, Path]) -> None:
    server, _ = served
    for payload in PAYLOADS:
        status, content = _send(server, "GET", f"/{payload}")
        assert SECRET.encode() not in content
        assert b"root:" not in content
        assert status in (200, 400, 404)  # 200: the UI's index.html, where the package ships the UI


def test_key_names_are_names_not_paths(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = tmp_path / "store"
    for payload in ("../secret", "/etc/passwd", "..", "a/b", "a\\b"):
        for action in (["create", payload], ["revoke", payload]):
            result = subprocess.run(
                [sys.executable, "-m", "runlane", "keys", *action, "--store", str(store)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 1
            assert "key name" in result.stderr or "no valid API key" in result.stderr
    assert {path.name for path in tmp_path.iterdir()} == {"store"}
