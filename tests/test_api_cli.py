"""The read API and the CLI over it."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import runlane
from runlane import cli, wire
from runlane.store.migrations import MIGRATIONS


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
    assert set(commands) == {"delete", "ls", "show"}
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert "--dir" in capsys.readouterr().out


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
        with pytest.raises(ValueError, match="invalid character"):
            api.create_project("team vision")
        assert api.create_project("my-project", key="MMP").key == "MMP"
        with pytest.raises(ValueError, match="taken by another project"):
            api.create_project("other", key="MMP")
        with pytest.raises(ValueError, match="2-4 capital letters"):
            api.create_project("other", key="mmp")
        assert api.create_project("team/vision", exist_ok=True) == api.project("team/vision")
    run = runlane.init(project="team/vision", dir=tmp_path / "new")
    run.finish()
    assert run.display_id == "TV-1"
