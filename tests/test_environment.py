"""Environment capture: what it records, that secrets never reach the store, and the redaction rules."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import runlane
from runlane.sdk.capture.redact import REDACTED, redact_argv, redact_environ, redact_text

from .conftest import git, script_env, write

SECRETS = {
    "env token": "tok-9f8e7d6c5b4a",
    "git remote password": "s3cret-remote-pw",
    "database password": "hunter2-db",
    "command-line password": "p4ss-on-argv",
    "command-line key": "key-on-argv-123",
    "github token": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"train.py": "print('v1')\n", ".gitignore": "*.log\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    git(root, "remote", "add", "origin", f"https://user:{SECRETS['git remote password']}@git.example.com/team/repo.git")
    git(root, "remote", "add", "mirror", "ssh://git@git.example.com/team/repo.git")
    write(root, {"train.py": "print('v2')\n", "notes.txt": "untracked\n", "debug.log": "ignored\n"})
    return root


def test_environment_is_recorded_with_git_state_and_secrets_redacted(repo: Path, store_dir: Path) -> None:
    code = """
        import runlane
        run = runlane.init(project="env", capture_env=True, system_metrics_interval=None)
        run.finish()
    """
    argv = ["--password=" + SECRETS["command-line password"], "--api-key", SECRETS["command-line key"], "--epochs=3"]
    env = script_env(
        store_dir,
        MY_API_TOKEN=SECRETS["env token"],
        DATABASE_URL=f"postgres://admin:{SECRETS['database password']}@db:5432/runs",
        HF_HOME_MIRROR=f"https://{SECRETS['github token']}@example.com/models",
        RUNLANE_TEST_PLAIN="visible",
    )
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *argv],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with runlane.Api(store_dir) as api:
        captured = api.environment(api.runs()[0].id)
    assert captured is not None

    assert captured["git"] == {
        "root": str(repo),
        "commit": git(repo, "rev-parse", "HEAD").strip(),
        "branch": "main",
        "dirty": True,
        "untracked": 1,  # notes.txt; debug.log is ignored
        "remote": "https://user:<redacted>@git.example.com/team/repo.git",
        "remotes": {
            "mirror": "ssh://git@git.example.com/team/repo.git",
            "origin": "https://user:<redacted>@git.example.com/team/repo.git",
        },
    }
    assert captured["packages"]["msgpack"] == metadata.version("msgpack")
    assert captured["packages"]["psutil"] == metadata.version("psutil")
    assert captured["python"]["version"] == platform.python_version()
    assert captured["python"]["implementation"] == platform.python_implementation()
    assert captured["host"]["hostname"] == platform.node()
    assert captured["host"]["cpu_count"] == os.cpu_count()
    assert captured["platform"]["system"] == platform.system()
    assert isinstance(captured["gpus"], list)
    assert captured["command"]["cwd"] == str(repo)
    assert captured["command"]["argv"] == ["-c", "--password=<redacted>", "--api-key", "<redacted>", "--epochs=3"]
    assert captured["env"]["MY_API_TOKEN"] == REDACTED
    assert captured["env"]["DATABASE_URL"] == "postgres://admin:<redacted>@db:5432/runs"
    assert captured["env"]["HF_HOME_MIRROR"] == "https://<redacted>@example.com/models"
    assert captured["env"]["RUNLANE_TEST_PLAIN"] == "visible"

    # No secret anywhere in the store: not in the database, its WAL, or any file.
    for path in store_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for what, secret in SECRETS.items():
                assert secret.encode() not in content, f"{what} leaked into {path}"


def test_outside_a_repository_git_is_none_and_a_run_without_capture_has_no_environment(
    tmp_path: Path, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = runlane.init(project="env", dir=store_dir, capture_env=True, system_metrics_interval=None)
    plain = runlane.init(project="env", dir=store_dir, system_metrics_interval=None)
    plain.finish()
    run.finish()
    with runlane.Api(store_dir) as api:
        captured = api.environment(run.id)
        assert captured is not None
        assert captured["git"] is None
        assert api.environment(plain.id) is None


def test_values_that_are_not_utf8_do_not_lose_the_capture(store_dir: Path, tmp_path: Path) -> None:
    code = """
        import runlane
        run = runlane.init(project="env", capture_env=True, system_metrics_interval=None)
        run.finish()
    """
    env = script_env(store_dir, LATIN1_VALUE=os.fsdecode(b"caf\xe9"))  # bytes that are not UTF-8
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), os.fsdecode(b"--name=\xff")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with runlane.Api(store_dir) as api:
        captured = api.environment(api.runs()[0].id)
    assert captured is not None
    assert captured["env"]["LATIN1_VALUE"] == "caf\\xe9"
    assert captured["command"]["argv"][1] == "--name=\\xff"


# -- redaction rules (pure) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pw@host/repo.git", "https://user:<redacted>@host/repo.git"),
        ("https://ghp_abc@github.com/x.git", "https://<redacted>@github.com/x.git"),
        ("ssh://git@github.com/x.git", "ssh://git@github.com/x.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("redis://:pw@cache:6379/0", "redis://:<redacted>@cache:6379/0"),
        ("https://s3/b?X-Amz-Signature=abc&x=1", "https://s3/b?X-Amz-Signature=<redacted>&x=1"),
        ("https://api/x?token=abc#top", "https://api/x?token=<redacted>#top"),
        ("use sk-" + "a" * 24 + " here", "use <redacted> here"),
        ("AKIA" + "ABCDEFGHIJKLMNOP", "<redacted>"),
        ("/home/me/project:/usr/lib", "/home/me/project:/usr/lib"),
        ("http://example.com/path?email=a@b.c", "http://example.com/path?email=a@b.c"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_environ_redacts_by_name_and_by_value() -> None:
    environ = {
        "AWS_SECRET_ACCESS_KEY": "x",
        "GITHUB_TOKEN": "x",
        "db_password": "x",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "PIP_INDEX_URL": "https://u:p@pypi.example.com/simple",
        "PATH": "/usr/bin",
        "PWD": "/home/me",
    }
    assert redact_environ(environ) == {
        "AWS_SECRET_ACCESS_KEY": REDACTED,
        "GITHUB_TOKEN": REDACTED,
        "PATH": "/usr/bin",
        "PIP_INDEX_URL": "https://u:<redacted>@pypi.example.com/simple",
        "PWD": "/home/me",
        "SSH_AUTH_SOCK": REDACTED,
        "db_password": REDACTED,
    }


def test_redact_argv() -> None:
    argv = ["train.py", "--token", "abc", "--lr=0.1", "--db-password=pw", "-k", "--data", "https://u:p@h/d"]
    assert redact_argv(argv) == [
        "train.py",
        "--token",
        REDACTED,
        "--lr=0.1",
        "--db-password=<redacted>",
        "-k",
        "--data",
        "https://u:<redacted>@h/d",
    ]
