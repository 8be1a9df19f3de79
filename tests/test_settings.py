"""Settings are resolved once, from arguments and RUNLANE_* variables, and bad values name the key."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import runlane
from runlane.config import Settings


def test_a_store_can_be_named_by_a_sqlite_url(tmp_path: Path) -> None:
    store = tmp_path / "by-url"
    run = runlane.init(project="p", dir=f"sqlite://{store}", system_metrics_interval=None)
    run.log({"x": 1.0})
    run.finish()
    with runlane.Api(f"sqlite://{store}") as api, runlane.Api(store) as same:
        assert [r.id for r in api.runs()] == [r.id for r in same.runs()] == [run.id]
    assert (store / "runlane.db").exists()


@pytest.mark.parametrize("url", ["postgresql://localhost/runs", "http://localhost:8080", "sqlite://"])
def test_a_store_url_this_version_cannot_open_is_a_clear_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="a store is a directory or sqlite:///path"):
        runlane.init(project="p", dir=url)
    assert not list(tmp_path.glob("*/runlane.db"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RUNLANE_DRAIN", "fibre", "RUNLANE_DRAIN='fibre' is not a drain kind"),
        ("RUNLANE_FINISH_TIMEOUT", "soon", "RUNLANE_FINISH_TIMEOUT='soon' must be a positive number"),
        ("RUNLANE_FINISH_TIMEOUT", "-5", "RUNLANE_FINISH_TIMEOUT='-5' must be a positive number"),
        ("RUNLANE_FINISH_TIMEOUT", "nan", "RUNLANE_FINISH_TIMEOUT='nan' must be a positive number"),
    ],
)
def test_a_bad_setting_names_its_variable(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        runlane.init(project="p", dir=store_dir)
    assert not store_dir.exists()


def test_the_drain_runs_on_a_thread_when_asked(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLANE_DRAIN", "Thread")
    assert Settings.resolve(store_dir).drain == "thread"
    run = runlane.init(project="p", dir=store_dir, system_metrics_interval=None)
    assert "runlane-drain" in [t.name for t in threading.enumerate()]
    run.log({"x": 1.0})
    run.finish()
    assert "runlane-drain" not in [t.name for t in threading.enumerate()]
    with runlane.Api(store_dir) as api:
        assert [p.value for p in api.history(run.id, "x")] == [1.0]
