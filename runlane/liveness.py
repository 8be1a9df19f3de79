"""Is the process that wrote to a run still alive? Pid plus start time, so a reused pid is not mistaken.

On Linux the start time comes from ``/proc/<pid>/stat`` (cheap enough for ``init()``'s budget);
elsewhere from psutil, imported only when needed.
"""

from __future__ import annotations

import functools
import os
import sys

# Writers on another host cannot be probed; they are presumed dead once their heartbeat is this old.
REMOTE_HEARTBEAT_TIMEOUT_S = 300.0


@functools.lru_cache(maxsize=1)
def host_name() -> str:
    if hasattr(os, "uname"):  # the same name as socket.gethostname(), without importing socket
        return os.uname().nodename
    import socket

    return socket.gethostname()


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


def writer_is_alive(host: str, pid: int, pid_started: float | None, heartbeat_at: float, now: float) -> bool:
    """Is a run's writer still there? By pid on this host; by heartbeat age on another."""
    if host == host_name():
        return is_alive(pid, pid_started)
    return now - heartbeat_at < REMOTE_HEARTBEAT_TIMEOUT_S
