"""What the training loop pays for ingest: log() with the store filling concurrently, finish(), memory.

Each workload runs in a fresh Python process, as users meet it, and is printed beside a baseline
measured in the same run (these machines are shared and noisy, so the ratio is what to compare):

- log() of 10 scalars, 100,000 steps: the mean (loop time / calls, what a training loop loses), the
  median and p99 (each call timed), while ingest runs. Baseline: packing the same record with msgpack
  and appending it with ``os.write`` (the least any durable logger does), timed the same way.
- loop-to-finish: from the first log() until finish() returns, and finish() alone.
- peak RSS of the training process at 20,000 and 1,000,000 steps of 10 metrics, beside the RSS of the
  same process after ``init()`` (the growth is what a long run costs).
- 200 runs x 1,000 steps x 5 metrics one after another. Baselines: bare SQLite inserts of the points on one
  connection, and the same with a connection opened and closed per run (a run lets go of the store at its
  end, so the close checkpoints the write-ahead log: the floor of a run that does).
- first init() of a fresh process on an existing store, wall and CPU time (CPU time is what to judge on a
  loaded machine, where the wall clock mostly measures waiting for a core).

``--before PATH`` also measures another checkout of runlane (e.g. a git worktree of an older commit)
in the same run, so a change can be judged against the code it replaces.

    python benchmarks/bench_writer.py [--quick] [--before ../runlane-old]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOG_LOOP = """
import json, os, resource, sys, time
import runlane
STEPS = {steps}
metrics = {{f"metric_{{i}}": 0.1 * i for i in range(10)}}
run = runlane.init(project="bench", dir={store!r}, system_metrics_interval=None)
rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
clock = time.perf_counter_ns
samples = [0] * (STEPS if {timed} else 1)  # no per-call samples where memory is measured
begin = time.perf_counter()
if {timed}:
    for i in range(STEPS):
        t = clock()
        run.log(metrics)
        samples[i] = clock() - t
else:
    for i in range(STEPS):
        run.log(metrics)
last = time.perf_counter()
run.finish()
done = time.perf_counter()
rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
samples.sort()
print(json.dumps({{
    "mean_us": (last - begin) / STEPS * 1e6,
    "median_us": samples[len(samples) // 2] / 1000,
    "p99_us": samples[int(len(samples) * 0.99)] / 1000,
    "loop_to_finish_s": done - begin,
    "finish_ms": (done - last) * 1000,
    "rss_start_mb": rss_start / 1024,
    "rss_peak_mb": rss_end / 1024,
}}))
"""

BARE_LOOP = """
import json, os, time
import msgpack
STEPS = {steps}
metrics = {{f"metric_{{i}}": 0.1 * i for i in range(10)}}
packer = msgpack.Packer(use_bin_type=True, use_single_float=False)
fd = os.open({path!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
clock = time.perf_counter_ns
samples = [0] * STEPS
begin = time.perf_counter()
for i in range(STEPS):
    t = clock()
    os.write(fd, packer.pack((0, time.time(), i, None, metrics)))
    samples[i] = clock() - t
last = time.perf_counter()
samples.sort()
print(json.dumps({{
    "mean_us": (last - begin) / STEPS * 1e6,
    "median_us": samples[STEPS // 2] / 1000,
    "p99_us": samples[int(STEPS * 0.99)] / 1000,
}}))
"""

MANY_RUNS = """
import json, time
import runlane
begin = time.perf_counter()
for r in range({runs}):
    run = runlane.init(project="many", dir={store!r}, system_metrics_interval=None)
    for step in range({steps}):
        run.log({{"a": step, "b": 0.5, "c": r, "d": 1.0, "e": 2.0}})
    run.finish()
print(json.dumps({{"s": time.perf_counter() - begin}}))
"""

MANY_BARE = """
import json, sqlite3, time
conn = sqlite3.connect({path!r}, isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = NORMAL")
conn.execute("CREATE TABLE points (run INTEGER, key TEXT, step INTEGER, value REAL)")
begin = time.perf_counter()
for r in range({runs}):
    conn.execute("BEGIN")
    rows = ((r, k, s, 1.0) for s in range({steps}) for k in "abcde")
    conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
print(json.dumps({{"s": time.perf_counter() - begin}}))
"""

MANY_BARE_REOPENED = """
import json, sqlite3, time
path = {path!r}
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("CREATE TABLE points (run INTEGER, key TEXT, step INTEGER, value REAL)")
conn.close()
begin = time.perf_counter()
for r in range({runs}):
    # What a run that lets go of the store at its end pays: the last connection's close checkpoints the
    # write-ahead log into the database, and the next run's first commit starts a new log.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("BEGIN")
    rows = ((r, k, s, 1.0) for s in range({steps}) for k in "abcde")
    conn.executemany("INSERT INTO points VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()
print(json.dumps({{"s": time.perf_counter() - begin}}))
"""

FIRST_INIT = """
import time
t, cpu = time.perf_counter(), time.process_time()
import runlane
run = runlane.init(project="startup", dir={store!r})
elapsed, cpu_elapsed = (time.perf_counter() - t) * 1000, (time.process_time() - cpu) * 1000
run.finish()
print('{{"ms": %f, "cpu_ms": %f}}' % (elapsed, cpu_elapsed))
"""


IMPORT_ONLY = """
import time
t, cpu = time.perf_counter(), time.process_time()
import runlane
print('{{"ms": %f, "cpu_ms": %f}}' % ((time.perf_counter() - t) * 1000, (time.process_time() - cpu) * 1000))
"""


def measure(code: str, tree: Path, **values: object) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code.format(**values))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def median_of(code: str, tree: Path, repeats: int, key: str, **values: object) -> float:
    return statistics.median(measure(code, tree, **values)[key] for _ in range(repeats))


def row(what: str, value: float, unit: str, base_name: str, base: float, target: str, met: bool | None) -> list[str]:
    ratio = value / base if base else float("nan")
    verdict = "-" if met is None else ("yes" if met else "NO")
    return [what, f"{value:,.2f} {unit}", f"{base_name}: {base:,.2f} {unit}", f"{ratio:.2f}x", target, verdict]


def bench_tree(label: str, tree: Path, work: Path, quick: bool) -> list[list[str]]:
    import compileall

    compileall.compile_dir(tree / "runlane", quiet=1)  # an installed package has its bytecode
    steps = 10_000 if quick else 100_000
    tag = f" [{label}]" if label else ""
    rows: list[list[str]] = []

    log = measure(LOG_LOOP, tree, steps=steps, timed=True, store=str(work / f"log-{label}"))
    bare = measure(BARE_LOOP, tree, steps=steps, path=str(work / f"bare-{label}.bin"))
    mean_target = min(3.0, 2.5 * bare["mean_us"])
    rows += [
        row(f"log() of 10 scalars, mean with ingest running{tag}", log["mean_us"], "us", "msgpack+os.write",
            bare["mean_us"], "<= 3 us and <= 2.5x", log["mean_us"] <= mean_target),
        row(f"log() median{tag}", log["median_us"], "us", "msgpack+os.write", bare["median_us"], "-", None),
        row(f"log() p99{tag}", log["p99_us"], "us", "msgpack+os.write", bare["p99_us"], "<= 30 us",
            log["p99_us"] <= 30),
        row(f"{steps:,} steps: first log() to finish() returned{tag}", log["loop_to_finish_s"], "s",
            "the same appends, no store", bare["mean_us"] * steps / 1e6, "-", None),
        row(f"finish() after the last log(){tag}", log["finish_ms"], "ms", "-", 0.0, "<= 1000 ms",
            log["finish_ms"] <= 1000),
    ]  # fmt: skip
    for rss_steps in (20_000, 1_000_000 if not quick else 100_000):
        rss = measure(LOG_LOOP, tree, steps=rss_steps, timed=False, store=str(work / f"rss-{label}-{rss_steps}"))
        rows.append(
            row(f"peak RSS after {rss_steps:,} steps of 10 metrics{tag}", rss["rss_peak_mb"], "MB",
                "RSS after init()", rss["rss_start_mb"], "not growing with steps", None)
        )  # fmt: skip
    runs = 20 if quick else 200
    many = measure(MANY_RUNS, tree, runs=runs, steps=1000, store=str(work / f"many-{label}"))
    many_bare = measure(MANY_BARE, tree, runs=runs, steps=1000, path=str(work / f"many-{label}.db"))
    reopened = measure(MANY_BARE_REOPENED, tree, runs=runs, steps=1000, path=str(work / f"many-{label}-r.db"))
    target = 3.0 * runs / 200
    rows += [
        row(f"{runs} runs x 1,000 steps x 5 metrics{tag}", many["s"], "s", "bare SQLite inserts", many_bare["s"],
            f"<= {target:g} s", many["s"] <= target),
        row(f"{runs} runs, against a connection opened and closed per run{tag}", many["s"], "s",
            "bare SQLite, reopened", reopened["s"], "-", None),
    ]  # fmt: skip
    store = work / f"startup-{label}"
    measure(FIRST_INIT, tree, store=str(store))  # the store exists, as on every run but the first
    repeats = 3 if quick else 9
    firsts = [measure(FIRST_INIT, tree, store=str(store)) for _ in range(repeats)]
    imports = [measure(IMPORT_ONLY, tree) for _ in range(repeats)]
    for key, what in (("ms", "wall"), ("cpu_ms", "CPU")):
        first = statistics.median(m[key] for m in firsts)
        import_only = statistics.median(m[key] for m in imports)
        rows.append(
            row(f"first init() of a fresh process, import included, {what} time{tag}", first, "ms",
                "import runlane", import_only, "init() <= 20 ms", first - import_only <= 20)
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--before", type=Path, help="another runlane checkout to measure in the same run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runlane-bench-writer-") as tmp:
        work = Path(tmp)
        rows = bench_tree("" if args.before is None else "now", ROOT, work, args.quick)
        if args.before is not None:
            rows += bench_tree("before", args.before.resolve(), work, args.quick)
    header = ["what", "runlane", "baseline (same run)", "ratio", "target", "met"]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    for line in [header, ["---"] * len(header), *rows]:
        print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
