"""Ingest and reads through the tracking server over loopback, each beside a baseline measured in the same run.

- ingest, one client: a process logs STEPS steps of 10 metrics with ``init(url=...)`` and ``finish()``;
  points/s from its first ``log()`` until ``finish()`` returns (everything committed on the server).
  Baseline: the same journal batches (1 MiB of records each, as the drain sends them) applied in-process
  to a SQLite store of the same kind with ``Store.ingest``.
- ingest, four clients at once: the same, four processes together; points/s over the wall time until
  the last ``finish()`` returns. Baseline: four runs' batches applied in-process, one after another.
- delivery after an outage: a client logs STEPS x 10 points while the server is down and exits after a
  bounded ``finish()``; the server comes up and ``runlane sync --url`` delivers the spool. Time from the
  server answering until the run is complete on it. Baseline: the in-process ingest of the same points.
- bucketed read: ``Api(url=).history(key, buckets=1000)`` of a 1M-point series (median of 15). Baseline:
  the same call on ``Api(dir=)`` over the server's store.

    python benchmarks/bench_server.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgpack  # noqa: E402

import runlane  # noqa: E402
from runlane import journal  # noqa: E402
from runlane.store import open_store  # noqa: E402
from runlane.store.base import NewRun, WriterSpec  # noqa: E402

CLIENT = """
import sys, time
import runlane
steps = int(sys.argv[1])
metrics = {f"metric_{i}": 0.1 * i for i in range(10)}
run = runlane.init(project="bench", system_metrics_interval=None)
begin = time.perf_counter()
for step in range(steps):
    run.log(metrics)
run.finish(timeout=float(sys.argv[2]))
print(begin, time.perf_counter(), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, store: Path, port: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runlane", "server", "--store", str(store), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.process.stdout.readline()
        self.url = f"http://127.0.0.1:{port}"
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _client_env(url: str, spool: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RUNLANE_URL": url, "RUNLANE_SPOOL": str(spool)}


def _clients(count: int, steps: int, url: str, spool: Path, timeout: float = 600) -> float:
    """Wall seconds until ``count`` clients logging ``steps`` steps of 10 metrics have all finished."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CLIENT), str(steps), str(timeout)],
            env=_client_env(url, spool),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    outs = [proc.communicate(timeout=timeout + 60)[0] for proc in procs]
    for proc in procs:
        assert proc.returncode == 0
    firsts = [float(out.split()[0]) for out in outs]
    lasts = [float(out.split()[1]) for out in outs]
    return max(lasts) - min(firsts)


def _batches(steps: int, keys: int = 10) -> list[tuple[list[list[Any]], int, int]]:
    """The journal batches the drain would send for ``steps`` steps of ``keys`` metrics (1 MiB each)."""
    metrics = {f"metric_{i}": 0.1 * i for i in range(keys)}
    out: list[tuple[list[list[Any]], int, int]] = []
    records: list[list[Any]] = []
    start = size = 0
    now = time.time()
    for step in range(steps):
        record = list(journal.Metrics.new(now + step * 1e-3, step, None, metrics))
        records.append(record)
        size += len(msgpack.packb(record))
        if size >= 1024 * 1024:
            out.append((records, start, start + size))
            start, size, records = start + size, 0, []
    if records:
        out.append((records, start, start + size))
    return out


def _in_process(store_dir: Path, runs: int, batches: list[tuple[list[list[Any]], int, int]]) -> float:
    """Seconds to apply ``batches`` as ``runs`` runs into a fresh SQLite store with ``Store.ingest``."""
    with open_store(store_dir) as store:
        start = time.perf_counter()
        for index in range(runs):
            writer = WriterSpec(f"w{index:031d}", "bench", 0, None, f"journals/w{index}.rlj")
            info = store.create_run(NewRun(uid=f"u{index:031d}", project="bench"), writer)
            for records, first, last in batches:
                store.ingest(writer.id, info.id, records, first, last)
        return time.perf_counter() - start


def _row(what: str, value: str, baseline: str, ratio: float, target: str, met: str) -> str:
    return f"| {what} | {value} | {baseline} | {ratio:.2f}x | {target} | {met} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a smoke test")
    args = parser.parse_args()
    steps = 10_000 if args.quick else 100_000
    points = steps * 10
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batches = _batches(steps)
        base_one = _in_process(root / "base1", 1, batches)
        base_four = _in_process(root / "base4", 4, batches)

        port = _free_port()
        server = Server(root / "server-store", port)
        try:
            one = _clients(1, steps, server.url, root / "spool1")
            four = _clients(4, steps, server.url, root / "spool4")
        finally:
            server.stop()
        rows.append(_row("ingest through the server, 1 client", f"{points / one / 1e6:.2f} M points/s",
                         f"in-process ingest: {points / base_one / 1e6:.2f} M points/s", base_one / one,
                         ">= 0.5 M points/s", "yes" if points / one >= 5e5 else "no"))  # fmt: skip
        rows.append(_row("ingest through the server, 4 clients", f"{4 * points / four / 1e6:.2f} M points/s",
                         f"in-process ingest: {4 * points / base_four / 1e6:.2f} M points/s", base_four / four,
                         ">= 1 M points/s", "yes" if 4 * points / four >= 1e6 else "no"))  # fmt: skip

        # Delivery after an outage: the server is down for the client's whole life.
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        spool = root / "spool-outage"
        argv = [sys.executable, "-c", textwrap.dedent(CLIENT), str(steps), "0.1"]
        subprocess.run(argv, env=_client_env(url, spool), capture_output=True, timeout=600, check=True)
        server = Server(root / "outage-store", port)
        try:
            back = time.perf_counter()
            sync = subprocess.run([sys.executable, "-m", "runlane", "sync", "--url", url], env=_client_env(url, spool),
                                  capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
            if sync.returncode != 0:
                raise RuntimeError(f"runlane sync failed: {sync.stderr}")
            with runlane.Api(url=url) as api:
                (run,) = api.runs(project="bench")
                while run.status != "finished":  # the client's orphaned drain may be the one delivering
                    time.sleep(0.01)
                    run = api.run(run.uid)
                assert run.metrics["metric_0"].count == steps
            delivered = time.perf_counter() - back
        finally:
            server.stop()
        rows.append(_row(f"delivery after an outage, {points / 1e6:g}M points", f"{delivered:.2f} s",
                         f"in-process ingest: {base_one:.2f} s", delivered / base_one, "<= 5 s (1M points)",
                         "yes" if delivered <= 5 else "no"))  # fmt: skip

        # Bucketed reads of a 1M-point series over HTTP, beside the same reads of the store itself.
        store_dir = root / "read-store"
        series = 100_000 if args.quick else 1_000_000
        long = _batches(series, keys=1)
        with open_store(store_dir) as store:
            writer = WriterSpec("r" * 32, "bench", 0, None, "journals/r.rlj")
            info = store.create_run(NewRun(uid="s" * 32, project="read"), writer)
            for records, first, last in long:
                store.ingest(writer.id, info.id, records, first, last)
        port = _free_port()
        server = Server(store_dir, port)
        try:
            timings = {}
            for name, api in (("http", runlane.Api(url=server.url)), ("local", runlane.Api(store_dir))):
                api.history(info.uid, "metric_0", buckets=1000)  # warm
                samples = []
                for _ in range(15):
                    start = time.perf_counter()
                    api.history(info.uid, "metric_0", buckets=1000)
                    samples.append(time.perf_counter() - start)
                api.close()
                timings[name] = statistics.median(samples)
        finally:
            server.stop()
        what = f"{series / 1e6:g}M-point series as 1,000 buckets over HTTP, median"
        local = f"Api(dir=): {timings['local'] * 1e3:.1f} ms"
        rows.append(_row(what, f"{timings['http'] * 1e3:.1f} ms", local, timings["http"] / timings["local"],
                         "<= 50 ms", "yes" if timings["http"] <= 0.05 else "no"))  # fmt: skip
    print("| what | runlane | baseline (same run) | ratio | target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
