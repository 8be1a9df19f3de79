"""Chart reads: a 1,000,000-point series downsampled to 1,000 buckets, plain and stitched across a
three-run lineage, beside a baseline of the same SQL with no processing (fetching the chunk rows).

    python benchmarks/bench_history.py
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runlane  # noqa: E402

POINTS = 1_000_000
REPEATS = 9


def _median_ms(fn: Callable[[], object]) -> float:
    fn()  # warm: the page cache and numpy's first use, as in a long-lived server
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _log(run: runlane.Run, steps: range) -> None:
    for step in steps:
        run.log({"loss": 1.0 / (step + 1)}, step=step)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="runlane-bench-") as tmp:
        store = Path(tmp)
        a = runlane.init(project="bench", name="A", dir=store)
        _log(a, range(POINTS))
        a.finish()
        third = POINTS // 3
        b = runlane.init(name="B", fork_run_id=a.id, fork_step=third, dir=store)
        _log(b, range(third + 1, POINTS))
        b.finish()
        c = runlane.init(name="C", fork_run_id=b.id, fork_step=2 * third, dir=store)
        _log(c, range(2 * third + 1, POINTS))
        c.finish()

        api = runlane.Api(store)
        assert sum(bucket.count for bucket in api.history(c.id, "loss", stitched=True, buckets=1000)) == POINTS
        plain_ms = _median_ms(lambda: api.history(a.id, "loss", buckets=1000))
        stitched_ms = _median_ms(lambda: api.history(c.id, "loss", stitched=True, buckets=1000))
        api.close()

        conn = sqlite3.connect(store / "runlane.db")
        sql = (
            "SELECT steps, vals FROM chunks WHERE series_id = (SELECT id FROM series WHERE run_id = ? AND key = ?)"
            " AND last_step >= ? AND first_step <= ? ORDER BY first_step"
        )

        def bare_plain() -> None:
            conn.execute(sql, (a.id, "loss", 0, POINTS)).fetchall()

        def bare_stitched() -> None:
            conn.execute(sql, (a.id, "loss", 0, third)).fetchall()
            conn.execute(sql, (b.id, "loss", third + 1, 2 * third)).fetchall()
            conn.execute(sql, (c.id, "loss", 2 * third + 1, POINTS)).fetchall()

        bare_plain_ms = _median_ms(bare_plain)
        bare_stitched_ms = _median_ms(bare_stitched)
        conn.close()

    rows = [
        ("1M points -> 1,000 buckets", plain_ms, bare_plain_ms),
        ("1M points -> 1,000 buckets, stitched across 3 runs", stitched_ms, bare_stitched_ms),
    ]
    print(f"runlane {runlane.__version__}, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}")
    print("| what | runlane | baseline: the same SQL, no processing | ratio | target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    for what, ours, bare in rows:
        verdict = "yes" if ours <= 50 else "NO"
        print(f"| {what} | {ours:.1f} ms | {bare:.1f} ms | {ours / bare:.2f}x | <= 50 ms | {verdict} |")


if __name__ == "__main__":
    main()
