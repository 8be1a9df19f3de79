"""Every view of the web UI over a store the SDK fills here: what it shows, its URLs, and its charts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Locator, expect

import runlane
from tests.browser.conftest import Watched, ui_server, watch
from tests.servers import Server


@dataclass(frozen=True)
class Demo:
    store: Path
    base: runlane.Run
    fork: runlane.Run
    other: runlane.Run
    best_step: int
    best_value: float


def _build(store: Path, workspace: Path) -> Demo:
    workspace.mkdir()
    (workspace / "train.py").write_text("print('training')\n")
    (workspace / "README.md").write_text("# a demo workspace\n")
    base = runlane.init(
        project="vision/resnet",
        name="baseline",
        alias="base",
        notes="first try at the baseline",
        config={"lr": 0.1, "model": {"depth": 50}},
        tags=["sweep", "baseline"],
        dir=store,
        capture_env=True,
        snapshot_code=True,
        workspace_root=workspace,
        system_metrics_interval=0.2,
    )
    assert isinstance(base, runlane.Run)
    base.set_primary_metric("val/acc", mode="max")
    for step in range(200):
        base.log({"train/loss": 2.0 / (step + 1)}, step=step, stage="warmup" if step < 50 else "main")
        if step % 20 == 19:
            base.log({"val/acc": 0.5 + 0.4 * np.sin(step / 60)}, step=step)
    for i in range(300):
        base.log_text(f"epoch line {i}")
    base.log_text("\x1b[31mred alert\x1b[0m and the needle-42 line")
    for step, shade in ((0, 40), (100, 140), (199, 240)):
        base.log_image("samples", np.full((16, 24, 3), shade, dtype=np.uint8), caption=f"samples at {step}", step=step)
    deadline = time.monotonic() + 10  # the system monitor needs a moment for its first samples
    while time.monotonic() < deadline and not _has_system_samples(store, base.id):
        time.sleep(0.1)
    base.summary({"final_loss": 0.01})
    base.finish()

    fork = runlane.init(name="low-lr", fork_run_id=base.id, fork_step=100, config={"lr": 0.01}, dir=store)
    assert isinstance(fork, runlane.Run)
    for step in range(101, 200):
        fork.log({"train/loss": 0.5 + step / 1000})
    fork.finish()

    other = runlane.init(project="vision/resnet", name="too-high", config={"lr": 0.5}, tags=["sweep"], dir=store)
    assert isinstance(other, runlane.Run)
    other.set_primary_metric("val/acc", mode="max")
    other.log({"val/acc": 0.2}, step=19)
    other.finish("killed")
    for project in ("vision/vit", "nlp/bert"):
        with runlane.init(project=project, name="one", dir=store, system_metrics_interval=None) as run:
            run.log({"loss": 1.0})
    with runlane.Api(store) as api:
        info = api.run(base.id)
    assert info.best_step is not None
    assert info.best_value is not None
    return Demo(store, base, fork, other, info.best_step, info.best_value)


def _has_system_samples(store: Path, run_id: int) -> bool:
    with runlane.Api(store) as api:
        return bool(api.system_samples(run_id, limit=1))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = tmp_path_factory.mktemp("ui-demo")
    return _build(root / "store", root / "workspace")


@pytest.fixture(scope="module")
def server(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ui_server(demo.store, tmp_path_factory.mktemp("ui-log") / "server.log") as running:
        yield running


@pytest.fixture
def ui(browser: Browser, server: Server) -> Iterator[Watched]:
    yield from watch(browser, server.url)


def rows(ui: Watched) -> list[str]:
    found: list[str] = ui.page.locator("tbody tr[data-run]").evaluate_all("rows => rows.map(r => r.dataset.run)")
    return found


def test_projects_tree_with_run_counts(ui: Watched) -> None:
    page = ui.open("/")
    expect(page.locator('.ptree-row[data-path="vision"]')).to_contain_text("4 runs")  # 3 in resnet, 1 in vit
    expect(page.locator('.ptree-row[data-path="vision/resnet"]')).to_contain_text("3 runs")
    expect(page.locator('.ptree-row[data-path="nlp/bert"]')).to_contain_text("1 run")
    ui.shot("projects")
    page.locator('.ptree-row[data-path="vision/resnet"] a').click()
    expect(page).to_have_url(f"{ui.base}/runs?project=vision%2Fresnet")
    expect(page.locator("tbody tr[data-run]")).to_have_count(3)
    page.go_back()
    expect(page.locator('.ptree-row[data-path="vision/resnet"]')).to_be_visible()


def test_runs_table_lists_best_sorts_and_filters(ui: Watched, demo: Demo) -> None:
    page = ui.open("/runs?project=vision/resnet")
    base_row = page.locator(f'tr[data-run="{demo.base.display_id}"]')
    expect(base_row.locator("td.best")).to_contain_text(f"{demo.best_value:.4g}")
    expect(base_row).to_contain_text("baseline")
    expect(base_row).to_contain_text("base")  # the alias
    expect(page.locator(f'tr[data-run="{demo.fork.display_id}"]')).to_contain_text(f"{demo.base.display_id} @ 100")
    expect(page.locator(f'tr[data-run="{demo.other.display_id}"] .status')).to_have_text("killed")
    ui.shot("runs-table")

    # Sorting happens on the server: the request says so, and the order follows.
    with page.expect_request(lambda r: "sort=best" in r.url):
        page.locator('th[data-sort="best"] a').click()
    expect(page.locator("tbody tr[data-run]").first).to_have_attribute("data-run", demo.base.display_id)
    assert rows(ui)[-1] == demo.fork.display_id  # no primary metric of its own: last in either direction
    page.locator('th[data-sort="best"] a').click()
    expect(page.locator("tbody tr[data-run]").first).to_have_attribute("data-run", demo.other.display_id)

    page.locator('.chip[data-status="killed"]').click()
    expect(page.locator("tbody tr[data-run]")).to_have_count(1)
    expect(page.locator(".total")).to_have_text("1 run")
    page.go_back()
    expect(page.locator("tbody tr[data-run]")).to_have_count(3)

    page.fill('input[name="search"]', "low-lr")
    expect(page.locator("tbody tr[data-run]")).to_have_count(1)
    expect(page.locator("tbody tr[data-run]")).to_have_attribute("data-run", demo.fork.display_id)
    page.fill('input[name="search"]', "")
    page.fill('input[name="tag"]', "baseline")
    page.press('input[name="tag"]', "Enter")
    expect(page.locator("tbody tr[data-run]")).to_have_count(1)
    assert "tag=baseline" in page.url


def test_column_picker_adds_config_column_sorted_by_server(ui: Watched, demo: Demo) -> None:
    page = ui.open("/runs?project=vision/resnet")
    expect(page.locator("tbody tr[data-run]")).to_have_count(3)
    page.get_by_role("button", name="Columns").click()
    page.locator(".picker-item", has_text="lr").filter(has_text="config").locator("input").check()
    expect(page.locator('th[data-sort="config.lr"]')).to_be_visible()
    with page.expect_request(lambda r: "sort=config.lr" in r.url and "descending=false" in r.url):
        page.goto(f"{ui.base}/runs?project=vision/resnet&cols=config.lr&sort=config.lr&asc=1")
    expect(page.locator("tbody tr[data-run]").first).to_have_attribute("data-run", demo.fork.display_id)
    assert page.locator("tbody tr td.extra").all_inner_texts() == ["0.01", "0.1", "0.5"]
    page.reload()
    expect(page.locator("tbody tr[data-run]").first).to_have_attribute("data-run", demo.fork.display_id)


def test_run_page_shows_header_config_summary_and_lineage(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.fork.display_id}")
    head = page.locator(".run-head")
    expect(head).to_contain_text(demo.fork.display_id)
    expect(head).to_contain_text("low-lr")
    expect(head.locator('[data-field="uid"]')).to_have_text(demo.fork.uid)
    expect(head.locator(".status")).to_have_text("finished")
    expect(head).to_contain_text(f"{demo.base.display_id} at step 100")
    config = page.locator('[data-section="config"]')
    expect(config.locator("tr", has_text="model.depth")).to_contain_text("50")  # inherited from the parent
    expect(config.locator("tr", has=page.locator("th", has_text="lr"))).to_contain_text("0.01")
    tree = page.locator('[data-section="lineage"]')
    expect(tree.locator(f'.tree-node[data-run="{demo.base.display_id}"]')).to_be_visible()
    expect(tree.locator(".tree-node.current")).to_contain_text("forked at step 100")
    ui.shot("run-overview")

    tree.locator(f'a:text-is("{demo.base.display_id}")').click()
    expect(page).to_have_url(f"{ui.base}/run/{demo.base.display_id}")
    expect(page.locator('[data-section="summary"]')).to_contain_text("final_loss")
    expect(page.locator(".run-head")).to_contain_text("first try at the baseline")  # notes
    page.go_back()
    expect(page.locator(".run-head")).to_contain_text("low-lr")
    page.reload()
    expect(page.locator(".run-head")).to_contain_text("low-lr")


def chart(ui: Watched, key: str) -> Locator:
    return ui.page.locator(f'.chart[data-key="{key}"]')


def test_forked_chart_stitches_with_a_dashed_fork_line_and_the_toggle_removes_it(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.fork.display_id}/charts")
    loss = chart(ui, "train/loss")
    expect(loss).to_have_attribute("data-state", "drawn")
    expect(loss).to_have_attribute("data-layers", f"{demo.base.id}:0-100,{demo.fork.id}:101-199")
    assert loss.locator("canvas").count() >= 1
    fork_line = loss.locator('.mk-fork[data-step="100"]')
    expect(fork_line).to_be_visible()
    assert fork_line.evaluate("el => getComputedStyle(el).borderLeftStyle") == "dashed"
    # Only the parent logged val/acc: with inherited points it still has a chart here.
    expect(chart(ui, "val/acc")).to_have_attribute("data-state", "drawn")
    toggle = page.locator('input[name="inherited"]')
    expect(toggle).to_be_checked()
    ui.shot("run-charts-forked")

    toggle.uncheck()
    expect(page).to_have_url(f"{ui.base}/run/{demo.fork.display_id}/charts?inherited=0")
    expect(loss).to_have_attribute("data-layers", f"{demo.fork.id}:101-199")
    expect(loss.locator(".mk-fork")).to_have_count(0)
    expect(chart(ui, "val/acc")).to_have_count(0)
    ui.shot("run-charts-own-points")
    page.reload()
    expect(chart(ui, "train/loss")).to_have_attribute("data-layers", f"{demo.fork.id}:101-199")
    page.go_back()
    expect(chart(ui, "train/loss")).to_have_attribute("data-layers", f"{demo.base.id}:0-100,{demo.fork.id}:101-199")


def test_charts_mark_best_step_and_stages_and_switch_axes(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.base.display_id}/charts")
    acc = chart(ui, "val/acc")
    expect(acc).to_have_attribute("data-state", "drawn")
    expect(acc.locator(f'.mk-best[data-step="{demo.best_step}"]')).to_be_visible()
    loss = chart(ui, "train/loss")
    expect(loss.locator('.mk-stage[data-step="50"]')).to_contain_text("main")
    expect(loss.locator('.mk-child[data-step="100"]')).to_contain_text(demo.fork.display_id)
    expect(page.locator('.chart-group[data-group="train"]')).to_be_visible()
    expect(page.locator('.chart-group[data-group="val"]')).to_be_visible()
    expect(page.locator(".chart[data-key^='sys/']")).to_have_count(0)  # system metrics have their own tab

    page.select_option('select[name="x"]', "relative")
    expect(page).to_have_url(f"{ui.base}/run/{demo.base.display_id}/charts?x=relative")
    expect(loss).to_have_attribute("data-state", "drawn")
    expect(loss).to_have_attribute("data-layers", f"{demo.base.id}:0-199")
    page.locator('input[name="log"]').check()
    page.locator('input[type="range"]').fill("0.8")
    expect(page).to_have_url(f"{ui.base}/run/{demo.base.display_id}/charts?x=relative&log=1&smooth=0.8")
    expect(loss).to_have_attribute("data-state", "drawn")
    ui.shot("run-charts-relative-log-smoothed")

    loss.locator(".u-over").hover(position={"x": 120, "y": 60})
    expect(loss.locator(".tooltip")).to_contain_text("step")
    expect(loss.locator(".tooltip")).to_contain_text(demo.base.display_id)


def test_logs_tab_searches_filters_and_colours(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.base.display_id}/logs")
    expect(page.locator("[data-lines]")).to_have_attribute("data-lines", "301")
    red = page.locator(".log-line", has_text="red alert")
    page.locator(".log-box").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(red.locator("span[style*='color']")).to_have_text("red alert")
    ui.shot("run-logs")
    page.fill('input[name="log-search"]', "needle-42")
    expect(page.locator("[data-lines]")).to_have_attribute("data-lines", "1")
    expect(page.locator(".log-line mark")).to_have_count(0)  # an ANSI-coloured line keeps its colours instead
    expect(page.locator(".log-line")).to_contain_text("needle-42")
    expect(page).to_have_url(f"{ui.base}/run/{demo.base.display_id}/logs?q=needle-42")
    page.fill('input[name="log-search"]', "epoch line 29")
    expect(page.locator("[data-lines]")).to_have_attribute("data-lines", "11")  # 29, 290..299
    expect(page.locator(".log-line mark").first).to_have_text("epoch line 29")
    page.locator('.chip[data-stream="stdout"]').click()  # turn stdout off: log_text lines stay
    expect(page.locator("[data-lines]")).to_have_attribute("data-lines", "11")
    page.locator('.chip[data-stream="log"]').click()
    expect(page.locator("[data-lines]")).to_have_attribute("data-lines", "0")


def test_images_tab_steps_through_images_with_captions(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.base.display_id}/images")
    card = page.locator('.image-card[data-key="samples"]')
    expect(card.locator('[data-field="step"]')).to_have_text("step 199")
    expect(card.locator('[data-field="caption"]')).to_have_text("samples at 199")
    page.wait_for_function(
        "() => { const i = document.querySelector('.image-card img');"
        " return i && i.complete && i.naturalWidth === 24; }"
    )
    ui.shot("run-images")
    card.get_by_label("previous image").click()
    expect(card.locator('[data-field="caption"]')).to_have_text("samples at 100")
    card.locator('input[type="range"]').fill("0")
    expect(card.locator('[data-field="step"]')).to_have_text("step 0")
    expect(card.locator('[data-field="caption"]')).to_have_text("samples at 0")


def test_system_environment_and_code_tabs(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.base.display_id}/system")
    expect(page.locator('.chart[data-key="sys/cpu_percent"]')).to_have_attribute("data-state", "drawn")
    ui.shot("run-system")
    page.locator('.tab[data-tab="environment"]').click()
    expect(page).to_have_url(f"{ui.base}/run/{demo.base.display_id}/environment")
    expect(page.locator(".files-grid")).to_contain_text("python")
    ui.shot("run-environment")
    page.locator('.tab[data-tab="code"]').click()
    page.get_by_role("button", name="train.py").click()
    expect(page.locator(".code-tab .msg-error")).to_have_count(0)
    expect(page.locator(".file-text")).to_have_text("print('training')\n")
    ui.shot("run-code")
    # The fork has neither: the tabs say so (the API's 404 is how "none" is answered).
    ui.expect_failure(r"/files/(environment|code)")
    page.goto(f"{ui.base}/run/{demo.fork.display_id}/code")
    expect(page.locator(".msg-empty")).to_contain_text("No code snapshot")


def test_compare_overlays_runs_each_with_only_its_own_points(ui: Watched, demo: Demo) -> None:
    page = ui.open("/runs?project=vision/resnet")
    page.get_by_label(f"select {demo.base.display_id}").check()
    page.get_by_label(f"select {demo.fork.display_id}").check()
    page.get_by_test_id("compare").click()
    expect(page).to_have_url(f"{ui.base}/compare?runs={demo.base.display_id},{demo.fork.display_id}")
    loss = chart(ui, "train/loss")
    expect(loss).to_have_attribute("data-state", "drawn")
    expect(loss).to_have_attribute("data-layers", f"{demo.base.id}:0-199,{demo.fork.id}:101-199")
    legend = page.locator('[data-section="legend"]')
    expect(legend.locator(".legend-item")).to_have_count(2)
    colours = legend.locator(".swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == 2
    diff = page.locator('[data-section="diff"]')
    expect(diff.locator('tr[data-field="config.lr"]')).to_contain_text("0.1")
    expect(diff.locator('tr[data-field="config.lr"]')).to_contain_text("0.01")
    expect(diff.locator('tr[data-field="config.model.depth"]')).to_have_count(0)  # the same in both
    ui.shot("compare")
    page.reload()
    expect(chart(ui, "train/loss")).to_have_attribute("data-layers", f"{demo.base.id}:0-199,{demo.fork.id}:101-199")


def test_lineage_view_draws_the_tree_as_one_series_coloured_by_run(ui: Watched, demo: Demo) -> None:
    page = ui.open(f"/run/{demo.fork.display_id}")
    page.get_by_role("link", name="Lineage", exact=True).click()
    expect(page).to_have_url(f"{ui.base}/lineage/{demo.fork.display_id}")
    tree = page.locator('[data-section="lineage"]')
    expect(tree.locator(".tree-node")).to_have_count(2)
    loss = chart(ui, "train/loss")
    expect(loss).to_have_attribute("data-state", "drawn")
    expect(loss).to_have_attribute("data-layers", f"{demo.base.id}:0-199,{demo.fork.id}:101-199")
    expect(loss.locator('.mk-fork[data-step="100"]')).to_be_visible()
    swatches = tree.locator(".swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(swatches)) == 2
    ui.shot("lineage")


def test_a_run_that_does_not_exist_says_so(ui: Watched) -> None:
    ui.expect_failure(r"/api/v1/runs/NOPE-999")
    page = ui.open("/run/NOPE-999/charts")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Run NOPE-999 was not found")
    expect(alert).to_contain_text("NOPE-999")
    ui.shot("run-not-found")
    page = ui.open("/no/such/page")
    expect(page.locator(".msg-empty")).to_contain_text("No such page")
