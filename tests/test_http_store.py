"""``Api(url=)`` over a live server equals ``Api(dir=)`` on the same store, the CLI's ``--url`` too, and the
ingest routes refuse what a client must not send (with the status and field that say why)."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import numpy as np
import pytest

import runlane
from runlane import journal, wire
from runlane.errors import RunNotFoundError, StoreError, StoreUnavailableError
from runlane.store import open_store
from runlane.store.base import NewRun, WriterSpec

from .servers import Server, running_server


def _populate(store: Path, workspace: Path) -> None:
    workspace.mkdir()
    (workspace / "train.py").write_text("print('hi')\n")
    run = runlane.init(
        project="team/a",
        name="parent",
        dir=store,
        config={"lr": 0.1, "bad": -math.inf},
        tags=["x"],
        capture_env=True,
        snapshot_code=True,
        workspace_root=workspace,
        system_metrics_interval=0.05,
    )
    for step in range(200):
        run.log({"loss": math.nan if step == 7 else 1 / (step + 1), "acc": step / 200}, step=step)
    run.log_text("hello\nworld")
    run.log_image("pic", np.full((3, 5, 3), 200, dtype=np.uint8), caption="c", step=5)
    run.set_primary_metric("acc", "max")
    deadline = time.monotonic() + 30
    with runlane.Api(store) as api:
        while not api.system_samples(run.id or 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    run.finish()
    child = runlane.init(project="team/a", name="child", dir=store, fork_run_id=1, fork_step=100)
    child.log({"loss": 0.0}, step=101)
    child.finish()
    other = runlane.init(project="team/b", dir=store, alias="lonely", notes="nothing to see")
    other.finish(status="failed")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("http-store")
    store = root / "store"
    _populate(store, root / "workspace")
    with running_server(store, root / "server.log") as server:
        yield server, store


def _text(value: Any) -> str:
    """Entities compared through their wire text: NaN equals NaN there."""
    if isinstance(value, list):
        return "[" + ",".join(_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return wire.dumps({key: json.loads(_text(item)) for key, item in value.items()})
    try:
        return wire.dumps(wire.to_wire(value))
    except TypeError:
        return wire.dumps(value)


def test_api_over_a_server_returns_the_same_entities_as_the_local_api(served: tuple[Server, Path]) -> None:
    server, store = served
    with runlane.Api(store) as local, runlane.Api(url=server.url) as remote:
        assert remote.url == server.url
        assert remote.dir is None
        assert remote.projects() == local.projects()
        assert remote.project("team/a") == local.project("team/a")
        assert _text(remote.runs()) == _text(local.runs())
        assert _text(remote.runs(metrics="primary")) == _text(local.runs(metrics="primary"))
        assert _text(remote.runs("team/a", tags="x")) == _text(local.runs("team/a", tags="x"))
        assert _text(remote.runs(status="failed")) == _text(local.runs(status="failed"))
        page, mine = remote.runs_page(sort="best", limit=2), local.runs_page(sort="best", limit=2)
        assert (_text(page.runs), page.next_cursor, page.total) == (_text(mine.runs), mine.next_cursor, mine.total)
        for ref in (1, "TA-2", local.run(3).uid):
            assert _text(remote.run(ref)) == _text(local.run(ref))
            assert _text(remote.lineage(ref)) == _text(local.lineage(ref))
        assert _text(remote.history(1, "loss")) == _text(local.history(1, "loss"))
        assert _text(remote.history(2, "loss", stitched=True, start=50)) == _text(
            local.history(2, "loss", stitched=True, start=50)
        )
        assert remote.history(2, "loss", stitched=True, buckets=9) == local.history(2, "loss", stitched=True, buckets=9)
        assert remote.logs(1) == local.logs(1)
        assert remote.logs(1, after=local.logs(1)[0].id, search="WORLD") == local.logs(1, search="world")
        assert remote.system_metrics(1) == local.system_metrics(1)
        assert remote.system_samples(1, limit=2) == local.system_samples(1, limit=2)
        assert remote.images(1) == local.images(1)
        assert remote.image_bytes(remote.images(1)[0]) == local.image_bytes(local.images(1)[0])
        assert remote.open_image(remote.images(1)[0]).size == (5, 3)
        assert remote.environment(1) == local.environment(1)
        assert remote.environment(3) is None
        assert remote.code_snapshot(1) == local.code_snapshot(1)
        assert remote.code_snapshot(3) is None
        with pytest.raises(RunNotFoundError, match="ZZ-9"):
            remote.run("ZZ-9")
        with pytest.raises(runlane.ProjectNotFoundError):
            remote.project("nope")
        with pytest.raises(runlane.DeletionRefusedError):
            remote.delete_run(1)
        with pytest.raises(ValueError, match="sort"):
            remote.runs_page(sort="nope")


def test_creating_and_deleting_through_the_server_shows_locally(served: tuple[Server, Path]) -> None:
    server, store = served
    with runlane.Api(url=server.url) as remote:
        made = remote.create_project("scratch/space", key="SCR")
        assert made.key == "SCR"
        assert remote.create_project("scratch/space", exist_ok=True) == made
        with pytest.raises(ValueError, match="exists"):
            remote.create_project("scratch/space")
    with runlane.Api(store) as local:
        assert local.project("scratch/space") == made


def test_the_cli_reads_a_server_with_url_as_it_reads_a_directory(served: tuple[Server, Path]) -> None:
    server, store = served

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "runlane", *args], capture_output=True, text=True, timeout=60, check=True
        )
        return result.stdout

    for command in (["ls", "--json"], ["ls", "--project", "team/a"], ["show", "TA-2", "--json"], ["show", "1"]):
        assert cli(*command, "--url", server.url) == cli(*command, "--dir", str(store))
    refused = subprocess.run(
        [sys.executable, "-m", "runlane", "ls", "--dir", str(store), "--url", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "not allowed with argument" in refused.stderr


def _post(server: Server, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1{path}", timeout=30, **kwargs)


def _writer(writer_id: str) -> dict[str, Any]:
    return {"id": writer_id, "host": "elsewhere", "pid": 1, "pid_started": None, "journal": "j.rlj"}


def test_ingest_routes_refuse_bad_batches_naming_the_record_and_field(served: tuple[Server, Path]) -> None:
    server, _ = served
    created = _post(server, "/runs", json={"run": {"uid": "ingest-checks", "project": "ing"}, "writer": _writer("w1")})
    assert created.status_code == 200, created.text
    run_id = created.json()["id"]

    def batch(records: Any, start: int = 0, end: int = 10, *, raw: bytes | None = None) -> httpx.Response:
        body = raw if raw is not None else msgpack.packb(records, use_bin_type=True)
        return _post(server, "/writers/w1/batches", params={"run_id": run_id, "start": start, "end": end}, content=body)

    def refused(response: httpx.Response, status: int, field: str | None, words: str) -> None:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["field"] == field
        assert words in error["message"]

    good = [journal.METRICS, 1.0, 0, None, {"loss": 1.5}]
    refused(batch(None, raw=b"\xc1\xc1"), 400, "body", "not msgpack")
    refused(batch({"not": "a list"}), 400, "body", "array of records")
    refused(batch([good, [journal.METRICS, 1.0, 0]]), 400, "body.1", "not a journal record")
    refused(batch([[journal.METRICS, 1.0, "zero", None, {}]]), 400, "body.0", "step must be an integer")
    refused(batch([[journal.METRICS, 1.0, 0, None, {"x": "high"}]]), 400, "body.0", "values['x'] must be a number")
    refused(batch([[journal.METRICS, 1.0, 0, None, {"": 1}]]), 400, "body.0", "empty")
    refused(batch([[journal.TEXT, 1.0, "stdin", "hi"]]), 400, "body.0", "stream")
    refused(batch([[journal.SUMMARY, 1.0, {"a": b"bytes"}]]), 400, "body.0", "JSON cannot hold")
    refused(batch([[journal.IMAGE, 1.0, "k", 0, None, "../../runlane.db", 1, 1]]), 400, "body.0", "not a blob name")
    refused(batch([[journal.END, 1.0, "exploded", None]]), 400, "body.0", "status")
    missing = "ab" * 32 + ".png"
    refused(batch([[journal.IMAGE, 1.0, "k", 0, None, missing, 1, 1]]), 409, "body", "upload it first")
    refused(batch([good], start=5, end=5), 400, "end", "after start")
    refused(_post(server, "/writers/nobody/batches", params={"run_id": run_id, "start": 0, "end": 4},
                  content=msgpack.packb([good])), 409, None, "not registered")  # fmt: skip
    assert batch([good]).json() == {"applied": True}
    assert batch([good]).json() == {"applied": False}  # the same offsets again: already there
    conflict = batch([good], start=4, end=20)
    refused(conflict, 409, "start", "holds records up to byte 10")
    assert conflict.json()["error"]["committed"] == 10
    with runlane.Api(url=server.url) as api:
        assert api.history(run_id, "loss").values == [1.5]


def test_blob_uploads_are_checked_against_their_name_and_bodies_have_limits(served: tuple[Server, Path]) -> None:
    server, store = served
    data = b"\x89PNG not really"
    name = hashlib.sha256(data).hexdigest() + ".png"
    url = f"{server.url}/api/v1/blobs/{name}"
    assert httpx.put(url, content=data, timeout=30).json() == {"name": name}
    assert httpx.put(url, content=data, timeout=30).json() == {"name": name}  # idempotent
    assert httpx.get(url, timeout=30).content == data
    damaged = httpx.put(url.replace(name, "0" * 64 + ".png"), content=data, timeout=30)
    assert damaged.status_code == 400
    assert damaged.json()["error"]["field"] == "body"
    assert not (store / "blobs" / "00").exists()
    assert httpx.put(f"{server.url}/api/v1/blobs/passwd", content=data, timeout=30).json()["error"]["field"] == "name"
    # 17 MiB of JSON where 16 MiB is the limit: refused whether its length is declared or it arrives in chunks.
    huge = b"[" + b"0," * (17 * 2**19) + b"0]"
    declared = _post(server, "/heartbeat", content=huge, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(huge), 2**20):
            yield huge[start : start + 2**20]

    chunked = _post(server, "/heartbeat", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert "Traceback" not in server.stderr()


def test_a_locked_store_is_503_with_retry_after_within_the_clients_patience(served: tuple[Server, Path]) -> None:
    server, store = served
    lock = sqlite3.connect(store / "runlane.db", isolation_level=None, timeout=60)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        response = _post(server, "/projects", json={"name": "locked/out"}, headers={"X-Runlane-Patience": "0.3"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "unavailable"
        with open_store(server.url) as remote, pytest.raises(StoreUnavailableError), remote.patience(0.3):
            remote.create_project("locked/out")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    with open_store(server.url) as remote:
        assert remote.create_project("locked/out").name == "locked/out"


def test_an_unreachable_server_is_store_unavailable_and_a_closed_store_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        store = open_store(f"http://127.0.0.1:{port}")
        with pytest.raises(StoreUnavailableError, match="cannot reach"):
            store.projects()
        with pytest.raises(StoreUnavailableError):
            store.create_run(NewRun(uid="u1", project="p"), WriterSpec("w", "h", 1, None, "j"))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.projects()
