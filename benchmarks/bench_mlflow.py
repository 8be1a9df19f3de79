"""The real mlflow client against runlane's server and against `mlflow server` on SQLite, in the same run.

MLflow itself is not one of runlane's dependencies: install it into an environment of its own and name
that environment; its `mlflow server` is the baseline and its client drives both servers (the same client
code, so only the server differs):

    python -m venv /tmp/mlflow-env && /tmp/mlflow-env/bin/pip install mlflow
    python benchmarks/bench_mlflow.py --mlflow-env /tmp/mlflow-env            # 1,000 calls, 100,000 values
    python benchmarks/bench_mlflow.py --mlflow-env /tmp/mlflow-env --quick    # 200 calls, 20,000 values

Rows: `MlflowClient.log_metric` one call at a time (each one HTTP request and one store transaction on the
server), and `log_batch` of 100,000 values (the client splits it into requests of 1,000).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = r"""
import json, statistics, sys, time, warnings
warnings.simplefilter("ignore")
from mlflow import MlflowClient
from mlflow.entities import Metric
url, calls, values = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = MlflowClient(tracking_uri=url)
run = client.create_run("0")
client.log_metric(run.info.run_id, "warmup", 0.0)
times = []
for i in range(calls):
    start = time.perf_counter()
    client.log_metric(run.info.run_id, "loss", 1.0 / (i + 1), step=i)
    times.append(time.perf_counter() - start)
batch = [Metric(f"m{i % 10}", float(i), 1_700_000_000_000 + i, i // 10) for i in range(values)]
start = time.perf_counter()
client.log_batch(run.info.run_id, metrics=batch)
batch_s = time.perf_counter() - start
stored = len(client.get_metric_history(run.info.run_id, "m0"))
print(json.dumps({"mean": statistics.fmean(times), "median": statistics.median(times), "batch": batch_s,
                  "stored": stored}))
"""

CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, path: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url + path, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} never answered:\n{log.read_text(errors='replace')}")


def start_runlane(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    log = tmp / "runlane.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "runlane", "server", "--store", str(tmp / "runlane"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )  # fmt: skip
    assert process.stdout is not None
    found = re.search(r"http://\S+", process.stdout.readline())
    if found is None:
        raise SystemExit(f"runlane server did not start:\n{log.read_text(errors='replace')}")
    wait_for(found.group(0), "/api/v1/health", process, log)
    return process, found.group(0)


def start_mlflow(tmp: Path, env_dir: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    log = tmp / "mlflow.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [str(env_dir / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
             "--default-artifact-root", str(tmp / "mlflow-artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=err, stderr=err, text=True, env={**os.environ, **CLIENT_ENV},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(url, "/health", process, log)
    return process, url


def measure(env_dir: Path, url: str, calls: int, values: int) -> dict[str, float]:
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", WORKLOAD, url, str(calls), str(values)],
        capture_output=True, text=True, check=False, env={**os.environ, **CLIENT_ENV}, timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the client against {url} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["stored"] != values // 10:
        raise SystemExit(f"{url} stored {result['stored']} points of m0, expected {values // 10}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlflow-env", type=Path, required=True, help="a virtual environment with mlflow installed")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls, values = (200, 20_000) if args.quick else (1_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as name:
        tmp = Path(name)
        servers = [start_runlane(tmp), start_mlflow(tmp, args.mlflow_env)]
        try:
            ours, theirs = (measure(args.mlflow_env, url, calls, values) for _, url in servers)
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait(timeout=30)
    rows = [
        (f"log_metric, one call, mean of {calls:,}", ours["mean"] * 1e3, theirs["mean"] * 1e3, "ms"),
        (f"log_metric, one call, median of {calls:,}", ours["median"] * 1e3, theirs["median"] * 1e3, "ms"),
        (f"log_batch of {values:,} values", ours["batch"], theirs["batch"], "s"),
        (f"log_batch of {values:,} values, throughput", values / ours["batch"], values / theirs["batch"], "values/s"),
    ]
    print("| what | runlane server | mlflow server, SQLite (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    for what, mine, baseline, unit in rows:
        print(f"| {what} | {mine:,.2f} {unit} | {baseline:,.2f} {unit} | {mine / baseline:.2f}x |")


if __name__ == "__main__":
    main()
