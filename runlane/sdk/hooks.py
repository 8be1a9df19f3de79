"""Automatic ends: how a run that was never finished ends when its process does.

The status is judged once, from how the process actually ends (``ending`` says what left the main program),
never from what it survived on the way (a caught exception, a handled Ctrl-C, a caught ``sys.exit``):

- the main program returns (or an interactive session reaches EOF) -> ``finished``
- an exception leaves it -> ``failed`` with the exception as the reason (``KeyboardInterrupt`` -> ``killed``)
- ``SystemExit`` with a code other than 0/None leaves it -> ``failed``
- the exception was raised by a SIGTERM/SIGINT handler, or the signal's default action kills the process
  -> ``killed``
- a multiprocessing worker: the same, judged from how its target ended (workers leave through
  ``os._exit``, so at-exit hooks never run there; multiprocessing's own finalizers do)

Signals that arrive while this process creates or ends a run (``busy()``) take effect once that is done: a
run is never left half created or half drained, and a run whose end is in progress ends ``killed``.
User signal handlers are chained, not replaced. A run leaves this registry when it is finished or closed,
which is how ``close()`` "unregisters the exit hook".
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, ParamSpec, Protocol, TypeVar

from ..diagnostics import log
from ..statuses import FAILED, FINISHED, KILLED
from . import ending
from .ending import HANDLED_SIGNALS, Ending

P = ParamSpec("P")
T = TypeVar("T")

MAX_REASON = 2000
WORKER_EXIT_PRIORITY = 100  # multiprocessing finalizers run highest first: end the runs before queues close
_KILL_EVENTS = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})


class EndsAutomatically(Protocol):
    def _end_automatically(self, status: str, reason: str | None) -> None: ...

    def _end_with(self, status: str, reason: str | None) -> None: ...


_live: dict[int, EndsAutomatically] = {}
_ending: dict[int, EndsAutomatically] = {}  # runs whose end is in progress
_busy: dict[int, int] = {}  # thread ident -> depth of the sections a signal must not cut short
_deferred: list[int] = []  # signals whose handler waits for the main thread to leave its section
_terminating: int | None = None  # a signal whose default action (death) waits for every section to end
_installed = False
_signals_installed = False
_worker_pid: int | None = None
_previous_handlers: dict[int, Any] = {}


def install() -> None:
    """Watch how this process ends. Called by ``init()`` before it creates anything; idempotent."""
    global _installed, _signals_installed
    if not _installed:
        _installed = True
        ending.watch()
        atexit.register(_at_exit)
        sys.addaudithook(_audit)
    if not _signals_installed and threading.current_thread() is threading.main_thread():
        # Handlers can only be installed from the main thread; a later init() there will try again.
        _signals_installed = True
        for signum in HANDLED_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is None:  # installed from C: we could not chain it, so leave it alone
                continue
            _previous_handlers[signum] = previous
            signal.signal(signum, _on_signal)
    _watch_worker_exit()


def register(run: EndsAutomatically) -> None:
    install()
    _live[id(run)] = run


def unregister(run: EndsAutomatically) -> None:
    _live.pop(id(run), None)


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def outcome(end: Ending) -> tuple[str, str | None]:
    """The status (and reason) of a run whose program ended as ``end`` says."""
    exc = end.error
    if exc is None:
        return FINISHED, None
    if isinstance(exc, KeyboardInterrupt):
        return KILLED, "KeyboardInterrupt"
    if end.signum is not None:
        return KILLED, _received(end.signum)
    if isinstance(exc, SystemExit):
        return (FINISHED, None) if exc.code in (None, 0) else (FAILED, f"sys.exit({exc.code!r})")
    return FAILED, describe(exc)


def end_all(status: str, reason: str | None) -> None:
    """End every live run of this process, newest first (nested runs before their parents)."""
    for run in reversed(list(_live.values())):
        try:
            run._end_automatically(status, reason)
        except Exception:
            log.exception("runlane: could not end a run at exit")


@contextmanager
def busy() -> Iterator[None]:
    """A section (creating or ending a run) that a SIGTERM or SIGINT must not cut short: the signal takes
    effect when the section ends. Sections nest."""
    ident = threading.get_ident()
    _busy[ident] = _busy.get(ident, 0) + 1
    try:
        yield
    finally:
        _leave(ident)


def deferring_signals(fn: Callable[P, T]) -> Callable[P, T]:
    """Run every call of ``fn`` as a ``busy()`` section."""

    @functools.wraps(fn)
    def section(*args: P.args, **kwargs: P.kwargs) -> T:
        with busy():
            return fn(*args, **kwargs)

    return section


@contextmanager
def ending_run(run: EndsAutomatically) -> Iterator[None]:
    """The end of ``run`` is in progress: a fatal signal that arrives meanwhile makes it end ``killed``."""
    _ending[id(run)] = run
    try:
        with busy():
            yield
    finally:
        _ending.pop(id(run), None)


def _leave(ident: int) -> None:
    depth = _busy.get(ident, 1) - 1
    if depth:
        _busy[ident] = depth
        return
    _busy.pop(ident, None)
    if threading.current_thread() is threading.main_thread():
        while _deferred:  # the user's handlers, in order; one that raises does so from init()/finish()
            _on_signal(_deferred.pop(0), sys._getframe(1))
    _terminate_when_idle()


def _received(signum: int) -> str:
    return f"received {signal.Signals(signum).name}"


# -- how the process ends -------------------------------------------------------------------------------


def _at_exit() -> None:
    # A multiprocessing child may get here too (spawn leaves through sys.exit; from Python 3.13 fork and
    # forkserver children run their atexit functions); its ending is its target's, not the main program's.
    worker = _worker_pid == os.getpid()
    end_all(*outcome(ending.worker_ending() if worker else ending.main_ending()))


def _watch_worker_exit() -> None:
    """In a multiprocessing child, end the runs when the target has returned or raised.

    A fork or forkserver child leaves through ``os._exit`` (up to Python 3.12 without running atexit),
    a spawn child through ``sys.exit``, each with an exit code that no longer says why. What runs in all
    of them is multiprocessing's own finalizers (``util.Finalize``), once the target is done.
    """
    global _worker_pid
    mp = sys.modules.get("multiprocessing")
    if mp is None or _worker_pid == os.getpid() or mp.parent_process() is None:
        return
    from multiprocessing import util

    _worker_pid = os.getpid()
    ending.watch_worker(getattr(type(mp.current_process()), "run", None))
    util.Finalize(None, _at_worker_exit, exitpriority=WORKER_EXIT_PRIORITY)


def _at_worker_exit() -> None:
    end_all(*outcome(ending.worker_ending()))


# -- signals --------------------------------------------------------------------------------------------


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _terminating
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if previous == signal.SIG_IGN:
        return
    if callable(previous):  # the user's handler, or Python's default for SIGINT (KeyboardInterrupt)
        if _busy.get(threading.get_ident()):
            _deferred.append(signum)  # this thread is creating or ending a run: let it finish first
            return
        try:
            previous(signum, frame)
        except BaseException as exc:
            ending.note_signal(exc, signum)  # if it ends the process, the signal did
            raise
        return
    # The default action would kill the process without running atexit: end the runs first, then let the
    # signal do what it would have done, so the exit status still says "killed by SIGTERM".
    _mark_ending_runs(signum)
    _terminating = signum
    _terminate_when_idle()


def _mark_ending_runs(signum: int) -> None:
    for run in list(_ending.values()):
        run._end_with(KILLED, _received(signum))


def _terminate_when_idle() -> None:
    global _terminating
    signum = _terminating
    if signum is None or _busy:
        return
    if threading.current_thread() is not threading.main_thread():
        os.kill(os.getpid(), signum)  # only the main thread may reset the handler: deliver it there again
        return
    _terminating = None
    end_all(KILLED, _received(signum))
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Called for every audited event of the process: return at once unless it is about to kill itself
    with a signal nobody handles (a library replaced runlane's handler, then re-raised the default)."""
    if event not in _KILL_EVENTS:
        return
    try:
        target, signum = args
        if signum not in HANDLED_SIGNALS or signal.getsignal(signum) != signal.SIG_DFL:
            return
        if event == "os.kill" and target not in (os.getpid(), 0, -os.getpgrp()):
            return
        if event == "os.killpg" and target not in (0, os.getpgrp()):
            return
        _mark_ending_runs(signum)
        end_all(KILLED, _received(signum))
    except Exception:  # an audit hook that raises would make the os.kill() call fail
        log.exception("runlane: could not end the runs before the process kills itself")


def _forget_in_child() -> None:
    # Runs belong to the process that created them; a forked child must not end them at its exit, and
    # the parent's sections and pending signals are not the child's.
    global _terminating
    _live.clear()
    _ending.clear()
    _busy.clear()
    _deferred.clear()
    _terminating = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
