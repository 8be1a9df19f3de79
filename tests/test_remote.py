"""Remote runs through a real server process: outages, server crashes, memory while the server is down."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import runlane
from runlane import Api
from runlane.naming import RunRef
from runlane.store.base import NewRun, WriterSpec
from runlane.store.http import HttpStore

from .conftest import script_env
from .servers import Server, launch, running_server, wait_ready


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(store: Path, port: int, log: Path, env: dict[str, str] | None = None) -> Server:
    process = launch(["server", "--store", str(store), "--port", str(port)], log, env)
    return Server(process, wait_ready(process, log), log)


@contextmanager
def _server_on(store: Path, port: int, log: Path) -> Iterator[Server]:
    server = _start(store, port, log)
    try:
        yield server
    finally:
        server.stop()


def _client(code: str, tmp_path: Path, url: str, **extra: str) -> subprocess.Popen[str]:
    env = script_env(tmp_path / "no-local-store", RUNLANE_URL=url, **extra)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


OUTAGE_CLIENT = """
    import numpy as np
    import runlane
    run = runlane.init(project="outage", name="whole-life", config={"lr": 0.1}, system_metrics_interval=None)
    print("ids", run.id, run.display_id, run.uid, flush=True)
    for step in range(20_000):
        run.log(loss=1 / (step + 1), step=step)
    for i in range(50):
        run.log_text(f"line {i}")
    run.log_image("img", np.full((4, 4), 7, dtype=np.uint8), caption="seven")
    run.finish(timeout=1)
"""


@pytest.mark.parametrize("deliverer", ["sync", "next_process"])
def test_a_run_whose_server_was_down_all_its_life_is_delivered_once_later(tmp_path: Path, deliverer: str) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    client = _client(OUTAGE_CLIENT, tmp_path, url)
    out, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    _, run_id, display_id, uid = out.split()
    assert (run_id, display_id) == ("None", "None")  # unknown until the server is back
    assert "20,052 record(s) are unsent, kept in " in err
    spool = Path(err.split("kept in ")[1].split(";")[0])
    assert spool.exists()
    came_back = time.time()
    with _server_on(tmp_path / "server-store", port, tmp_path / "server.log") as server:
        if deliverer == "sync":
            done = subprocess.run([sys.executable, "-m", "runlane", "sync", "--url", url], capture_output=True,
                                  text=True, timeout=120, env=script_env(tmp_path / "none"), check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr
        else:
            done = subprocess.run(
                [sys.executable, "-c", "import runlane; runlane.init(project='next').finish()"],
                capture_output=True, text=True, timeout=120, env=script_env(tmp_path / "none", RUNLANE_URL=url),
                check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        with Api(url=server.url) as api:
            run = api.run(uid)
            assert run.status == "finished"
            assert run.display_id == "OUT-1"
            assert run.created_at < came_back  # it began when the client started it, not when it was delivered
            assert run.created_at < run.ended_at < came_back  # type: ignore[operator]
            history = api.history(uid, "loss")
            assert history.steps == list(range(20_000))
            assert [line.text for line in api.logs(uid)] == [f"line {i}" for i in range(50)]
            (image,) = api.images(uid)
            assert image.caption == "seven"
            assert api.open_image(image).getpixel((0, 0)) == 7
            assert run.config == {"lr": 0.1}
        assert not spool.exists()
        assert not list(spool.parent.glob("*.start"))


CHAOS_CLIENT = """
    import sys, time
    import runlane
    index, steps = int(sys.argv[1]), int(sys.argv[2])
    run = runlane.init(project="chaos", name=f"client-{index}", system_metrics_interval=None)
    print(run.uid, flush=True)
    for step in range(steps):
        run.log(loss=step * 0.5, acc=index + step, step=step)
        if step % 200 == 0:
            run.log_text(f"client {index} step {step}")
        if step % 1000 == 0:
            time.sleep(0.05)  # spread the logging over the server's crashes
    run.finish(timeout=300)
"""


def test_a_server_killed_three_times_while_four_clients_log_loses_and_repeats_nothing(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    store, log = tmp_path / "server-store", tmp_path / "server.log"
    steps = 20_000
    server = _start(store, port, log)
    clients = []
    for index in range(4):
        env = script_env(tmp_path / "no-local-store", RUNLANE_URL=url)
        code = textwrap.dedent(CHAOS_CLIENT)
        clients.append(subprocess.Popen([sys.executable, "-c", code, str(index), str(steps)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    pause = threading.Event()  # never set: waits of a random length, to kill the server at random moments
    chance = random.Random()
    for _ in range(3):
        pause.wait(chance.uniform(0.3, 2.5))
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=20)
        server.stop()  # closes its pipe
        server = _start(store, port, log)
    try:
        results = [client.communicate(timeout=300) for client in clients]
        for client, (_, err) in zip(clients, results, strict=True):
            assert client.returncode == 0, err
            assert "unsent" not in err
        uids = [out.split()[0] for out, _ in results]
        with Api(url=url) as api:
            for index, uid in enumerate(uids):
                run = api.run(uid)
                assert run.status == "finished", run.status_reason
                assert run.metrics["loss"].count == run.metrics["acc"].count == steps
                assert api.history(uid, "acc").values == [float(index + step) for step in range(steps)]
                lines = [line.text for line in api.logs(uid)]
                assert lines == [f"client {index} step {step}" for step in range(0, steps, 200)]
    finally:
        server.stop()


RSS_CLIENT = """
    import psutil
    import runlane
    me = psutil.Process()
    run = runlane.init(project="memory", system_metrics_interval=None)
    for step in range(10_000):
        run.log(loss=step, acc=step, step=step)
    start = me.memory_info().rss
    for step in range(10_000, 5_000_000):
        run.log(loss=step, step=step)
    print(start, me.memory_info().rss, flush=True)
    run.finish(timeout=0.5)
"""


def test_memory_stays_flat_while_the_server_is_down(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    client = _client(RSS_CLIENT, tmp_path, url)
    out, err = client.communicate(timeout=600)
    assert client.returncode == 0, err
    start, end = map(int, out.split())
    assert end - start < 100 * 1024 * 1024, f"RSS grew by {(end - start) >> 20} MiB"
    assert "5,000,001 record(s) are unsent" in err  # 4,990,000 + 10,000 log() calls and the END record
    with _server_on(tmp_path / "server-store", port, tmp_path / "server.log"):  # deliver, so no drain lingers
        done = subprocess.run([sys.executable, "-m", "runlane", "sync", "--url", url], capture_output=True,
                              text=True, timeout=600, env=script_env(tmp_path / "none"), check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        with Api(url=url) as api:
            (run,) = api.runs(project="memory")
            assert run.metrics["loss"].count == 5_000_000


def test_offline_mode_records_locally_even_with_a_server_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLANE_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    monkeypatch.setenv("RUNLANE_MODE", "offline")
    local = tmp_path / "local"
    run = runlane.init(project="offline", dir=local, system_metrics_interval=None)
    assert isinstance(run, runlane.Run)
    run.log(loss=1.0)
    run.finish()
    assert run.dir == local
    with Api(local) as api:
        assert api.run(run.uid).status == "finished"
    with pytest.raises(ValueError, match="offline mode records runs in an embedded store"):
        runlane.init(dir="http://127.0.0.1:1")


def test_url_and_dir_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        runlane.init(dir=tmp_path, url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="url='ftp://x' is not a runlane server's URL"):
        runlane.init(url="ftp://x")


def test_the_server_fails_runs_whose_remote_writers_stopped_heartbeating(tmp_path: Path) -> None:
    env = {**os.environ, "RUNLANE_REMOTE_TIMEOUT": "1"}
    with running_server(tmp_path / "store", tmp_path / "server.log", env=env) as server:
        store = HttpStore(server.url)
        try:
            elsewhere = WriterSpec("a" * 32, "another-machine", 4242, 1.0, "/spool/4242.x.rlj", "ns")
            info = store.create_run(NewRun(uid="b" * 32, project="remote"), elsewhere)
            deadline = time.monotonic() + 60
            while store.run(RunRef("id", info.id)).status == "running":
                assert time.monotonic() < deadline, "the server never failed the abandoned run"
                time.sleep(0.1)
            failed = store.run(RunRef("id", info.id))
            assert failed.status == "failed"
            assert "process 4242 on another-machine exited without finishing the run" in str(failed.status_reason)
        finally:
            store.close()


def test_sync_copies_the_local_store_when_runlane_url_names_the_server(tmp_path: Path) -> None:
    local = tmp_path / "local"
    run = runlane.init(project="here", dir=local, system_metrics_interval=None)
    assert isinstance(run, runlane.Run)
    run.log(loss=1.0)
    run.finish()
    with running_server(tmp_path / "server-store", tmp_path / "server.log") as server:
        # The shell of someone who logs remotely has RUNLANE_URL set: the source is still RUNLANE_DIR.
        env = script_env(local, RUNLANE_URL=server.url)
        done = subprocess.run([sys.executable, "-m", "runlane", "sync", "--url", server.url], env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("synced 1 run(s) (1 new")
        with Api(url=server.url) as api:
            assert api.run(run.uid).status == "finished"


def test_a_registration_the_server_refuses_later_is_kept_with_its_journal_and_not_retried(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    code = """
        import runlane
        run = runlane.init(project="orphan", parent_run_id="ZZ-9", system_metrics_interval=None)
        run.log(loss=1.0)
        run.finish(timeout=0.5)
    """
    client = _client(code, tmp_path, url)
    _, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    spool = Path(err.split("kept in ")[1].split(";")[0]).parent
    with _server_on(tmp_path / "server-store", port, tmp_path / "server.log"):
        done = subprocess.run([sys.executable, "-m", "runlane", "sync", "--url", url], capture_output=True,
                              text=True, timeout=120, env=script_env(tmp_path / "none"), check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        # Said by whoever met the refusal first: the sync, or the client's drain once the server was back.
        assert "ZZ-9" in done.stderr + (spool / "drain.log").read_text()
        (refused,) = spool.glob("*.start.refused")
        assert refused.with_name(refused.name.replace(".start.refused", ".rlj")).exists()  # nothing is lost
        assert not list(spool.glob("*.start"))
        with Api(url=url) as api:
            assert api.runs() == []


def test_a_remote_run_sends_its_api_key_from_init_or_the_environment(tmp_path: Path) -> None:
    store = tmp_path / "server-store"

    def new_key(*flags: str) -> str:
        made = subprocess.run([sys.executable, "-m", "runlane", "keys", "create", f"k{len(flags)}", *flags, "--store",
                               str(store)], capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return made.stdout.strip().splitlines()[-1]

    key, read_only = new_key(), new_key("--read-only")
    with running_server(store, tmp_path / "server.log") as server:
        code = """
            import os, runlane
            run = runlane.init(project="keyed", url=os.environ["URL"], api_key=os.environ.get("KEY") or None,
                               system_metrics_interval=None)
            run.log(loss=1.0)
            run.finish()
            print(run.uid)
        """
        given = _client(code, tmp_path, server.url, URL=server.url, KEY=key)  # api_key=: the drain gets it too
        out, err = given.communicate(timeout=120)
        assert given.returncode == 0, err
        from_env = _client(code, tmp_path, server.url, URL=server.url, RUNLANE_API_KEY=key)
        out_env, err = from_env.communicate(timeout=120)
        assert from_env.returncode == 0, err
        with Api(url=server.url, api_key=read_only) as api:
            for uid in (out.strip(), out_env.strip()):
                assert api.run(uid).status == "finished"
                assert api.history(uid, "loss").values == [1.0]
        refused = _client(code, tmp_path, server.url, URL=server.url, KEY=read_only)
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 1
        assert "RUNLANE_API_KEY" in err  # a key that may not write is an error at init(), not an outage
