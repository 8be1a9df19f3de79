"""The web UI in Chromium against SPEC.md section 7: a run page of 20 charts of 100,000 points each drawn
within 1 s of navigation, a 1M-point chart zoomed and redrawn from fresh buckets within 150 ms, and the
runs table of a 10,000-run project (first render, a sort).

Times come from the page itself (performance marks the charts set: ``runlane:chart-drawn``,
``runlane:zoom-start``/``runlane:zoom-drawn``). Each is set against a baseline measured in the same run
in the same page: the same API requests made with ``fetch()`` and nothing drawn, i.e. what the server and
the network cost, so the ratio is what the UI adds on top.

    python benchmarks/bench_ui.py            # 20 x 100,000 points, 1,000,000 points, 10,000 runs; ~2 minutes
    python benchmarks/bench_ui.py --quick    # 10x smaller, a smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

import runlane  # noqa: E402
from runlane.store import open_store  # noqa: E402
from runlane.store.base import NewRun, WriterSpec  # noqa: E402
from tests.browser.conftest import CHROMIUM, ui_server  # noqa: E402

CHARTS = 20
REPEATS = 5
BUCKETS = 600  # what a chart asks for (runlane/ui/static/js/chart/use-buckets.js)


def build(store: Path, points: int, long_points: int, runs: int) -> tuple[str, str]:
    wide = runlane.init(project="bench/wide", name="twenty", dir=store, system_metrics_interval=None)
    for step in range(points):
        wide.log({f"m/{k:02d}": (step % 1000) / 1000 + k for k in range(CHARTS)}, step=step)
    wide.finish()
    assert isinstance(wide, runlane.Run)
    long = runlane.init(project="bench/long", name="million", dir=store, system_metrics_interval=None)
    for step in range(long_points):
        long.log({"loss": 1.0 + (step % 100) / 1000}, step=step)
    long.finish()
    assert isinstance(long, runlane.Run)
    # The store calls init() and finish() make per run, without a process per run (see tests/browser/test_scale.py).
    with open_store(str(store), create=True) as backend:
        for i in range(runs):
            writer = WriterSpec(uuid.uuid4().hex, "bench", os.getpid(), None, "")
            new = NewRun(uid=uuid.uuid4().hex, project="bench/table", name=f"run-{i:05d}", config={"i": i})
            backend.create_run(new, writer)
            backend.close_writer(writer.id, "finished")
    return wide.display_id, long.display_id


def fetch_all(page: Page, urls: list[str]) -> float:
    """Milliseconds the page takes to fetch and parse these URLs in parallel (the baseline)."""
    return float(
        page.evaluate(
            """async (urls) => { const t = performance.now();
               await Promise.all(urls.map((u) => fetch(u).then((r) => r.json())));
               return performance.now() - t; }""",
            urls,
        )
    )


def charts_drawn(page: Page, base: str, ref: str) -> float:
    page.goto(f"{base}/run/{ref}/charts")
    page.wait_for_function(f"document.querySelectorAll('.chart[data-state=drawn]').length === {CHARTS}", timeout=60_000)
    return float(
        page.evaluate("Math.max(...performance.getEntriesByName('runlane:chart-drawn').map((m) => m.startTime))")
    )


def zoom(page: Page, base: str, ref: str) -> tuple[float, str]:
    page.goto(f"{base}/run/{ref}/charts")
    chart = page.locator('.chart[data-key="loss"]')
    chart.locator("canvas").first.wait_for()
    page.wait_for_function("document.querySelector('.chart[data-key=loss]').dataset.state === 'drawn'")
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    with page.expect_request(lambda r: "start=" in r.url and "buckets=" in r.url) as request:
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=6)
        page.mouse.up()
    url = request.value.url
    page.wait_for_function("performance.getEntriesByName('runlane:zoom-drawn').length > 0")
    start, drawn, answered = page.evaluate(
        """(url) => [performance.getEntriesByName('runlane:zoom-start')[0].startTime,
           performance.getEntriesByName('runlane:zoom-drawn')[0].startTime,
           performance.getEntriesByName(url)[0].responseEnd]""",
        url,
    )
    assert drawn >= answered, "the zoomed chart was marked drawn before its buckets arrived"
    return float(drawn - start), url


def table(page: Page, base: str) -> tuple[float, float]:
    page.goto(f"{base}/runs?project=bench/table")
    page.wait_for_function("document.querySelectorAll('tbody tr[data-run]').length === 100", timeout=60_000)
    first = float(page.evaluate("performance.now()"))
    top = page.locator("tbody tr[data-run]").first.get_attribute("data-run")
    start = float(page.evaluate("performance.now()"))
    page.locator('th[data-sort="name"] a').click()
    page.wait_for_function(f"document.querySelector('tbody tr[data-run]').dataset.run !== '{top}'")
    return first, float(page.evaluate("performance.now()")) - start


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def row(what: str, value: float, baseline_name: str, baseline: float, target: float | None) -> str:
    met = "-" if target is None else ("yes" if value <= target else "no")
    shown = "-" if target is None else f"<= {target:.0f} ms"
    return (
        f"| {what} | {value:.1f} ms | {baseline_name}: {baseline:.1f} ms | {value / baseline:.2f}x | {shown} | {met} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10x smaller sizes for a smoke test")
    args = parser.parse_args()
    points, long_points, runs = (10_000, 100_000, 1_000) if args.quick else (100_000, 1_000_000, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        print(f"building: {CHARTS} metrics x {points:,} points, one of {long_points:,}, {runs:,} runs", file=sys.stderr)
        wide, long = build(store, points, long_points, runs)
        with ui_server(store, Path(tmp) / "server.log") as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            base = server.url
            api = f"{base}/api/v1"
            results: dict[str, list[float]] = {
                k: [] for k in ("charts", "charts0", "zoom", "zoom0", "t1", "t10", "s1", "s0")
            }
            charts_drawn(page, base, wide)  # warm the server's caches and the browser's module cache
            for _ in range(REPEATS):
                results["charts"].append(charts_drawn(page, base, wide))
                urls = [
                    f"{api}/runs/{wide}/history?key=m/{k:02d}&stitched=false&buckets={BUCKETS}" for k in range(CHARTS)
                ]
                results["charts0"].append(fetch_all(page, urls))
                took, url = zoom(page, base, long)
                results["zoom"].append(took)
                results["zoom0"].append(fetch_all(page, [url]))
                first, sort = table(page, base)
                results["t1"].append(first)
                results["t10"].append(
                    fetch_all(page, [f"{api}/runs?project=bench%2Ftable&sort=created_at&descending=true&limit=100"])
                )
                results["s1"].append(sort)
                results["s0"].append(
                    fetch_all(page, [f"{api}/runs?project=bench%2Ftable&sort=name&descending=false&limit=100"])
                )
            browser.close()
    m: dict[str, Any] = {k: median(v) for k, v in results.items()}
    print(f"\n## bench_ui.py ({'quick' if args.quick else 'full'}; medians of {REPEATS})\n")
    print("| what | runlane UI | baseline (same run) | ratio | target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    charts_target = None if args.quick else 1000.0
    print(
        row(
            f"run page, {CHARTS} charts of {points:,} points: navigation to the last chart drawn",
            m["charts"],
            f"fetch of the {CHARTS} bucket answers",
            m["charts0"],
            charts_target,
        )
    )
    print(
        row(
            f"{long_points:,}-point chart: zoom (mouse up) to redrawn from fresh buckets",
            m["zoom"],
            "fetch of the zoomed buckets",
            m["zoom0"],
            None if args.quick else 150.0,
        )
    )
    print(
        row(
            f"runs table of {runs:,} runs: navigation to 100 rows drawn",
            m["t1"],
            "fetch of the page of runs",
            m["t10"],
            None,
        )
    )
    print(
        row(
            f"runs table of {runs:,} runs: sort by name (click to redrawn)",
            m["s1"],
            "fetch of the sorted page",
            m["s0"],
            None,
        )
    )


if __name__ == "__main__":
    main()
