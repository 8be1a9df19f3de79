"""Core benchmarks: the cost of log(), ingest throughput, finish() latency, import and init time, context capture.

Every figure is printed beside a baseline measured in the same run on the same machine (these machines
are shared and noisy, so the ratio is the number to compare over time). Targets are SPEC.md section 7.

    python benchmarks/bench_core.py            # full sizes (about a minute)
    python benchmarks/bench_core.py --quick    # smaller sizes, for a smoke test
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import queue
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import runlane  # noqa: E402

METRICS = {f"metric_{i}": 0.1 * i for i in range(10)}


@dataclass
class Row:
    what: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: str
    met: bool | None

    def cells(self) -> list[str]:
        ratio = self.value / self.baseline if self.baseline else float("nan")
        verdict = "-" if self.met is None else ("yes" if self.met else "NO")
        return [
            self.what,
            f"{self.value:,.2f} {self.unit}",
            f"{self.baseline_name}: {self.baseline:,.2f} {self.unit}",
            f"{ratio:.2f}x",
            self.target,
            verdict,
        ]


def fresh_dir(parent: Path, name: str) -> Path:
    path = parent / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    samples_ns.sort()
    return samples_ns[len(samples_ns) // 2] / 1000, samples_ns[int(len(samples_ns) * 0.99)] / 1000


def time_calls(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    clock = time.perf_counter_ns
    samples = []
    for i in range(n):
        start = clock()
        fn(i)
        samples.append(clock() - start)
    return percentiles(samples)


def bench_log_cost(work: Path, n: int) -> list[Row]:
    run = runlane.init(project="bench-log", dir=fresh_dir(work, "log"))
    run_median, run_p99 = time_calls(lambda i: run.log(METRICS), n)
    run.finish()
    appended: list[object] = []
    list_median, list_p99 = time_calls(lambda i: appended.append(dict(METRICS)), n)
    fd = os.open(work / "bare.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    packer = msgpack.Packer()
    bare_median, bare_p99 = time_calls(lambda i: os.write(fd, packer.pack((i, time.time(), METRICS))), n)
    os.close(fd)
    return [
        Row("log() of 10 scalars, median", run_median, "us", "list append", list_median, "<= 3 us", run_median <= 3),
        Row("log() of 10 scalars, p99", run_p99, "us", "list append", list_p99, "<= 30 us", run_p99 <= 30),
        Row("log() median vs a bare msgpack append", run_median, "us", "msgpack+os.write", bare_median, "-", None),
        Row("log() p99 vs a bare msgpack append", run_p99, "us", "msgpack+os.write", bare_p99, "-", None),
    ]


def queue_into_sqlite(path: Path, steps: int) -> tuple[float, float]:
    """Baseline: a thread draining a queue of points into SQLite (one row per point).

    Returns points/s and the seconds the thread needed after the last put (its "finish()").
    """
    conn = sqlite3.connect(path / "baseline.db", check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE points (run INTEGER, key TEXT, step INTEGER, value REAL, time REAL)")
    work: queue.SimpleQueue[tuple[int, float, dict[str, float]] | None] = queue.SimpleQueue()

    def drain() -> None:
        done = False
        while not done:
            batch = [work.get()]
            while True:
                try:
                    batch.append(work.get_nowait())
                except queue.Empty:
                    break
            rows = []
            for item in batch:
                if item is None:
                    done = True
                    continue
                step, now, metrics = item
                rows.extend((1, key, step, value, now) for key, value in metrics.items())
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")

    start = time.perf_counter()
    thread = threading.Thread(target=drain)
    thread.start()
    for step in range(steps):
        work.put((step, time.time(), METRICS))
    last_put = time.perf_counter()
    work.put(None)
    thread.join()
    done = time.perf_counter()
    conn.close()
    return steps * len(METRICS) / (done - start), done - last_put


def bench_ingest(work: Path, steps: int) -> list[Row]:
    run = runlane.init(project="bench-ingest", dir=fresh_dir(work, "ingest"))
    start = time.perf_counter()
    for _ in range(steps):
        run.log(METRICS)
    last_log = time.perf_counter()
    run.finish()
    done = time.perf_counter()
    with runlane.Api(work / "ingest") as api:
        stored = sum(s.count for s in api.run(run.id).metrics.values())
    assert stored == steps * len(METRICS), stored
    rate = stored / (done - start)
    baseline_dir = fresh_dir(work, "baseline-ingest")
    baseline_dir.mkdir()
    baseline, baseline_finish = queue_into_sqlite(baseline_dir, steps)
    finish_s = done - last_log
    points = steps * len(METRICS)
    return [
        Row(
            f"ingest {steps:,} steps x 10 metrics, log() to finish()",
            rate / 1e6,
            "M points/s",
            "queue->SQLite thread",
            baseline / 1e6,
            ">= 1 M points/s",
            rate >= 1e6,
        ),
        Row(
            f"finish() after {points:,} points",
            finish_s * 1000,
            "ms",
            "queue->SQLite join",
            baseline_finish * 1000,
            "<= 1000 ms",
            finish_s <= 1.0,
        ),
    ]


def bench_many_runs(work: Path, runs: int, steps: int) -> list[Row]:
    store = fresh_dir(work, "many")
    start = time.perf_counter()
    for r in range(runs):
        run = runlane.init(project="bench-many", dir=store)
        for step in range(steps):
            run.log({"a": step, "b": 0.5, "c": r, "d": 1.0, "e": 2.0})
        run.finish()
    elapsed = time.perf_counter() - start
    conn = sqlite3.connect(work / "many-baseline.db", isolation_level=None)
    conn.execute("DROP TABLE IF EXISTS points")
    conn.execute("CREATE TABLE points (run INTEGER, key TEXT, step INTEGER, value REAL)")
    start = time.perf_counter()
    for r in range(runs):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO points VALUES (?, ?, ?, ?)",
            ((r, key, step, 1.0) for step in range(steps) for key in "abcde"),
        )
        conn.execute("COMMIT")
    baseline = time.perf_counter() - start
    conn.close()
    target = 3.0 * (runs * steps) / (200 * 1000)
    return [
        Row(
            f"{runs} runs x {steps:,} steps x 5 metrics, one after another",
            elapsed,
            "s",
            "bare SQLite inserts",
            baseline,
            f"<= {target:g} s",
            elapsed <= target,
        )
    ]


def _python(code: str, env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_startup(work: Path, repeats: int) -> list[Row]:
    compileall.compile_dir(ROOT / "runlane", quiet=1)  # an installed package has its bytecode
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT)
    timer = "import time; t = time.perf_counter(); {stmt}; print((time.perf_counter() - t) * 1000)"
    imports = [_python(timer.format(stmt="import runlane"), env) for _ in range(repeats)]
    json_imports = [_python(timer.format(stmt="import json, sqlite3"), env) for _ in range(repeats)]
    store = fresh_dir(work, "startup")
    runlane.init(project="startup", dir=store).finish()  # the store exists, as on every run but the first
    first_init = (
        "import time, runlane; t = time.perf_counter(); "
        f"r = runlane.init(project='startup', dir={str(store)!r}); "
        "e = (time.perf_counter() - t) * 1000; r.finish(); print(e)"
    )
    firsts = [_python(first_init, env) for _ in range(repeats)]
    warm = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run = runlane.init(project="startup", dir=store)
        warm.append((time.perf_counter() - begin) * 1000)
        run.finish()
    baseline = []
    for i in range(repeats):
        begin = time.perf_counter()
        conn = sqlite3.connect(work / f"init-baseline-{i}.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO runs (name) VALUES ('x')")
        conn.close()
        baseline.append((time.perf_counter() - begin) * 1000)
    med = statistics.median
    return [
        Row(
            "import runlane (fresh process)",
            med(imports),
            "ms",
            "import json, sqlite3",
            med(json_imports),
            "<= 150 ms",
            med(imports) <= 150,
        ),
        Row(
            "first init() in a fresh process (loads the SDK)",
            med(firsts),
            "ms",
            "SQLite open+insert",
            med(baseline),
            "<= 20 ms",
            med(firsts) <= 20,
        ),
        Row(
            "init() once the SDK is loaded",
            med(warm),
            "ms",
            "SQLite open+insert",
            med(baseline),
            "<= 20 ms",
            med(warm) <= 20,
        ),
    ]


def bench_history(work: Path, points: int, repeats: int) -> list[Row]:
    store = fresh_dir(work, "history")
    with runlane.init(project="history", dir=store) as run:
        for step in range(points):
            run.log({"loss": 1.0 / (step + 1)})
    baseline_db = work / "history-baseline.db"
    baseline_db.unlink(missing_ok=True)
    conn = sqlite3.connect(baseline_db, isolation_level=None)
    conn.execute("CREATE TABLE points (run INTEGER, key TEXT, step INTEGER, value REAL, time REAL)")
    conn.execute("CREATE INDEX points_by_series ON points (run, key, step)")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO points VALUES (1, 'loss', ?, ?, 0)", ((s, 1.0 / (s + 1)) for s in range(points)))
    conn.execute("COMMIT")
    conn.close()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT)
    ours = (
        f"import time, runlane; t = time.perf_counter(); api = runlane.Api({str(store)!r}); "
        f"h = api.history({run.id}, 'loss'); e = (time.perf_counter() - t) * 1000; assert len(h) == {points}; print(e)"
    )
    bare = (
        f"import time, sqlite3; t = time.perf_counter(); c = sqlite3.connect({str(baseline_db)!r}); "
        "h = c.execute(\"SELECT step, value, time FROM points WHERE run = 1 AND key = 'loss' ORDER BY step\")"
        f".fetchall(); e = (time.perf_counter() - t) * 1000; assert len(h) == {points}; print(e)"
    )
    runlane_ms = statistics.median(_python(ours, env) for _ in range(repeats))
    bare_ms = statistics.median(_python(bare, env) for _ in range(repeats))
    return [
        Row(
            f"full history of one metric, {points:,} points, fresh process",
            runlane_ms,
            "ms",
            "bare SQLite rows",
            bare_ms,
            "<= 60 ms",
            runlane_ms <= 60,
        ),
    ]


def bench_context(work: Path, repeats: int, files: int) -> list[Row]:
    """What run-context capture adds to init() and finish(), and what log_image() costs."""
    import numpy as np
    from PIL import Image

    store = fresh_dir(work, "context")
    workspace = fresh_dir(work, "workspace")
    for i in range(files):  # a source tree: small text files in a few packages
        path = workspace / f"pkg{i % 10}" / f"module_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\n" + "def f(x):\n    return x * 2  # some code\n" * 100)
    runlane.init(project="context", dir=store, system_metrics_interval=None).finish()  # the store exists

    def init_and_finish(**options: object) -> tuple[float, float]:
        init_ms, finish_ms = [], []
        for _ in range(repeats):
            begin = time.perf_counter()
            run = runlane.init(project="context", dir=store, **{"system_metrics_interval": None, **options})  # type: ignore[arg-type]
            started = time.perf_counter()
            run.finish()
            init_ms.append((started - begin) * 1000)
            finish_ms.append((time.perf_counter() - started) * 1000)
        return statistics.median(init_ms), statistics.median(finish_ms)

    plain_init, plain_finish = init_and_finish()
    env_init, env_finish = init_and_finish(capture_env=True)
    snap_init, snap_finish = init_and_finish(snapshot_code=True, workspace_root=workspace)
    console_init, console_finish = init_and_finish(capture_console=True)
    monitor_init, monitor_finish = init_and_finish(system_metrics_interval=10.0)
    monitor_met = monitor_init <= 20

    import psutil

    from runlane.sdk.capture.system import Sampler

    sampler = Sampler()
    sample_ms, cpu_times_ms = [], []
    for _ in range(repeats * 10):
        begin = time.perf_counter()
        sampler.sample()
        sample_ms.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        psutil.cpu_times()
        cpu_times_ms.append((time.perf_counter() - begin) * 1000)
    sampler.close()

    pixels = np.random.default_rng(0).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    run = runlane.init(project="context", dir=store, system_metrics_interval=None)
    image_ms = []
    for step in range(repeats * 5):
        pixels[0, 0, 0] = step % 256  # a new image each time: no shortcut through an existing blob
        begin = time.perf_counter()
        run.log_image("sample", pixels, step=step)
        image_ms.append((time.perf_counter() - begin) * 1000)
    run.finish()
    encode_ms = []
    for step in range(repeats * 5):
        pixels[0, 0, 0] = step % 256
        begin = time.perf_counter()
        Image.fromarray(pixels).save(io.BytesIO(), format="PNG")
        encode_ms.append((time.perf_counter() - begin) * 1000)
    med = statistics.median
    plain = "init(), nothing captured"
    plain_end = "finish(), nothing captured"
    return [
        Row("init(capture_env=True)", env_init, "ms", plain, plain_init, "<= 20 ms", env_init <= 20),
        Row("finish() after capture_env (waits for it)", env_finish, "ms", plain_end, plain_finish, "-", None),
        Row(f"init(snapshot_code=True), {files} files", snap_init, "ms", plain, plain_init, "-", None),
        Row(f"finish() after snapshot_code, {files} files", snap_finish, "ms", plain_end, plain_finish, "-", None),
        Row("init(capture_console=True)", console_init, "ms", plain, plain_init, "<= 20 ms", console_init <= 20),
        Row("finish() with capture_console", console_finish, "ms", plain_end, plain_finish, "-", None),
        Row("init() with the system monitor (default)", monitor_init, "ms", plain, plain_init, "<= 20 ms", monitor_met),
        Row("finish() with the system monitor", monitor_finish, "ms", plain_end, plain_finish, "-", None),
        Row("one system-metrics sample", med(sample_ms), "ms", "psutil.cpu_times()", med(cpu_times_ms), "-", None),
        Row("log_image() of a 256x256 RGB array", med(image_ms), "ms", "PIL PNG encode", med(encode_ms), "-", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke test")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory(prefix="runlane-bench-") as tmp:
        work = Path(tmp)
        rows: list[Row] = []
        rows += bench_log_cost(work, 200_000 // scale)
        rows += bench_ingest(work, 100_000 // scale)
        rows += bench_many_runs(work, 200 // scale, 1000)
        rows += bench_startup(work, 7 if not args.quick else 3)
        rows += bench_history(work, 100_000 // scale, 5 if not args.quick else 2)
        rows += bench_context(work, 15 if not args.quick else 3, 500 if not args.quick else 100)
    header = ["what", "runlane", "baseline (same run)", "ratio", "target", "met"]
    table = [header, ["---"] * len(header), *(row.cells() for row in rows)]
    print(f"runlane {runlane.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    for line in table:
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
