"""The read API and the CLI over it."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runlane
from runlane import cli, wire
from runlane.store.migrations import MIGRATIONS

from .conftest import run_script, start_script


@pytest.fixture
def populated(store_dir: Path) -> Path:
    with runlane.init(project="cv/resnet", name="base", config={"lr": 0.1}, tags=["a"], dir=store_dir) as run:
        run.set_primary_metric("acc", mode="max")
        for step, acc in enumerate([0.5, 0.9, 0.7]):
            run.log({"acc": acc, "loss": 1 - acc}, stage=f"epoch_{step}")
        run.log_text("first line\n\nthird line")
        run.summary({"note": "ok"})
    with runlane.init(project="cv/resnet", name="tagged", tags=["a", "b"], dir=store_dir) as other:
        other.log(loss=0.3)
    failed = runlane.init(project="nlp", dir=store_dir)
    failed.finish("failed")
    return store_dir


def test_api_lists_and_filters_runs(populated: Path) -> None:
    with runlane.Api(populated) as api:
        assert [r.name for r in api.runs()] == [None, "tagged", "base"]
        assert [r.name for r in api.runs(project="cv/resnet")] == ["tagged", "base"]
        assert [r.project for r in api.runs(status="failed")] == ["nlp"]
        assert len(api.runs(status=["finished", "failed"])) == 3
        assert [r.name for r in api.runs(tags=["a", "b"])] == ["tagged"]
        assert [r.name for r in api.runs(tags="a")] == ["tagged", "base"]
        with pytest.raises(runlane.ProjectNotFoundError):
            api.runs(project="nope")
        with pytest.raises(ValueError, match="unknown run status"):
            api.runs(status="done")


def test_api_run_history_and_logs(populated: Path) -> None:
    with runlane.Api(populated) as api:
        base = api.runs(project="cv/resnet")[-1]
        assert api.run(base.uid) == api.run(base.display_id) == api.run(str(base.id))
        assert base.best_value == 0.9
        assert base.best_step == 1
        assert base.summary == {
            "note": "ok",
            "best_metric_name": "acc",
            "best_metric_mode": "max",
            "best_metric_value": 0.9,
            "best_metric_step": 1,
        }
        history = api.history(base.id, "acc")
        assert [(p.step, p.value, p.stage) for p in history] == [
            (0, 0.5, "epoch_0"),
            (1, 0.9, "epoch_1"),
            (2, 0.7, "epoch_2"),
        ]
        assert history[0].time <= history[-1].time
        logs = api.logs(base.id)
        assert [(line.stream, line.text) for line in logs] == [
            ("log", "first line"),
            ("log", ""),
            ("log", "third line"),
        ]
        assert base.created_at <= logs[0].time <= (base.ended_at or 0)
        assert api.history(base.id, "never-logged") == []
        with pytest.raises(runlane.RunNotFoundError):
            api.history(12345, "acc")


def test_api_on_a_directory_without_a_store(tmp_path: Path) -> None:
    with pytest.raises(runlane.StoreNotFoundError, match="no runlane store"):
        runlane.Api(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_migrations_are_recorded_and_a_newer_store_is_refused(populated: Path) -> None:
    db = sqlite3.connect(populated / "runlane.db")
    try:
        assert [row[0] for row in db.execute("SELECT name FROM schema_migrations")] == [m.name for m in MIGRATIONS]
        with db:
            db.execute("INSERT INTO schema_migrations VALUES ('9999_from_the_future', 0)")
    finally:
        db.close()
    with pytest.raises(runlane.StoreError, match="newer runlane"):
        runlane.Api(populated)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlane", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_ls_and_show(populated: Path) -> None:
    listing = _cli("ls", "--dir", str(populated))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "RUN", "PROJECT", "NAME", "STATUS"]
    assert "acc=0.9" in lines[-1]
    assert "CR-1" in lines[-1]
    as_json = json.loads(_cli("ls", "--dir", str(populated), "--json", "--project", "cv/resnet").stdout)
    assert [r["display_id"] for r in as_json] == ["CR-2", "CR-1"]
    assert as_json[1]["metrics"]["acc"]["max"] == 0.9

    shown = _cli("show", "CR-1", "--dir", str(populated))
    assert shown.returncode == 0, shown.stderr
    assert "acc (max): best 0.9 at step 1" in shown.stdout
    detail = json.loads(_cli("show", "CR-1", "--dir", str(populated), "--json").stdout)
    assert detail["config"] == {"lr": 0.1}
    assert detail["tags"] == ["a"]

    missing = _cli("show", "CR-99", "--dir", str(populated))
    assert missing.returncode == 1
    assert "no run 'CR-99'" in missing.stderr


def test_cli_json_keeps_non_finite_values_valid(store_dir: Path) -> None:
    with runlane.init(project="p", dir=store_dir) as run:
        run.log({"x": float("nan")})
        run.summary({"peak": float("inf")})
    text = _cli("show", "1", "--dir", str(store_dir), "--json").stdout
    assert "NaN" not in text.replace('"NaN"', "")  # only the tagged form, which is valid JSON
    detail = json.loads(text)
    assert detail["summary"]["peak"] == {"$float": "Infinity"}
    assert math.isnan(wire.loads(text)["metrics"]["x"]["last_value"])


def test_every_cli_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == {"delete", "keys", "ls", "recover", "server", "show", "sync", "ui"}
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        expected = {"server": "--store", "keys": "create"}.get(name, "--dir")
        assert expected in capsys.readouterr().out


def test_projects_can_be_created_empty_and_looked_up(tmp_path: Path) -> None:
    with pytest.raises(runlane.StoreNotFoundError):
        runlane.Api(tmp_path / "new")
    with runlane.Api(tmp_path / "new", create=True) as api:
        created = api.create_project("team/vision")
        assert (created.name, created.key, created.run_count) == ("team/vision", "TV", 0)
        assert api.project("team/vision") == created
        with pytest.raises(ValueError, match="already exists"):
            api.create_project("team/vision")
        with pytest.raises(runlane.ProjectNotFoundError):
            api.project("team/audio")
        with pytest.raises(ValueError, match="control character"):
            api.create_project("team\tvision")
        assert api.create_project("my-project", key="MMP").key == "MMP"
        with pytest.raises(ValueError, match="taken by another project"):
            api.create_project("other", key="MMP")
        with pytest.raises(ValueError, match="2-4 capital letters"):
            api.create_project("other", key="mmp")
        assert api.create_project("team/vision", exist_ok=True) == api.project("team/vision")
    run = runlane.init(project="team/vision", dir=tmp_path / "new")
    run.finish()
    assert run.display_id == "TV-1"


CONSOLE_SCRIPT = """
import sys, runlane
run = runlane.init(project="logs", capture_console=True, system_metrics_interval=None)
print("Epoch 1: loss 0.5")
print("100% done_ok", flush=True)
sys.stderr.write("ERROR: disk nearly full\\n")
sys.stderr.flush()
run.log_text("error budget fine\\nplain line")
run.finish()
"""


def test_logs_page_with_a_cursor_and_filter_by_search_and_stream(store_dir: Path) -> None:
    result = run_script(CONSOLE_SCRIPT, store_dir)
    assert result.returncode == 0, result.stderr
    with runlane.Api(store_dir) as api:
        (run,) = api.runs()
        everything = api.logs(run.id)
        assert sorted((line.stream, line.text) for line in everything) == [
            ("log", "error budget fine"),
            ("log", "plain line"),
            ("stderr", "ERROR: disk nearly full"),
            ("stdout", "100% done_ok"),
            ("stdout", "Epoch 1: loss 0.5"),
        ]
        ids = [line.id for line in everything]
        assert ids == sorted(set(ids))

        paged, cursor = [], None
        while page := api.logs(run.id, after=cursor, limit=2):
            assert len(page) <= 2
            paged += page
            cursor = page[-1].id
        assert paged == everything
        assert api.logs(run.id, after=everything[-1].id) == []
        assert api.logs(run.id, after=everything[1].id) == everything[2:]

        def texts(**query: object) -> list[str]:
            return sorted(line.text for line in api.logs(run.id, **query))  # type: ignore[arg-type]

        assert texts(streams="stderr") == ["ERROR: disk nearly full"]
        assert texts(streams=["stdout", "log"]) == [
            "100% done_ok",
            "Epoch 1: loss 0.5",
            "error budget fine",
            "plain line",
        ]
        assert texts(streams=[]) == []
        assert texts(search="error") == ["ERROR: disk nearly full", "error budget fine"]  # ASCII case ignored
        assert texts(search="0%") == ["100% done_ok"]  # % and _ are text, not wildcards
        assert texts(search="e_o") == ["100% done_ok"]
        assert texts(search="1_") == []  # as a wildcard, _ would match "1:" and "10"
        assert texts(search="error", streams="log", limit=5) == ["error budget fine"]

        for bad, error in [
            ({"after": -1}, ValueError),
            ({"after": "3"}, ValueError),
            ({"after": True}, ValueError),
            ({"limit": 0}, ValueError),
            ({"limit": 2.5}, ValueError),
            ({"search": 3}, TypeError),
            ({"streams": [1]}, TypeError),
        ]:
            with pytest.raises(error, match=str(next(iter(bad)))):
                api.logs(run.id, **bad)  # type: ignore[arg-type]


TAIL_SCRIPT = """
import sys, time, runlane
from pathlib import Path
go = Path({go!r})
run = runlane.init(project="tail", system_metrics_interval=None)
print(run.id, flush=True)
for i in range(200):
    run.log_text(f"line {{i}}")
deadline = time.monotonic() + 60
while not go.exists():  # the test reads the first lines while the run is live, then says go
    if time.monotonic() > deadline:
        sys.exit("the test never said go")
    time.sleep(0.01)
for i in range(200, 400):
    run.log_text(f"line {{i}}")
    if i % 20 == 0:
        time.sleep(0.02)  # spread over several of the writer's batches
run.log_text("done")
run.finish()
"""


def test_tailing_a_live_run_gets_every_line_exactly_once(store_dir: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    with start_script(TAIL_SCRIPT.format(go=str(go)), store_dir) as process:
        try:
            assert process.stdout is not None
            run_id = int(process.stdout.readline())
            seen: list[str] = []
            ids: list[int] = []
            cursor = None
            live_reads = 0
            deadline = time.monotonic() + 60
            with runlane.Api(store_dir) as api:
                while "done" not in seen:
                    assert time.monotonic() < deadline, f"tailing stalled after {len(seen)} lines"
                    page = api.logs(run_id, after=cursor, limit=7)
                    if not page:
                        time.sleep(0.02)  # nothing new yet: poll again
                        continue
                    if api.run(run_id).status == "running":
                        live_reads += 1
                    seen += [line.text for line in page]
                    ids += [line.id for line in page]
                    cursor = page[-1].id
                    if not go.exists():
                        go.touch()
            _, errors = process.communicate(timeout=60)
            assert process.returncode == 0, errors
        finally:
            if process.poll() is None:
                process.kill()
    assert seen == [f"line {i}" for i in range(400)] + ["done"]
    assert ids == sorted(set(ids))
    assert live_reads >= 2  # pages came both before and after the go: this was a live run
