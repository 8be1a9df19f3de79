"""What ``init(capture_env=True)`` records about the process that runs: a JSON document stored as a blob.

Collected on the capture thread, never on the caller's (listing installed packages and asking git take
tens of milliseconds). The document::

    {"python": {...}, "platform": {...}, "host": {...}, "gpus": [...], "packages": {name: version},
     "git": {...} | None, "command": {"argv": [...], "cwd": ..., "pid": ...}, "env": {name: value}}

Secrets are redacted by ``redact`` before anything is written.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .git import git, git_text, toplevel
from .gpu import describe_gpus
from .redact import redact_argv, redact_environ, redact_text


def collect(workdir: Path) -> dict[str, Any]:
    """The environment document; git facts are those of the repository ``workdir`` is in (if any)."""
    document = {
        "captured_at": time.time(),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
        "host": _host(),
        "gpus": describe_gpus(),
        "packages": packages(),
        "git": git_info(workdir),
        "command": {"argv": redact_argv(list(sys.argv)), "cwd": os.getcwd(), "pid": os.getpid()},
        "env": redact_environ(os.environ),
    }
    return {key: _utf8(value) for key, value in document.items()}


def _utf8(value: Any) -> Any:
    """``value`` with every string made valid UTF-8: environment variables, arguments and paths are bytes
    on POSIX, and those that are not UTF-8 arrive as surrogate escapes, which JSON and msgpack refuse."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_utf8(key): _utf8(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_utf8(item) for item in value]
    return value


def _host() -> dict[str, Any]:
    import psutil

    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_total_mib": round(psutil.virtual_memory().total / 2**20),
    }


def cpu_model() -> str | None:
    # platform.processor() runs `uname -p` on Linux and says "x86_64" at best; /proc/cpuinfo has the model.
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
                for line in cpuinfo:
                    name, _, value = line.partition(":")
                    if name.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                        return value.strip() or None
        except OSError:
            return None
        return None
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None
    return platform.processor() or None


def packages() -> dict[str, str]:
    """Installed distributions, ``{name: version}`` sorted by name (the first one found wins, as on import)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        names = dist.metadata.get_all("Name", [])  # [] for a broken install without metadata
        name = names[0] if names else None
        if name and name not in found:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def git_info(workdir: Path) -> dict[str, Any] | None:
    """Commit, branch, dirty state and remotes (credentials redacted) of the repository, or None."""
    root = toplevel(workdir)
    if root is None:
        return None
    commit = git_text(root, "rev-parse", "HEAD")  # None in a repository without commits yet
    branch = git_text(root, "symbolic-ref", "--short", "-q", "HEAD")  # None on a detached HEAD
    status = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=normal")
    entries = [entry for entry in (status or b"").split(b"\0") if entry]
    remotes: dict[str, str] = {}
    for line in (git_text(root, "config", "--get-regexp", r"^remote\..*\.url$") or "").splitlines():
        key, _, url = line.partition(" ")
        remotes[key[len("remote.") : -len(".url")]] = redact_text(url)
    return {
        "root": str(root),
        "commit": commit,
        "branch": branch,
        # Dirty: tracked files differ from HEAD (staged or not). Untracked files are counted apart.
        "dirty": None if status is None else any(not entry.startswith(b"??") for entry in entries),
        "untracked": None if status is None else sum(entry.startswith(b"??") for entry in entries),
        "remote": remotes.get("origin", next(iter(remotes.values()), None)),
        "remotes": remotes,
    }
