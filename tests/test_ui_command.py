"""``runlane ui``: prints the URL, opens it in a browser unless ``--no-browser``, and serves the UI there."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx

import runlane
from tests.servers import Server, launch, wait_ready

# webbrowser runs $BROWSER with the URL; this one writes the URL to a file instead of opening a window.
OPENER = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    with runlane.init(project="p", dir=store, system_metrics_interval=None) as run:
        run.log({"loss": 1.0})
    return store


def _ui(store: Path, log: Path, *flags: str, env: dict[str, str]) -> Server:
    process = launch(["ui", "--dir", str(store), "--port", "0", *flags], log, env)
    server = Server(process, "", log)
    server.url = wait_ready(process, log)
    return server


def test_runlane_ui_opens_the_printed_url_in_a_browser(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    opener = tmp_path / "opener.py"
    opener.write_text(OPENER)
    env = {**os.environ, "BROWSER": f"{sys.executable} {opener} {opened} %s"}
    server = _ui(_store(tmp_path), tmp_path / "ui.log", env=env)
    try:
        deadline = time.monotonic() + 30
        while not (opened.exists() and opened.read_text()):
            assert time.monotonic() < deadline, f"no browser was opened:\n{server.stderr()}"
            time.sleep(0.05)
        assert opened.read_text() == server.url
        page = httpx.get(f"{server.url}/run/P-1/charts", timeout=10)  # a client route gets the UI's page
        assert page.status_code == 200
        assert '<div id="app">' in page.text
        assert httpx.get(f"{server.url}/vendor/uplot-1.6.32.esm.js", timeout=10).status_code == 200
    finally:
        server.stop()


def test_runlane_ui_no_browser_only_prints_the_url(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    opener = tmp_path / "opener.py"
    opener.write_text(OPENER)
    env = {**os.environ, "BROWSER": f"{sys.executable} {opener} {opened} %s"}
    server = _ui(_store(tmp_path), tmp_path / "ui.log", "--no-browser", env=env)
    try:
        assert httpx.get(f"{server.url}/", timeout=10).status_code == 200
    finally:
        server.stop()
    assert "http://127.0.0.1:" in server.url  # printed, and nothing opened it
    assert not opened.exists()
