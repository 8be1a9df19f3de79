"""The UI at scale: a 1,000,000-point series keeps its one spike and zooms into fresh buckets; a project of
10,000 runs pages on the server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

import runlane
from runlane.store import open_store
from runlane.store.base import NewRun, WriterSpec
from tests.browser.conftest import Watched, ui_server, watch
from tests.servers import Server

POINTS = 1_000_000
SPIKE_STEP = 654_321
SPIKE = 100.0
RUNS = 10_000
LINES = 100_000


@dataclass(frozen=True)
class Big:
    store: Path
    series: str  # display id of the 1M-point run


def _many_runs(store: Path) -> None:
    # The two store calls init() and finish() make for each run, without a writer process per run: 10,000
    # SDK runs would take this machine minutes, and the table only reads what these calls write.
    with open_store(str(store), create=True) as backend:
        for i in range(RUNS):
            writer = WriterSpec(uuid.uuid4().hex, "bench-host", os.getpid(), None, "")
            backend.create_run(
                NewRun(uid=uuid.uuid4().hex, project="big", name=f"run-{i:05d}", config={"i": i}), writer
            )
            backend.close_writer(writer.id, "finished")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Big:
    store = tmp_path_factory.mktemp("ui-big") / "store"
    run = runlane.init(project="long", name="million", dir=store, system_metrics_interval=None)
    assert isinstance(run, runlane.Run)
    for step in range(POINTS):
        run.log({"loss": SPIKE if step == SPIKE_STEP else 1.0 + (step % 100) / 1000}, step=step)
    # log_text splits text into lines itself: one call stores 100,000 lines.
    run.log_text("\n".join(f"line {i:06d} of the long log" for i in range(LINES)))
    run.finish()
    _many_runs(store)
    return Big(store, run.display_id)


@pytest.fixture(scope="module")
def server(big: Big, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ui_server(big.store, tmp_path_factory.mktemp("ui-big-log") / "server.log") as running:
        yield running


@pytest.fixture
def ui(browser: Browser, server: Server) -> Iterator[Watched]:
    yield from watch(browser, server.url)


def test_one_spike_among_a_million_points_is_drawn_and_zoom_refetches_the_range(ui: Watched, big: Big) -> None:
    page = ui.open(f"/run/{big.series}/charts")
    loss = page.locator('.chart[data-key="loss"]')
    expect(loss).to_have_attribute("data-state", "drawn", timeout=30_000)
    expect(loss).to_have_attribute("data-points", str(POINTS))
    expect(loss).to_have_attribute("data-max", str(int(SPIKE)))  # the spike's bucket keeps it as its max
    assert float(loss.get_attribute("data-y-max") or "0") >= SPIKE  # and the plotted y range reaches it
    ui.shot("million-points")

    box = loss.locator(".u-over").bounding_box()
    assert box is not None
    with page.expect_request(lambda r: "/history?" in r.url and "start=" in r.url and "buckets=" in r.url) as zoom:
        page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
    query = dict(part.split("=", 1) for part in zoom.value.url.split("?", 1)[1].split("&"))
    start, end = int(query["start"]), int(query["end"])
    assert 0 < start < end < SPIKE_STEP
    expect(loss.locator(".zoom-reset")).to_be_visible()
    expect(loss).to_have_attribute("data-points", str(end - start + 1))
    with runlane.Api(big.store) as api:
        own = api.history(big.series, "loss", start=start, end=end)
    expect(loss).to_have_attribute("data-first-step", str(start))
    expect(loss).to_have_attribute("data-max", str(max(own.values)))  # the range's own max, not the spike
    ui.shot("million-points-zoomed")
    loss.locator(".zoom-reset").click()
    expect(loss).to_have_attribute("data-max", str(int(SPIKE)))


def test_ten_thousand_runs_page_on_the_server(ui: Watched) -> None:
    page = ui.open("/runs?project=big")
    expect(page.locator(".total")).to_have_text(f"{RUNS:,} runs")
    expect(page.locator("tbody tr[data-run]")).to_have_count(100)
    expect(page.locator("tbody tr[data-run]").first).to_contain_text("run-09999")  # newest first
    ui.shot("runs-10000")
    page.get_by_role("button", name="Next →").click()
    expect(page.locator(".pager")).to_contain_text("101\u2013200 of 10,000")  # an en dash, as typeset
    expect(page.locator("tbody tr[data-run]").first).to_contain_text("run-09899")
    page.reload()
    expect(page.locator("tbody tr[data-run]").first).to_contain_text("run-09899")
    page.go_back()
    expect(page.locator("tbody tr[data-run]").first).to_contain_text("run-09999")
    page.goto(f"{ui.base}/runs?project=big&sort=config.i&asc=1&cols=config.i")
    expect(page.locator("tbody tr[data-run]").first).to_contain_text("run-00000")
    page.locator('th[data-sort="config.i"] a').click()
    expect(page.locator("tbody tr[data-run]").first).to_contain_text("run-09999")


def test_a_hundred_thousand_log_lines_scroll_with_only_the_visible_rows_in_the_page(ui: Watched, big: Big) -> None:
    page = ui.open(f"/run/{big.series}/logs")
    expect(page.locator("[data-lines]")).to_have_attribute("data-lines", str(LINES), timeout=30_000)
    expect(page.locator("[data-lines]")).not_to_contain_text("loading")
    assert page.locator(".log-line").count() < 300  # a virtual list: the DOM holds a window, not 100,000 rows
    page.locator(".log-box").evaluate("el => { el.scrollTop = 18 * 50000; }")
    expect(page.locator(".log-line", has_text="line 050000 of the long log")).to_be_visible()
    assert page.locator(".log-line").count() < 300
    ui.shot("logs-100000")
    page.locator(".log-box").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(page.locator(".log-line", has_text=f"line {LINES - 1:06d} of the long log")).to_be_visible()
