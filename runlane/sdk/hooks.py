"""Automatic ends: how a run that was never finished ends when its process does.

- normal interpreter exit -> ``finished``
- uncaught exception -> ``failed`` with the exception as the reason (``KeyboardInterrupt`` -> ``killed``)
- ``sys.exit(n)`` with n not 0/None -> ``failed``
- SIGTERM or SIGINT -> ``killed``

User signal handlers and ``sys.excepthook`` are chained, not replaced. A run leaves this registry when it
is finished or closed, which is how ``close()`` "unregisters the exit hook".
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, NoReturn, Protocol

from ..logs import log
from ..statuses import FAILED, FINISHED, KILLED

HANDLED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name))
MAX_REASON = 2000


class EndsAutomatically(Protocol):
    def _end_automatically(self, status: str, reason: str | None) -> None: ...


_live: dict[int, EndsAutomatically] = {}
_exception: BaseException | None = None
_exit_code: Any = None
_signal: int | None = None
_installed_exit = False
_signals_installed = False
_previous_handlers: dict[int, Any] = {}
_previous_excepthook = sys.excepthook
_original_exit = sys.exit


def register(run: EndsAutomatically) -> None:
    _install()
    _live[id(run)] = run


def unregister(run: EndsAutomatically) -> None:
    _live.pop(id(run), None)


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _outcome() -> tuple[str, str | None]:
    if _exception is not None:
        if isinstance(_exception, KeyboardInterrupt):
            return KILLED, "KeyboardInterrupt"
        return FAILED, describe(_exception)
    if _signal is not None:
        return KILLED, f"received {signal.Signals(_signal).name}"
    if _exit_code not in (None, 0):
        return FAILED, f"sys.exit({_exit_code!r})"
    return FINISHED, None


def end_all(status: str, reason: str | None) -> None:
    """End every live run of this process, newest first (nested runs before their parents)."""
    for run in reversed(list(_live.values())):
        try:
            run._end_automatically(status, reason)
        except Exception:
            log.exception("runlane: could not end a run at exit")


def _at_exit() -> None:
    status, reason = _outcome()
    end_all(status, reason)


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    global _exception
    _exception = value
    _previous_excepthook(kind, value, tb)


def _exit(code: Any = None) -> NoReturn:
    global _exit_code
    _exit_code = code
    _original_exit(code)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _signal
    _signal = signum
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):  # the user's handler, or Python's default for SIGINT (KeyboardInterrupt)
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        _signal = None
        return
    # The default action would kill the process without running atexit: end the runs first, then let
    # the signal do what it would have done, so the exit status still says "killed by SIGTERM".
    end_all(KILLED, f"received {signal.Signals(signum).name}")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install() -> None:
    global _installed_exit, _previous_excepthook, _signals_installed
    if not _installed_exit:
        _installed_exit = True
        atexit.register(_at_exit)
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
        # sys.exit(n) is the only exit path whose status an atexit hook cannot otherwise learn.
        sys.exit = _exit
    if not _signals_installed and threading.current_thread() is threading.main_thread():
        # Handlers can only be installed from the main thread; a later init() there will try again.
        _signals_installed = True
        for signum in HANDLED_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is None:  # installed from C: we could not chain it, so leave it alone
                continue
            _previous_handlers[signum] = previous
            signal.signal(signum, _on_signal)


def _forget_in_child() -> None:
    # Runs belong to the process that created them; a forked child must not end them at its exit.
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
