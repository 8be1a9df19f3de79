"""The run lifecycle on the embedded store: ids, resume, finish vs close, automatic ends, no-op runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runlane
from runlane.config import Settings
from runlane.errors import RunClosedError

from .conftest import run_script, start_script
from .remote import store_dir as _local_and_remote

store_dir = _local_and_remote  # every test here runs on a local store and on a server


def test_display_ids_are_sequential_per_project(store_dir: Path) -> None:
    ids = []
    for _ in range(3):
        with runlane.init(project="my-ml-project", dir=store_dir) as run:
            ids.append(run.display_id)
    other = runlane.init(project="vision/resnet", dir=store_dir)
    other.finish()
    assert ids == ["MMP-1", "MMP-2", "MMP-3"]
    assert other.display_id == "VR-1"
    with runlane.Api(store_dir) as api:
        assert {(p.name, p.key, p.run_count) for p in api.projects()} == {
            ("my-ml-project", "MMP", 3),
            ("vision/resnet", "VR", 1),
        }


def test_projects_whose_names_give_the_same_key_get_different_keys(store_dir: Path) -> None:
    a = runlane.init(project="my-project", dir=store_dir)
    b = runlane.init(project="my/project", dir=store_dir)
    a.finish()
    b.finish()
    assert a.display_id.split("-")[0] != b.display_id.split("-")[0]
    assert a.display_id == "MP-1"


def test_eight_processes_creating_runs_at_once_get_distinct_display_ids(store_dir: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = f"""
        import os, time, runlane
        deadline = time.monotonic() + 60
        while not os.path.exists({str(go)!r}):
            assert time.monotonic() < deadline, "the test never said go"
            time.sleep(0.001)
        run = runlane.init(project="race")
        print(run.display_id, flush=True)
        run.finish()
    """
    procs = [start_script(code, store_dir) for _ in range(8)]
    time.sleep(0.5)  # let every interpreter start and reach the barrier
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    assert sorted(outputs, key=lambda d: int(d.split("-")[1])) == [f"RAC-{i}" for i in range(1, 9)]
    with runlane.Api(store_dir) as api:
        assert len(api.runs(project="race")) == 8


def test_resume_by_numeric_and_display_id_reopens_and_continues_steps(store_dir: Path) -> None:
    run = runlane.init(project="p", config={"lr": 0.1}, dir=store_dir)
    for loss in (0.9, 0.8, 0.7):
        run.log({"loss": loss})
    run.finish()
    with runlane.Api(store_dir) as api:
        assert api.run(run.id).status == "finished"
        assert api.run(run.id).ended_at is not None

    again = runlane.init(project="p", run_id=run.id, resume=True, dir=store_dir)
    assert again.status == "running"
    assert again.step == 3
    with runlane.Api(store_dir) as api:
        reopened = api.run(run.display_id)
        assert reopened.status == "running"
        assert reopened.ended_at is None
    again.log({"loss": 0.6})
    again.finish()

    third = runlane.init(run_id=run.display_id, resume=True, dir=store_dir)
    assert third.step == 4
    third.log({"loss": 0.5})
    third.finish()
    with runlane.Api(store_dir) as api:
        steps = [(p.step, p.value) for p in api.history(run.display_id, "loss")]
        assert steps == [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.6), (4, 0.5)]
        assert api.run(run.uid).config == {"lr": 0.1}


def test_resume_by_uid_and_with_config_and_tags(store_dir: Path) -> None:
    run = runlane.init(project="p", config={"a": {"b": 1}}, tags=["x"], dir=store_dir)
    run.finish()
    again = runlane.init(run_id=run.uid, resume=True, config={"a": {"c": 2}}, tags=["y"], dir=store_dir)
    again.finish()
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
    assert info.config == {"a": {"b": 1, "c": 2}}
    assert info.tags == ("x", "y")


def test_resume_in_another_project_is_refused(store_dir: Path) -> None:
    run = runlane.init(project="p", dir=store_dir)
    run.finish()
    with pytest.raises(ValueError, match="belongs to project 'p'"):
        runlane.init(project="q", run_id=run.id, resume=True, dir=store_dir)
    with runlane.Api(store_dir) as api:
        assert api.run(run.id).status == "finished"


def test_close_keeps_status_is_idempotent_and_later_finish_is_a_noop(store_dir: Path) -> None:
    run = runlane.init(project="p", dir=store_dir)
    run.log({"x": 1.0})
    run.close()
    run.close()
    run.finish()
    assert run.status == "running"
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
        assert info.status == "running"
        assert api.history(run.id, "x")[0].value == 1.0
        assert all(w.closed_at is not None for w in info.writers)


def test_finish_defaults_to_finished_accepts_aliases_and_is_idempotent(store_dir: Path) -> None:
    first = runlane.init(project="p", dir=store_dir)
    first.finish()
    first.finish("failed")  # a second finish does nothing
    second = runlane.init(project="p", dir=store_dir)
    second.finish("Interrupted")
    third = runlane.init(project="p", dir=store_dir)
    third.finish("COMPLETED")
    with runlane.Api(store_dir) as api:
        assert api.run(first.id).status == "finished"
        assert api.run(second.id).status == "killed"
        assert api.run(third.id).status == "finished"
    assert second.status == "killed"


def test_writing_after_finish_raises_a_clear_error(store_dir: Path) -> None:
    run = runlane.init(project="p", dir=store_dir)
    run.finish()
    with pytest.raises(RunClosedError, match=r"PP-1 has ended \(finished\)"):
        run.log({"loss": 1.0})
    with pytest.raises(RunClosedError):
        run.summary({"a": 1})
    with pytest.raises(RunClosedError):
        run.log_text("late")
    closed = runlane.init(project="p", dir=store_dir)
    closed.close()
    with pytest.raises(RunClosedError, match="was closed"):
        closed.log({"loss": 1.0})


def test_with_block_finishes_or_fails(store_dir: Path) -> None:
    with runlane.init(project="p", dir=store_dir) as ok:
        ok.log({"a": 1})
    with pytest.raises(ZeroDivisionError), runlane.init(project="p", dir=store_dir) as bad:
        1 / 0  # noqa: B018
    with pytest.raises(KeyboardInterrupt), runlane.init(project="p", dir=store_dir) as stopped:
        raise KeyboardInterrupt
    with runlane.Api(store_dir) as api:
        assert api.run(ok.id).status == "finished"
        failed = api.run(bad.id)
        assert failed.status == "failed"
        assert failed.status_reason == "ZeroDivisionError: division by zero"
        assert api.run(stopped.id).status == "killed"


@pytest.mark.parametrize(
    ("body", "status", "reason", "exit_code"),
    [
        ("pass", "finished", None, 0),
        ("raise ValueError('boom')", "failed", "ValueError: boom", 1),
        # Python exits by re-raising SIGINT after an uncaught KeyboardInterrupt: status -2.
        ("raise KeyboardInterrupt", "killed", "KeyboardInterrupt", -2),
        ("import sys; sys.exit(3)", "failed", "sys.exit(3)", 3),
        ("import sys; sys.exit(0)", "finished", None, 0),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "killed", "received SIGTERM", -15),
        ("import os, signal; os.kill(os.getpid(), signal.SIGINT)", "killed", "KeyboardInterrupt", -2),
    ],
    ids=["normal-exit", "exception", "keyboard-interrupt", "sys-exit-3", "sys-exit-0", "sigterm", "sigint"],
)
def test_automatic_end_of_a_script_that_never_calls_finish(
    store_dir: Path, body: str, status: str, reason: str | None, exit_code: int
) -> None:
    code = f"""
        import runlane
        run = runlane.init(project="auto")
        run.log({{"loss": 0.5}})
        {body}
        run.log({{"loss": 0.25}})
    """
    result = run_script(code, store_dir)
    assert result.returncode == exit_code, result.stderr
    with runlane.Api(store_dir) as api:
        info = api.runs(project="auto")[0]
        assert info.status == status
        assert info.status_reason == reason
        assert info.ended_at is not None
        expected = [0.5, 0.25] if body == "pass" else [0.5]
        assert [p.value for p in api.history(info.id, "loss")] == expected


def test_sigterm_from_outside_kills_the_run_and_chains_the_user_handler(store_dir: Path) -> None:
    code = """
        import signal, sys, time, runlane
        def on_term(signum, frame):
            print("user handler ran", flush=True)
            sys.exit(143)
        signal.signal(signal.SIGTERM, on_term)
        run = runlane.init(project="term")
        run.log({"loss": 1.0})
        print("ready", flush=True)
        time.sleep(60)
    """
    proc = start_script(code, store_dir)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "user handler ran" in out
    with runlane.Api(store_dir) as api:
        info = api.runs(project="term")[0]
    assert info.status == "killed"
    assert info.status_reason == "received SIGTERM"


def test_sigint_from_outside_kills_the_run(store_dir: Path) -> None:
    code = """
        import time, runlane
        run = runlane.init(project="int")
        print("ready", flush=True)
        time.sleep(60)
    """
    proc = start_script(code, store_dir)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    with runlane.Api(store_dir) as api:
        assert api.runs(project="int")[0].status == "killed"


def test_close_unregisters_the_exit_hook(store_dir: Path) -> None:
    code = """
        import runlane
        run = runlane.init(project="side")
        run.log({"x": 1})
        run.close()
        raise RuntimeError("after close")
    """
    result = run_script(code, store_dir)
    assert result.returncode == 1
    with runlane.Api(store_dir) as api:
        assert api.runs(project="side")[0].status == "running"


def test_nested_runs_in_one_process_end_newest_first(store_dir: Path) -> None:
    code = """
        import runlane
        outer = runlane.init(project="nest", name="outer")
        inner = runlane.init(project="nest", name="inner", parent_run_id=outer.id)
        inner.log({"x": 1})
        raise SystemExit(0)
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    with runlane.Api(store_dir) as api:
        runs = {r.name: r for r in api.runs(project="nest")}
    assert runs["inner"].parent_run_id == runs["outer"].id
    assert runs["inner"].status == runs["outer"].status == "finished"


def test_disabled_mode_returns_a_noop_run(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runlane.set_enabled(False)
    run = runlane.init(project="debug", dir=store_dir)
    assert isinstance(run, runlane.NoOpRun)
    run.log({"loss": 0.1})
    run.log_text("nothing")
    run.summary({"a": 1})
    run.set_primary_metric("loss", mode="min")
    run.finish()
    with run as same:
        same.log(loss=1)
    runlane.set_enabled(True)
    monkeypatch.setenv("RUNLANE_MODE", "disabled")
    assert isinstance(runlane.init(project="debug", dir=store_dir), runlane.NoOpRun)
    if isinstance(store_dir, Path):
        assert not store_dir.exists()
    else:  # a server: no run reached it
        with runlane.Api(store_dir) as api:
            assert api.runs() == []


def test_unknown_mode_is_an_error_naming_the_variable(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLANE_MODE", "sideways")
    with pytest.raises(ValueError, match="RUNLANE_MODE='sideways'"):
        runlane.init(project="p", dir=store_dir)


def test_store_location_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env_dir = tmp_path / "explicit", tmp_path / "env"
    monkeypatch.setenv("RUNLANE_DIR", str(env_dir))
    runlane.init(project="p", dir=explicit).finish()
    runlane.init(project="p").finish()
    monkeypatch.delenv("RUNLANE_DIR")
    monkeypatch.chdir(tmp_path)
    runlane.init(project="p").finish()
    for where in (explicit, env_dir, tmp_path / ".runlane"):
        with runlane.Api(where) as api:
            assert len(api.runs()) == 1, where


def test_no_runlane_thread_or_journal_is_left_after_finish(store_dir: Path) -> None:
    import threading

    run = runlane.init(project="p", dir=store_dir, system_metrics_interval=None)
    run.log({"x": 1})
    # Ingest runs in the drain process: the training process has no runlane thread to share its GIL with.
    assert not any(t.name.startswith("runlane") for t in threading.enumerate())
    run.finish()
    assert not any(t.name.startswith("runlane") for t in threading.enumerate())
    journals = store_dir / "journals" if isinstance(store_dir, Path) else Settings.resolve(store_dir).spool
    assert [path.name for path in journals.iterdir() if path.suffix == ".rlj"] == []


def test_runs_survive_a_fork_child_that_exits(store_dir: Path) -> None:
    # A child forked by a data loader must not end the parent's run when it exits.
    code = """
        import os, runlane
        run = runlane.init(project="forked")
        pid = os.fork()
        if pid == 0:
            run.log({"child": 1.0}, step=100)
            raise SystemExit(0)  # runs the child's exit hooks, which must leave the run alone
        os.waitpid(pid, 0)
        run.log({"parent": 2.0})
        print(run.status, flush=True)
        run.finish()
    """
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "running"
    with runlane.Api(store_dir) as api:
        info = api.runs(project="forked")[0]
        assert info.status == "finished"
        assert [p.value for p in api.history(info.id, "child")] == [1.0]


def test_sys_exit_code_reaches_the_shell(store_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import runlane, sys; runlane.init(project='p', dir=sys.argv[1]); sys.exit(5)",
         str(store_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 5


def test_a_run_can_be_named_by_a_chosen_uid_once(store_dir: Path) -> None:
    run = runlane.init(project="p", uid="exp_2024-01.a", dir=store_dir)
    run.finish()
    assert run.uid == "exp_2024-01.a"
    with pytest.raises(ValueError, match="already exists"):
        runlane.init(project="p", uid="exp_2024-01.a", dir=store_dir)
    for bad in ("has space", "123", "PP-1", "-leading", "x" * 65):
        with pytest.raises(ValueError, match="run id"):
            runlane.init(project="p", uid=bad, dir=store_dir)
    with runlane.Api(store_dir) as api:
        assert [r.uid for r in api.runs()] == ["exp_2024-01.a"]
        assert api.run("exp_2024-01.a").id == run.id
    again = runlane.init(run_id="exp_2024-01.a", resume=True, dir=store_dir)
    again.finish()
