"""Is the process that wrote to a run still alive?

A writer is identified by its host, its PID namespace, its pid and the pid's start time (so a reused pid
is not mistaken). A pid means something only inside its own PID namespace: a trainer in a container that
shares the store's volume and the host name has pids that name other processes, or none, out here. So the
pid is probed only for writers on this host *and* in this namespace; any other writer is judged by its
heartbeat, like one on another host. Whatever those say, a journal that some process still holds locked
(see ``journal``) belongs to a live writer: that works across namespaces on one kernel, and covers
children forked from a writer, which may append to its journal after it died.

On Linux the start time comes from ``/proc/<pid>/stat`` (cheap enough for ``init()``'s budget);
elsewhere from psutil, imported only when needed.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from . import journal

# Writers on another host cannot be probed; they are presumed dead once their heartbeat is this old (the
# default of ``Tunables.remote_timeout_s``, ``RUNLANE_REMOTE_TIMEOUT``).
REMOTE_HEARTBEAT_TIMEOUT_S = 300.0


@functools.lru_cache(maxsize=1)
def host_name() -> str:
    if hasattr(os, "uname"):  # the same name as socket.gethostname(), without importing socket
        return os.uname().nodename
    import socket

    return socket.gethostname()


def current_pid_namespace() -> str | None:
    """This process's PID namespace: ``"pid:[<inode>]"`` on Linux, ``""`` where the OS has no PID namespaces,
    None when it cannot be told (no ``/proc``). Not cached: a process may move into a new namespace."""
    if not sys.platform.startswith("linux"):
        return ""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _linux_start_time(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    state, start_ticks = fields[0], fields[19]
    if state in ("Z", "X"):  # a zombie has exited; only its exit status is left to collect
        return None
    return int(start_ticks) / os.sysconf("SC_CLK_TCK")


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (an opaque, comparable number), or None if there is no such process."""
    if sys.platform.startswith("linux"):
        return _linux_start_time(pid)
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int, started: float | None) -> bool:
    """True if ``pid`` is running and is the same process that started at ``started``."""
    now_started = process_start_time(pid)
    if now_started is None:
        return False
    return started is None or abs(now_started - started) < 0.01


def writer_is_alive(
    *,
    host: str,
    pid_namespace: str | None,
    pid: int,
    pid_started: float | None,
    heartbeat_at: float,
    now: float,
    journal_path: Path | None,
    remote_timeout_s: float = REMOTE_HEARTBEAT_TIMEOUT_S,
) -> bool:
    """Is a run's writer still there (or may its journal still grow)?

    By pid for a writer on this host in this PID namespace; by heartbeat age for any other, including one
    whose namespace is not recorded; and alive, whatever those say, while its journal is locked.
    """
    if host == host_name() and pid_namespace is not None and pid_namespace == current_pid_namespace():
        if is_alive(pid, pid_started):
            return True
    elif now - heartbeat_at < remote_timeout_s:
        return True
    return journal_path is not None and journal.in_use(journal_path)
