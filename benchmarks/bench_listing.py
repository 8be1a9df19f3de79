"""Listing runs: `runlane ls` must cost the same however many metrics each run has (issue 8, item 16).

Two stores with the same runs, one with a single metric per run (the baseline, measured in the same run
on the same machine) and one with 300; the ratio between them is the number to watch (1x is the goal).
For contrast, `Api.runs()` with every metric's aggregates (its default) against `metrics="primary"`.

    python benchmarks/bench_listing.py            # 2,000 runs (600 of them in one project), ~2 minutes
    python benchmarks/bench_listing.py --quick    # 200 runs (60 in one project)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runlane  # noqa: E402

WIDE = 300
MEASURE = """
import resource, sys, time
start = time.perf_counter()
from runlane import cli
code = cli.main(sys.argv[1:])
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)
sys.exit(code)
"""


def build(store: Path, runs: int, in_project: int, metrics: int) -> None:
    """``runs`` finished runs, ``in_project`` of them in project "listed", each with ``metrics`` metrics."""
    for i in range(runs):
        project = "listed" if i < in_project else "others"
        with runlane.init(project=project, name=f"run-{i}", dir=store, system_metrics_interval=None) as run:
            run.set_primary_metric("acc")
            for step in range(3):
                run.log({"acc": 0.5 + step / 10 + i / 1e5, **{f"m/{k}": k * step for k in range(metrics - 1)}})


def cli_run(store: Path, *args: str) -> tuple[float, float]:
    """Seconds and peak MiB of one `runlane` command in a fresh process (its output discarded)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *args, "--dir", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds, mib = done.stderr.split()[-2:]
    return float(seconds), float(mib)


def median_cli(store: Path, repeats: int, *args: str) -> tuple[float, float]:
    samples = [cli_run(store, *args) for _ in range(repeats)]
    return statistics.median(s for s, _ in samples), max(m for _, m in samples)


def median_api(store: Path, repeats: int, metrics: str) -> float:
    with runlane.Api(store) as api:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            api.runs(project="listed", metrics=metrics)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke test")
    args = parser.parse_args()
    runs, listed, repeats = (200, 60, 3) if args.quick else (2000, 600, 5)
    with tempfile.TemporaryDirectory(prefix="runlane-bench-listing-") as tmp:
        narrow, wide = Path(tmp) / "narrow", Path(tmp) / "wide"
        build(narrow, runs, listed, 1)
        build(wide, runs, listed, WIDE)
        ls_narrow, _ = median_cli(narrow, repeats, "ls", "--project", "listed")
        ls_wide, _ = median_cli(wide, repeats, "ls", "--project", "listed")
        json_narrow, mib_narrow = median_cli(narrow, repeats, "ls", "--json")
        json_wide, mib_wide = median_cli(wide, repeats, "ls", "--json")
        api_primary = median_api(wide, repeats, "primary")
        api_all = median_api(wide, repeats, "all")
    base = f"{listed:,} runs x 1 metric"
    rows = [
        (f"runlane ls, {listed:,} runs x {WIDE} metrics", ls_wide * 1000, "ms", base, ls_narrow * 1000),
        (f"runlane ls --json, {runs:,} runs x {WIDE} metrics", json_wide * 1000, "ms",
         f"{runs:,} runs x 1 metric", json_narrow * 1000),
        (f"peak memory of ls --json, {runs:,} runs x {WIDE} metrics", mib_wide, "MiB",
         f"{runs:,} runs x 1 metric", mib_narrow),
        (f"Api.runs() (every aggregate), {listed:,} runs x {WIDE} metrics", api_all * 1000, "ms",
         'Api.runs(metrics="primary")', api_primary * 1000),
    ]  # fmt: skip
    print(f"runlane {runlane.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    print("| what | runlane | baseline (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    for what, value, unit, baseline_name, baseline in rows:
        print(f"| {what} | {value:,.1f} {unit} | {baseline_name}: {baseline:,.1f} {unit} | {value / baseline:.2f}x |")


if __name__ == "__main__":
    main()
