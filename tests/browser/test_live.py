"""A run that is still running, as the UI shows it: charts grow, the log tails and the table row turns."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Request, expect

import runlane
from tests.browser.conftest import Watched, ui_server, watch
from tests.conftest import script_env
from tests.servers import Server

# The writer logs a point and a line every 50 ms until told to stop; a file named "say" makes it log that
# file's text as one line (then it deletes the file), so a test can tell exactly when a line was written.
WRITER = """
import os, sys, time
from pathlib import Path
import runlane
control = Path(sys.argv[1])
run = runlane.init(project="live/demo", name="still-going", system_metrics_interval=None)
run.set_primary_metric("loss", mode="min")
print(run.display_id, flush=True)
step = 0
while not (control / "stop").exists():
    run.log({"loss": 1.0 / (step + 1), "acc": step / 1000})
    if step % 5 == 0:
        run.log_text(f"tick {step}")
    say = control / "say"
    if say.exists():
        run.log_text(say.read_text())
        say.unlink()
    step += 1
    time.sleep(0.05)
run.finish()
"""


@dataclass
class Live:
    store: Path
    control: Path
    process: subprocess.Popen[str]
    display_id: str

    def stop(self) -> None:
        (self.control / "stop").touch()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("ui-live")
    store, control = root / "store", root / "control"
    control.mkdir()
    with runlane.init(project="live/demo", name="done-before", dir=store, system_metrics_interval=None) as done:
        done.log({"loss": 0.5})
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(control)],
        env=script_env(store),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    display_id = process.stdout.readline().strip()
    assert display_id, "the writer did not start"
    running = Live(store, control, process, display_id)
    yield running
    if process.poll() is None:
        running.stop()
    process.stdout.close()


@pytest.fixture(scope="module")
def server(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ui_server(live.store, tmp_path_factory.mktemp("ui-live-log") / "server.log") as running:
        yield running


@pytest.fixture
def ui(browser: Browser, server: Server) -> Iterator[Watched]:
    yield from watch(browser, server.url)


def test_charts_of_a_running_run_grow_with_only_the_new_points_fetched(ui: Watched, live: Live) -> None:
    page = ui.open(f"/run/{live.display_id}/charts")
    loss = page.locator('.chart[data-key="loss"]')
    expect(loss).to_have_attribute("data-state", "drawn")
    expect(page.locator(".run-head .status.live .live-dot")).to_be_visible()
    first = int(loss.get_attribute("data-last-step") or "0")
    appends: list[str] = []

    def on_request(request: Request) -> None:
        if "/history?" in request.url and "key=loss" in request.url:
            appends.append(request.url)

    page.on("request", on_request)
    page.wait_for_function(
        f"() => Number(document.querySelector('.chart[data-key=\"loss\"]').dataset.lastStep) >= {first + 20}"
    )
    ui.shot("live-charts")
    # New points came as raw reads from the step after the last one drawn, never as a refetch from 0.
    assert appends, "no live request was made"
    assert all("start=" in url and "buckets=" not in url for url in appends), appends


def test_logs_tab_tails_a_new_line_within_3_seconds(ui: Watched, live: Live) -> None:
    page = ui.open(f"/run/{live.display_id}/logs")
    expect(page.locator(".log-line").first).to_contain_text("tick")
    marker = f"fresh line {time.monotonic_ns()}"
    (live.control / "say").write_text(marker)
    with runlane.Api(live.store) as api:  # the line is in the store: from here the UI has 3 s
        deadline = time.monotonic() + 30
        while not api.logs(live.display_id, search=marker):
            assert time.monotonic() < deadline, "the writer never stored the line"
            time.sleep(0.05)
    expect(page.locator(".log-line", has_text=marker)).to_be_visible(timeout=3000)
    ui.shot("live-logs")


def test_runs_table_row_of_a_running_run_updates_when_it_ends(ui: Watched, live: Live) -> None:
    page = ui.open("/runs?project=live/demo")
    row = page.locator(f'tr[data-run="{live.display_id}"]')
    expect(row.locator(".status")).to_have_text("running")
    expect(row.locator(".live-dot")).to_be_visible()
    ui.shot("live-runs-table")
    live.stop()
    expect(row.locator(".status")).to_have_text("finished", timeout=20_000)
    expect(row.locator(".live-dot")).to_have_count(0)
