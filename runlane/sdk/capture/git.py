"""Asking git about a directory, for the environment capture and the code snapshot.

Read-only, quiet and bounded: no prompts (``GIT_TERMINAL_PROMPT=0``), no index refresh written behind the
user's back (``GIT_OPTIONAL_LOCKS=0``), output never reaching the console, and a timeout. A missing git,
a directory outside any repository or a repository git refuses to read is simply "no answer".
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TIMEOUT_S = 10.0


def git(cwd: Path, *args: str) -> bytes | None:
    """``git args`` run in ``cwd``: its stdout, or None if git is missing, failed or timed out."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def git_text(cwd: Path, *args: str) -> str | None:
    out = git(cwd, *args)
    return None if out is None else os.fsdecode(out.strip())


def toplevel(cwd: Path) -> Path | None:
    """The root of the git work tree ``cwd`` is in, or None outside a repository."""
    top = git_text(cwd, "rev-parse", "--show-toplevel")
    return Path(top) if top else None
