"""Hostile input and hostile environments (issue 8, items 1 and 12-16): refused at the call, or read anyway.

Nothing a user logs may make a store unreadable; a store without write permission can still be read; a
damaged database is named in one line; secrets stay out of the environment capture; names cannot forge
CLI output; and listing runs costs the same however many metrics they have.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import runlane
from runlane.errors import StoreCorruptError, StoreError
from runlane.sdk.capture.redact import REDACTED, redact_argv, redact_environ, redact_text
from runlane.store.sqlite import SQLiteStore

from .conftest import run_script, script_env

INT64_MAX = 2**63 - 1


def _cli(*args: str, prefix: tuple[str, ...] = (), cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "runlane", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


# -- item 1: a step or value that cannot be stored is refused at the call ---------------------------


def test_a_step_beyond_int64_is_refused_at_log_and_everything_else_is_stored(store_dir: Path) -> None:
    run = runlane.init(project="limits", dir=store_dir)
    run.log({"x": 1.0}, step=INT64_MAX)  # the largest step SQLite can hold is fine
    with pytest.raises(ValueError, match=r"step counter .* beyond the largest step"):
        run.log({"x": 2.0})  # the counter is now one past it
    with pytest.raises(ValueError, match="step counter"):
        run.log()  # a call without metrics moves the counter too
    for step in (INT64_MAX + 1, 2**64 - 1, 2**70, np.uint64(2**64 - 1)):
        with pytest.raises(ValueError, match="largest step"):
            run.log({"x": 3.0}, step=step)
        with pytest.raises(ValueError, match="largest step"):
            run.log_image("img", np.zeros((2, 2), dtype=np.uint8), step=step)
    run.log({"x": 4.0}, step=5)  # an explicit step brings the counter back
    run.log({"x": 5.0})
    run.finish()
    assert run.status == "finished"
    with runlane.Api(store_dir) as api:
        assert [(p.step, p.value) for p in api.history(run.id, "x")] == [(5, 4.0), (6, 5.0), (INT64_MAX, 1.0)]
        assert api.run(run.id).metrics["x"].last_step == INT64_MAX
    listing = _cli("ls", "--dir", str(store_dir))
    assert listing.returncode == 0, listing.stderr
    assert "LIM-1" in listing.stdout


def test_a_run_resumed_after_the_largest_step_refuses_to_count_past_it(store_dir: Path) -> None:
    with runlane.init(project="limits", dir=store_dir) as run:
        run.log({"x": 1.0}, step=INT64_MAX)
    resumed = runlane.init(run_id=run.id, resume=True, dir=store_dir)
    with pytest.raises(ValueError, match="step counter"):
        resumed.log({"x": 2.0})
    resumed.log({"x": 3.0}, step=0)
    resumed.finish()
    with runlane.Api(store_dir) as api:
        assert [(p.step, p.value) for p in api.history(run.id, "x")] == [(0, 3.0), (INT64_MAX, 1.0)]


def test_metric_values_beyond_int64_are_stored_as_floats(store_dir: Path) -> None:
    values = {"u64": 2**64 - 1, "big": 2**70, "neg": -(2**70), "np_u64": np.uint64(2**64 - 1), "i64": INT64_MAX}
    with runlane.init(project="limits", dir=store_dir) as run:
        run.log(values)
        run.log(values)  # the second time the keys are known: the inline fast path
    with runlane.Api(store_dir) as api:
        last = {key: series.last_value for key, series in api.run(run.id).metrics.items()}
    assert last == {key: float(value) for key, value in values.items()}


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda run: run.summary({"seed": 2**64}), "summary.seed"),
        (lambda run: run.summary({"hash": 2**63}), "summary.hash"),
        (lambda run: run.summary({"low": -(2**63) - 1}), "summary.low"),
        (lambda run: run.update_config({"data": {"seeds": [1, 2**100]}}), r"config.data.seeds\[1\]"),
        (lambda run: run.summary({"entropy": np.uint64(2**64 - 1)}), "summary.entropy"),
    ],
)
def test_config_and_summary_integers_beyond_int64_are_refused_naming_the_key(
    store_dir: Path, call: object, where: str
) -> None:
    run = runlane.init(project="limits", dir=store_dir)
    with pytest.raises(ValueError, match=where + ".*64-bit"):
        call(run)  # type: ignore[operator]
    run.summary({"max": INT64_MAX, "min": -(2**63)})
    run.finish()
    with runlane.Api(store_dir) as api:
        summary = api.run(run.id).summary
    assert (summary["max"], summary["min"]) == (INT64_MAX, -(2**63))


def test_init_refuses_a_config_integer_beyond_int64_and_creates_nothing(store_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"config\.seed.*64-bit"):
        runlane.init(project="limits", config={"seed": 2**64}, dir=store_dir)
    assert not (store_dir / "runlane.db").exists()


def test_a_journal_holding_an_unstorable_step_does_not_make_the_store_unreadable(store_dir: Path) -> None:
    # What runlane before this fix let through: a record whose step SQLite cannot hold, followed by good
    # ones, in the journal of a process that then died. Every reader used to crash replaying it.
    code = f"""
        import os, time, runlane
        from runlane import journal
        run = runlane.init(project="old", dir={str(store_dir)!r})
        run.log({{"x": 1.0}}, step=1)
        pack, append = run._packer.pack, run._journal.append
        append(pack((journal.METRICS, time.time(), {INT64_MAX + 1}, None, {{"x": 2.0}})))
        append(pack((journal.IMAGE, time.time(), "img", 2**64 - 1, None, "0" * 64 + ".png", 1, 1)))
        run.log({{"x": 3.0}}, step=2)
        run.summary({{"note": "kept"}})
        os.kill(os.getpid(), 9)
    """
    died = run_script(code, store_dir)
    assert died.returncode == -signal.SIGKILL, died.stderr
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        [info] = api.runs()
        assert info.status == "failed"
        assert [(p.step, p.value) for p in api.history(info.id, "x")] == [(1, 1.0), (2, 3.0)]
        assert info.summary == {"note": "kept"}
        assert api.images(info.id) == []
    listing = _cli("ls", "--dir", str(store_dir))
    assert listing.returncode == 0, listing.stderr


# -- item 12: a store without write permission is readable; a damaged one is named in one line --------

# Root ignores permission bits; dropping the capabilities that let it do so makes the kernel enforce them,
# exactly as for a user who does not own the store (setpriv is part of util-linux, in every Debian).
NO_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable")


def _as_reader() -> tuple[str, ...]:
    return NO_OVERRIDE if os.geteuid() == 0 else ()


def _set_modes(root: Path, dir_mode: int, file_mode: int) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(dir_mode if path.is_dir() else file_mode)


@pytest.fixture
def read_only(store_dir: Path) -> Iterator[Path]:
    """A store with two finished runs whose files and directories nobody may write."""
    with runlane.init(project="ro", name="first", dir=store_dir) as run:
        run.set_primary_metric("acc")
        run.log({"acc": 0.5, "loss": 1.0})
        run.log({"acc": 0.75, "loss": 0.5})
    with runlane.init(project="ro", name="second", dir=store_dir) as run:
        run.log({"loss": 0.25})
    _set_modes(store_dir, 0o555, 0o444)
    try:
        yield store_dir
    finally:
        _set_modes(store_dir, 0o755, 0o644)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_a_store_without_write_permission_can_be_listed_and_read(read_only: Path) -> None:
    before = _snapshot(read_only)
    listing = _cli("ls", "--dir", str(read_only), prefix=_as_reader())
    assert listing.returncode == 0, listing.stderr
    assert [line.split()[1] for line in listing.stdout.splitlines()[1:]] == ["RO-2", "RO-1"]
    assert "acc=0.75" in listing.stdout
    shown = _cli("show", "RO-1", "--dir", str(read_only), prefix=_as_reader())
    assert shown.returncode == 0, shown.stderr
    assert "acc (max): best 0.75 at step 1" in shown.stdout
    code = f"""
        import runlane
        with runlane.Api({str(read_only)!r}) as api:
            print([p.value for p in api.history("RO-1", "loss")], api.run("RO-2").metrics["loss"].last_value)
    """
    reader = subprocess.run(
        [*_as_reader(), sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.split("\n")[0] == "[1.0, 0.5] 0.25"
    assert _snapshot(read_only) == before  # nothing was created or changed


def test_writing_to_a_store_without_write_permission_is_a_clear_error(read_only: Path) -> None:
    code = f"""
        import runlane
        for attempt in (lambda: runlane.init(project="ro", dir={str(read_only)!r}),
                        lambda: runlane.Api({str(read_only)!r}).delete_run("RO-2")):
            try:
                attempt()
            except runlane.StoreError as exc:
                print(type(exc).__name__, exc)
    """
    writer = subprocess.run(
        [*_as_reader(), sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert writer.returncode == 0, writer.stderr
    lines = writer.stdout.splitlines()
    assert len(lines) == 2, writer.stdout
    for line in lines:
        assert str(read_only) in line
        assert "read-only" in line
    deleted = _cli("delete", "RO-2", "--yes", "--dir", str(read_only), prefix=_as_reader())
    assert deleted.returncode == 1
    assert len(deleted.stderr.splitlines()) == 1, deleted.stderr
    assert "read-only" in deleted.stderr


def test_a_store_without_write_permission_is_readable_while_its_writer_is_live(store_dir: Path) -> None:
    # The training process (here with every permission, as the store's owner) keeps the database open, so
    # its write-ahead log and shared-memory index exist; a reader who may not write them still reads.
    trainer_code = f"""
        import runlane, sys
        run = runlane.init(project="live", dir={str(store_dir)!r})
        run.log({{"x": 1.0}})
        run.log({{"x": 2.0}})
        print("ready", flush=True)
        sys.stdin.readline()
        run.finish()
    """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(trainer_code)],
        env=script_env(store_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as trainer:
        assert trainer.stdin is not None
        assert trainer.stdout is not None
        assert trainer.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 30
        while True:  # the writer thread commits the points shortly after log() returned
            with runlane.Api(store_dir) as api:
                if len(api.history(1, "x")) == 2:
                    break
            assert time.monotonic() < deadline, "the live writer never committed its points"
            time.sleep(0.05)
        assert (store_dir / "runlane.db-wal").exists()
        _set_modes(store_dir, 0o555, 0o444)
        try:
            listing = _cli("ls", "--dir", str(store_dir), prefix=_as_reader())
            shown = _cli("show", "LIV-1", "--dir", str(store_dir), "--json", prefix=_as_reader())
        finally:
            _set_modes(store_dir, 0o755, 0o644)
            trainer.stdin.close()  # lets the trainer finish
        assert listing.returncode == 0, listing.stderr
        assert "running" in listing.stdout
        assert json.loads(shown.stdout)["metrics"]["x"]["count"] == 2
    assert trainer.returncode == 0


@pytest.fixture
def damaged(store_dir: Path) -> Path:
    with runlane.init(project="dmg", dir=store_dir) as run:
        run.log({"x": 1.0})
    (store_dir / "runlane.db").write_bytes(b"this is not a database, just garbage " * 200)
    return store_dir


def test_a_damaged_database_is_one_line_naming_the_file_in_every_cli_command(damaged: Path) -> None:
    db = str(damaged / "runlane.db")
    for args in (("ls",), ("ls", "--json"), ("show", "DMG-1"), ("delete", "DMG-1", "--yes")):
        result = _cli(*args, "--dir", str(damaged))
        assert result.returncode == 1, (args, result.stderr)
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1, (args, result.stderr)
        assert db in result.stderr
        assert "damaged" in result.stderr


def test_damage_met_after_opening_is_also_one_line_naming_the_file(store_dir: Path) -> None:
    for i in range(20):  # enough rows (with long configs) that the runs table spans much of the file
        with runlane.init(project="dmg", config={"text": "x" * 3000, "i": i}, dir=store_dir) as run:
            run.log({"x": 1.0})
    db = store_dir / "runlane.db"
    size = db.stat().st_size
    with db.open("r+b") as file:  # the first pages (header, schema) stay intact: opening succeeds
        file.seek(size // 2)
        file.write(b"\xff" * (size - size // 2))
    with runlane.Api(store_dir) as api, pytest.raises(StoreCorruptError, match="damaged"):
        api.runs()
    result = _cli("ls", "--dir", str(store_dir))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert str(db) in result.stderr


def test_a_damaged_database_is_a_store_corrupt_error_from_api_and_init(damaged: Path) -> None:
    db = str(damaged / "runlane.db")
    with pytest.raises(StoreCorruptError, match="damaged") as from_api:
        runlane.Api(damaged)
    assert db in str(from_api.value)
    assert isinstance(from_api.value, StoreError)
    with pytest.raises(StoreCorruptError, match="damaged") as from_init:
        runlane.init(project="dmg", dir=damaged)
    assert db in str(from_init.value)
    assert isinstance(from_init.value, runlane.RunlaneError)


# -- item 13: secrets stay out of the environment capture ------------------------------------------

SECRET_VARIABLES = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
    "OPENAI_API_KEY",
    "PGPASSWORD",
    "MYSQL_PWD",
    "REDIS_PWD",
    "DB_PW",
    "SMTP_PASSWD",
    "GPG_PASSPHRASE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_CREDENTIALS",
    "DOCKER_CREDS",
    "NPM_CREDS",
    "AZURE_CLIENT_SECRET",
    "KAGGLE_KEY",
    "SENTRY_DSN",
    "SLACK_WEBHOOK_URL",
    "AZURE_STORAGE_CONNECTION_STRING",
    "MONGO_CONN_STR",
    "API_BEARER",
    "COOKIE_JAR",
    "JWT_SIGNING_KEY",
]
ORDINARY_VARIABLES = {
    "PATH": "/usr/local/bin:/usr/bin",
    "HOME": "/home/me",
    "PWD": "/home/me/project",
    "OLDPWD": "/home/me",
    "CUDA_VISIBLE_DEVICES": "0,1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "8",
    "PYTHONPATH": "/home/me/src",
    "LANG": "C.UTF-8",
    "SHELL": "/bin/bash",
}


@pytest.mark.parametrize("name", SECRET_VARIABLES)
def test_common_secret_variables_are_redacted(name: str) -> None:
    for spelling in (name, name.lower()):
        assert redact_environ({spelling: "hunter2-value"}) == {spelling: REDACTED}


def test_ordinary_variables_are_kept() -> None:
    assert redact_environ(ORDINARY_VARIABLES) == dict(sorted(ORDINARY_VARIABLES.items()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://admin:hunter2@db:5432/runs", "postgresql://admin:<redacted>@db:5432/runs"),
        ("mysql://root:hunter2@localhost/db", "mysql://root:<redacted>@localhost/db"),
        ("host=db user=admin password=hunter2 dbname=runs", "host=db user=admin password=<redacted> dbname=runs"),
        ("Driver={ODBC};Server=db;Uid=admin;Pwd=hunter2;", "Driver={ODBC};Server=db;Uid=admin;Pwd=<redacted>;"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=aGVsbG8=;EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=<redacted>;EndpointSuffix=core.windows.net",
        ),
        ("jdbc:mysql://db/runs?user=admin&password=hunter2", "jdbc:mysql://db/runs?user=admin&password=<redacted>"),
        ("/home/me/project:/usr/lib", "/home/me/project:/usr/lib"),
        ("lr=0.1 epochs=3", "lr=0.1 epochs=3"),
    ],
)
def test_credentials_inside_values_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--password=hunter2"], ["--password=<redacted>"]),
        (["--password", "hunter2"], ["--password", REDACTED]),
        (["--pwd", "hunter2"], ["--pwd", REDACTED]),
        (["--pwd=hunter2"], ["--pwd=<redacted>"]),
        (["--db-pw", "hunter2"], ["--db-pw", REDACTED]),
        (["--api-key", "k"], ["--api-key", REDACTED]),
        (["--api_key=k"], ["--api_key=<redacted>"]),
        (["--apikey", "k"], ["--apikey", REDACTED]),
        (["--token", "t"], ["--token", REDACTED]),
        (["--hf_token=t"], ["--hf_token=<redacted>"]),
        (["--secret", "s"], ["--secret", REDACTED]),
        (["--passphrase", "p"], ["--passphrase", REDACTED]),
        (["--creds", "c"], ["--creds", REDACTED]),
        (["--credentials-file", "c.json"], ["--credentials-file", REDACTED]),
        (["-password", "p"], ["-password", REDACTED]),
        (["--database-url", "postgres://u:p@h/d"], ["--database-url", "postgres://u:<redacted>@h/d"]),
        # Kept: a working directory is not a password, and -p is a port, a plugin or a path in most tools.
        (["--cwd", "/tmp"], ["--cwd", "/tmp"]),
        (["-p", "8080", "--lr", "0.1", "--epochs=3"], ["-p", "8080", "--lr", "0.1", "--epochs=3"]),
    ],
)
def test_secret_flags_in_every_common_spelling_are_redacted(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(["train.py", *argv]) == ["train.py", *expected]


def test_the_stored_environment_holds_none_of_the_secrets(store_dir: Path) -> None:
    secrets = {name: f"secret-value-{i}" for i, name in enumerate(SECRET_VARIABLES)}
    code = """
        import runlane
        with runlane.init(project="env", capture_env=True) as run:
            pass
    """
    ordinary = {k: v for k, v in ORDINARY_VARIABLES.items() if k != "PYTHONPATH"}  # keep this checkout
    env = script_env(store_dir, **secrets, **ordinary)
    env["PWD"] = str(store_dir.parent)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), "--pwd", "argv-secret", "--api-key=argv-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=store_dir.parent,
    )
    assert done.returncode == 0, done.stderr
    with runlane.Api(store_dir) as api:
        captured = api.environment(api.runs()[0].id)
    assert captured is not None
    text = json.dumps(captured)
    for value in [*secrets.values(), "argv-secret", "argv-key"]:
        assert value not in text
    assert captured["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert captured["env"]["PWD"] == str(store_dir.parent)


# -- item 14: names cannot forge CLI output ---------------------------------------------------------


def test_control_characters_in_names_and_tags_are_escaped_in_human_output(store_dir: Path) -> None:
    forged = "innocent\n99    FAKE-9   evil     x     finished"
    with runlane.init(project="esc", name=forged, tags=["\x1b[2J\x1b[31mred", "tab\there"], dir=store_dir):
        pass
    with (
        pytest.raises(ValueError, match="first line"),
        runlane.init(project="esc", name="bell\a", notes="a\rb", dir=store_dir),
    ):
        raise ValueError("first line\nsecond line\x1b]0;title\x07")
    listing = _cli("ls", "--dir", str(store_dir))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 3  # the header and two runs: no forged row
    assert not any(ord(ch) < 32 and ch != "\n" for ch in listing.stdout)
    assert "\x1b" not in listing.stdout
    assert r"innocent\n99" in listing.stdout
    assert r"\x1b[2J\x1b[31mred" in listing.stdout
    assert r"tab\there" in listing.stdout
    shown = _cli("show", "ESC-2", "--dir", str(store_dir))
    assert shown.returncode == 0, shown.stderr
    assert not any(ord(ch) < 32 and ch != "\n" for ch in shown.stdout)
    assert r"first line\nsecond line\x1b]0;title\x07" in shown.stdout
    assert r"bell\x07" in shown.stdout
    assert r"a\rb" in shown.stdout
    # --json is for programs: exact strings (JSON escapes them itself).
    as_json = json.loads(_cli("ls", "--dir", str(store_dir), "--json").stdout)
    assert as_json[1]["name"] == forged
    assert as_json[1]["tags"] == ["\x1b[2J\x1b[31mred", "tab\there"]
    detail = json.loads(_cli("show", "ESC-2", "--dir", str(store_dir), "--json").stdout)
    assert detail["status_reason"] == "ValueError: first line\nsecond line\x1b]0;title\x07"


def test_c1_controls_and_bidi_overrides_in_names_are_escaped(store_dir: Path) -> None:
    with runlane.init(project="esc", name="csi\x9b31m rlo\u202etxt.exe ls\u2028next", dir=store_dir):
        pass
    listing = _cli("ls", "--dir", str(store_dir))
    assert listing.returncode == 0, listing.stderr
    assert r"csi\x9b31m rlo\u202etxt.exe ls\u2028next" in listing.stdout
    for raw in ("\x9b", "\u202e", "\u2028"):
        assert raw not in listing.stdout


# -- item 15: empty store argument, numpy steps, non-iterable tags ----------------------------------


def test_an_empty_dir_argument_means_the_default_store_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    default = tmp_path / "env-store"  # $RUNLANE_DIR, set by conftest
    run = runlane.init(project="empty", dir="")
    run.finish()
    run2 = runlane.init(project="empty", storage="")
    run2.finish()
    run3 = runlane.init(project="empty", dir="", storage=str(default))
    run3.finish()
    assert run.dir == run2.dir == run3.dir == default
    assert list(work.iterdir()) == []
    with runlane.Api("") as api:
        assert len(api.runs()) == 3
    listing = _cli("ls", "--dir", "", cwd=work)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("EMP-") == 3
    monkeypatch.delenv("RUNLANE_DIR")
    with runlane.init(project="empty", dir="") as run4:
        pass
    assert run4.dir == work / ".runlane"
    assert [p.name for p in work.iterdir()] == [".runlane"]


def test_fork_step_and_history_bounds_accept_numpy_and_torch_integers(store_dir: Path) -> None:
    with runlane.init(project="np", dir=store_dir) as parent:
        for step in range(10):
            parent.log({"x": float(step)}, step=np.int64(step))
    fork = runlane.init(fork_run_id=parent.id, fork_step=np.int64(4), dir=store_dir)
    fork.log({"x": 40.0})
    fork.finish()
    assert (fork.fork_step, type(fork.fork_step)) == (4, int)
    other = runlane.init(fork_run_id=parent.id, fork_step=torch.tensor(6), dir=store_dir)
    other.finish()
    assert other.fork_step == 6
    with runlane.Api(store_dir) as api:
        assert api.history(parent.id, "x", start=np.int64(2), end=np.int32(4)).steps == [2, 3, 4]
        assert api.history(fork.id, "x", stitched=True, start=np.uint8(3)).steps == [3, 4, 5]
        assert len(api.history(parent.id, "x", start=torch.tensor(8), buckets=np.int64(2))) == 2
        for bad in (np.float64(2.0), np.True_, torch.tensor(True), 2.0):
            with pytest.raises(ValueError, match="start must be an integer"):
                api.history(parent.id, "x", start=bad)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="fork_step must be an integer"):
        runlane.init(fork_run_id=parent.id, fork_step=np.float64(4.0), dir=store_dir)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda run: run.add_tags(3), "add_tags.* int 3"),
        (lambda run: run.remove_tags(3.5), "remove_tags.* float 3.5"),
        (lambda run: run.add_tags(b"tag"), "add_tags.* bytes"),
        (lambda run: run.add_tags(["ok", None]), "add_tags.* NoneType None"),
    ],
)
def test_tags_that_are_not_strings_name_the_method(store_dir: Path, call: object, message: str) -> None:
    run = runlane.init(project="tags", tags=["kept"], dir=store_dir)
    with pytest.raises(TypeError, match=message):
        call(run)  # type: ignore[operator]
    run.finish()
    assert run.tags == ("kept",)


@pytest.mark.parametrize(("tags", "shown"), [(7, "int 7"), (b"x", "bytes"), ([1], "int 1"), (3.5, "float 3.5")])
def test_init_tags_that_are_not_strings_name_the_argument(store_dir: Path, tags: object, shown: str) -> None:
    with pytest.raises(TypeError, match=f"tags.* {shown}"):
        runlane.init(project="tags", tags=tags, dir=store_dir)  # type: ignore[arg-type]
    assert not (store_dir / "runlane.db").exists()


# -- item 16: listing runs does not depend on how many metrics they have ---------------------------


def _store_with_runs(store: Path, runs: int, metrics: int) -> None:
    for i in range(runs):
        with runlane.init(project="wide", name=f"run-{i}", dir=store) as run:
            run.set_primary_metric("acc")
            run.log({"acc": 0.5 + i / 100, **{f"m/{k}": float(k) for k in range(metrics - 1)}})


def _listing_work(store: Path) -> int:
    """SQLite virtual-machine steps spent listing the store the way ``runlane ls`` does."""
    opened = SQLiteStore(store, create=False)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        opened.conn.set_progress_handler(count, 10)
        listed = opened.runs(metrics="primary")
    finally:
        opened.close()
    assert [run.best_value for run in listed] == [0.5 + i / 100 for i in reversed(range(len(listed)))]
    return steps


def test_listing_runs_reads_the_same_whatever_the_number_of_metrics(tmp_path: Path) -> None:
    narrow, wide = tmp_path / "narrow", tmp_path / "wide"
    _store_with_runs(narrow, runs=12, metrics=1)
    _store_with_runs(wide, runs=12, metrics=150)
    # Reading every aggregate (Api.runs() by default) visits each series; the listing visits one per run.
    narrow_work, wide_work = _listing_work(narrow), _listing_work(wide)
    assert wide_work < 1.5 * narrow_work, (narrow_work, wide_work)
    with runlane.Api(wide) as api:
        listed = api.runs(metrics="primary")
        full = api.runs()
        assert {len(run.metrics) for run in full} == {150}
        assert [list(run.metrics) for run in listed] == [["acc"]] * 12
        assert [run.metrics["acc"] for run in listed] == [run.metrics["acc"] for run in full]
        assert [run.best_value for run in listed] == [run.best_value for run in full]
        with pytest.raises(ValueError, match="metrics must be 'all' or 'primary'"):
            api.runs(metrics="some")  # type: ignore[arg-type]
    narrow_json = _cli("ls", "--json", "--dir", str(narrow))
    wide_json = _cli("ls", "--json", "--dir", str(wide))
    assert narrow_json.returncode == wide_json.returncode == 0
    # The same runs with 149 more metrics each print the same listing (modulo the store's own ids/times).
    assert abs(len(wide_json.stdout) - len(narrow_json.stdout)) < 12 * 40
    first = json.loads(wide_json.stdout)[0]
    assert list(first["metrics"]) == ["acc"]
    assert first["best_value"] == 0.5 + 11 / 100
    assert _cli("show", "WID-1", "--json", "--dir", str(wide)).stdout.count('"m/') == 149
