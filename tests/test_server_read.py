"""The read API of ``runlane server`` (docs/http-api.md) against the same store read in-process."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import runlane
from runlane import wire
from runlane.entities import Bucket, History, ImageInfo, Lineage, LogLine, ProjectInfo, RunFile, RunInfo, SystemSample

from .servers import Server, launch, running_server


def _log_runs(store: Path) -> None:
    parent = runlane.init(
        project="cv/resnet",
        name="base",
        dir=store,
        config={"lr": math.nan, "user": {"$float": "NaN"}, "deep": {"depth": 50}},
        tags=["a", "b"],
        capture_env=True,
        system_metrics_interval=0.05,
    )
    for step in range(100):
        parent.log({"loss": 1.0 / (step + 1), "odd": math.inf if step % 7 == 0 else -math.inf}, step=step)
    for n in range(5):
        parent.log_text(f"line {n} {'Needle' if n % 2 else 'hay'}")
    parent.log_image("samples", np.zeros((4, 6, 3), dtype=np.uint8), caption="zeros", step=3)
    parent.summary({"acc": 0.9})
    deadline = time.monotonic() + 30
    with runlane.Api(store) as api:
        while not api.system_samples(1) and time.monotonic() < deadline:
            time.sleep(0.05)
    parent.finish()
    child = runlane.init(project="cv/resnet", name="fork", dir=store, fork_run_id=1, fork_step=50)
    for step in range(51, 80):
        child.log({"loss": -float(step)}, step=step)
    child.finish()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("served")
    store = root / "store"
    _log_runs(store)
    with running_server(store, root / "server.log") as server:
        yield server, store


def _get(server: Server, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.url}/api/v1{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return wire.loads(response.content)


def _same(a: Any, b: Any) -> bool:
    # NaN != NaN: compare the wire text instead, where a NaN is one tag.
    return wire.dumps(a) == wire.dumps(b)


def test_projects_runs_and_one_run_are_what_the_local_api_reads(served: tuple[Server, Path]) -> None:
    server, store = served
    assert _get(server, "/health") == {"ok": True, "api_version": 1}
    with runlane.Api(store) as api:
        projects = [wire.from_wire(ProjectInfo, p) for p in _get(server, "/projects")["items"]]
        assert projects == api.projects()
        page = _get(server, "/runs", project="cv/resnet", sort="created_at", descending="false", limit=1)
        assert page["total"] == 2
        assert page["next"] is not None
        second = _get(server, "/runs", project="cv/resnet", sort="created_at", descending="false", cursor=page["next"])
        local = api.runs_page("cv/resnet", sort="created_at", descending=False, limit=1)
        assert _same(page["items"], [wire.to_wire(r) for r in local.runs])
        names = [item["name"] for item in page["items"] + second["items"]]
        assert names == ["base", "fork"]
        assert second["next"] is None
        assert _get(server, "/runs", tag=["a", "b"])["total"] == 1
        assert _get(server, "/runs", status=["running"])["total"] == 0
        assert _get(server, "/runs", search="FORK")["items"][0]["name"] == "fork"
        for ref in ("1", "CR-1", api.run(1).uid):
            run = wire.from_wire(RunInfo, _get(server, f"/runs/{ref}"))
            assert _same(wire.to_wire(run), wire.to_wire(api.run(1)))
        assert math.isnan(run.config["lr"])
        assert run.config["user"] == {"$float": "NaN"}
        metrics = _get(server, "/runs/1/metrics")["items"]
        assert set(metrics) == {"loss", "odd"}
        assert metrics["odd"]["max"] == math.inf
        lineage = wire.from_wire(Lineage, _get(server, "/runs/2/lineage"))
        assert lineage.root.id == 1
        assert [a.id for a in lineage.ancestors] == [1]
        assert [c.id for c in wire.from_wire(Lineage, _get(server, "/runs/1/lineage")).children] == [2]


def test_history_raw_stitched_and_bucketed_match_the_local_api(served: tuple[Server, Path]) -> None:
    server, store = served
    with runlane.Api(store) as api:
        raw = wire.from_wire(History, _get(server, "/runs/1/history", key="odd", start=10, end=20))
        assert raw == api.history(1, "odd", start=10, end=20)
        assert raw.values[4] == math.inf
        stitched = wire.from_wire(History, _get(server, "/runs/2/history", key="loss", stitched="true"))
        assert stitched == api.history(2, "loss", stitched=True)
        assert set(stitched.run_ids) == {1, 2}
        body = _get(server, "/runs/2/history", key="loss", stitched="true", buckets=7)
        buckets = [wire.from_wire(Bucket, b) for b in body["buckets"]]
        assert buckets == api.history(2, "loss", stitched=True, buckets=7)
        timed = _get(server, "/runs/2/history", key="loss", stitched="true", buckets=7, x="time")["buckets"]
        by_step = dict(zip(stitched.steps, stitched.times, strict=True))
        assert [b["time"] for b in timed] == [by_step[b.end] for b in buckets]


def test_logs_page_search_and_filter_like_the_local_api(served: tuple[Server, Path]) -> None:
    server, store = served
    with runlane.Api(store) as api:
        first = _get(server, "/runs/1/logs", limit=2)
        assert [wire.from_wire(LogLine, x) for x in first["items"]] == api.logs(1, limit=2)
        rest = _get(server, "/runs/1/logs", after=first["next"])
        assert [x["text"] for x in first["items"] + rest["items"]] == [line.text for line in api.logs(1)]
        assert _get(server, "/runs/1/logs", after=rest["next"]) == {"items": [], "next": rest["next"]}
        found = _get(server, "/runs/1/logs", search="needle", stream=["log"])["items"]
        assert [x["text"] for x in found] == ["line 1 Needle", "line 3 Needle"]
        assert _get(server, "/runs/1/logs", stream=["stderr"])["items"] == []


def test_images_blobs_system_samples_and_files(served: tuple[Server, Path]) -> None:
    server, store = served
    with runlane.Api(store) as api:
        images = [wire.from_wire(ImageInfo, x) for x in _get(server, "/runs/1/images", key="samples")["items"]]
        assert images == api.images(1)
        assert images[0].caption == "zeros"
        response = httpx.get(f"{server.url}/api/v1/blobs/{images[0].blob}", timeout=30)
        assert response.status_code == 200
        assert response.content == api.image_bytes(images[0])
        assert response.headers["content-type"] == "image/png"
        assert "immutable" in response.headers["cache-control"]
        samples = _get(server, "/runs/1/system", limit=1)
        assert [wire.from_wire(SystemSample, x) for x in samples["items"]] == api.system_samples(1, limit=1)
        after = _get(server, "/runs/1/system", after=samples["next"])["items"]
        assert len(after) == len(api.system_samples(1)) - 1
        env = wire.from_wire(RunFile, _get(server, "/runs/1/files/environment"))
        blob = httpx.get(f"{server.url}/api/v1/blobs/{env.blob}", timeout=30)
        assert blob.headers["content-type"] == "application/json"
        assert wire.loads(blob.content) == api.environment(1)


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/runs/ZZ-404", 404, "ref"),
        ("/runs/no such run!", 400, "ref"),
        ("/runs/0", 400, "ref"),
        ("/runs/1/files/code", 404, "kind"),
        ("/runs/1/files/passwd", 400, "kind"),
        ("/runs/1/history", 400, "key"),
        ("/runs/1/history?key=loss&start=x", 400, "start"),
        ("/runs/1/history?key=loss&start=9&end=1", 400, "start"),
        ("/runs/1/history?key=loss&start=99999999999999999999", 400, "start"),
        ("/runs/1/history?key=loss&buckets=0", 400, "buckets"),
        ("/runs/1/history?key=loss&x=wall", 400, "x"),
        ("/runs/1/logs?after=-1", 400, "after"),
        ("/runs/1/logs?stream=stdin", 400, "stream.0"),
        ("/runs/1/system?limit=0", 400, "limit"),
        ("/runs?sort=password", 400, "sort"),
        ("/runs?cursor=garbage", 400, "cursor"),
        ("/runs?status=happy", 400, "status"),
        ("/runs?project=../etc", 400, "project"),
        ("/runs?descending=maybe", 400, "descending"),
        ("/blobs/..%2F..%2Frunlane.db", 404, None),  # decoded to more path segments: no route
        ("/blobs/..runlane.db", 400, "name"),
        ("/blobs/" + "0" * 64 + ".png", 404, "name"),
        ("/no/such/route", 404, None),
    ],
)
def test_bad_requests_are_4xx_json_naming_the_field(
    served: tuple[Server, Path], path: str, status: int, field: str | None
) -> None:
    server, _ = served
    response = httpx.get(f"{server.url}/api/v1{path}", timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    assert error["code"] == {400: "bad_request", 404: "not_found"}[status]
    if status == 404 and field == "ref":
        assert "ZZ-404" in error["message"]


def test_concurrent_requests_each_get_a_store_of_their_own(served: tuple[Server, Path]) -> None:
    server, _ = served
    failures: list[str] = []

    def hammer() -> None:
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
            for _ in range(15):
                for path in ("/runs/1", "/runs/2/history?key=loss&stitched=true&buckets=5", "/runs?limit=2"):
                    response = client.get(path)
                    if response.status_code != 200:
                        failures.append(f"{path}: {response.status_code} {response.text}")

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert "Traceback" not in server.stderr()


def test_a_server_refuses_a_non_loopback_address_without_api_keys(tmp_path: Path) -> None:
    process = launch(
        ["server", "--store", str(tmp_path / "store"), "--host", "0.0.0.0", "--port", "0"], tmp_path / "log"
    )
    assert process.wait(timeout=60) == 2
    assert process.stdout is not None
    with process.stdout:
        assert process.stdout.read() == ""
    message = (tmp_path / "log").read_text()
    assert "refusing to serve on 0.0.0.0" in message
    assert "API" in message
    assert "runlane keys create" in message


def test_runlane_ui_serves_the_local_store_on_loopback_and_prints_its_url(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = runlane.init(project="p", dir=store)
    run.log({"x": 1.0})
    run.finish()
    process = launch(["ui", "--dir", str(store), "--port", "0"], tmp_path / "log")
    server = Server(process, "", tmp_path / "log")
    try:
        from .servers import wait_ready

        server.url = wait_ready(process, tmp_path / "log")
        assert server.url.startswith("http://127.0.0.1:")
        assert _get(server, "/runs/1/history", key="x")["values"] == [1.0]
    finally:
        server.stop()


def test_runlane_ui_without_a_store_says_where_it_looked(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runlane", "ui", "--dir", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no runlane store in" in result.stderr
    assert "nothing" in result.stderr
