"""Real ``runlane server`` subprocesses on free ports, for the server and HTTP store tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_S = 60.0


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()


def launch(args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "runlane", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env or dict(os.environ),
        )


def wait_ready(process: subprocess.Popen[str], log: Path) -> str:
    """The URL the server printed, once its health route answers."""
    assert process.stdout is not None
    line = process.stdout.readline()  # the server prints its URL, or exits
    found = re.search(r"http://\S+", line)
    if found is None:
        process.wait(timeout=20)
        raise AssertionError(f"server did not start: {line!r}\n{log.read_text(errors='replace')}")
    url = found.group(0)
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"server at {url} never answered:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


@contextmanager
def running_server(store: str | Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``runlane server --store STORE --port 0`` until the block ends."""
    process = launch(["server", "--store", str(store), "--port", "0", *extra], log, env)
    server = Server(process, "", log)
    try:
        server.url = wait_ready(process, log)
        yield server
    finally:
        server.stop()
