"""How the main program ended: the exception that left it (if any), and whether a signal's handler raised it.

``hooks`` asks this module at exit and turns the answer into a run status. The answer comes from what the
interpreter itself leaves behind, never from hooks other code can replace (``sys.excepthook``, a signal
handler), and never from something the process merely survived (a caught exception, a handled Ctrl-C):

- The main program is the bottom frame of the main thread, found when runlane is first used. If its last
  instruction was a return, it ended normally, whatever happened on the way.
- An exception other than ``SystemExit`` that leaves it is printed by the interpreter, which first stores it
  in ``sys.last_exc``/``sys.last_value`` (before calling whatever ``sys.excepthook`` is then installed).
- A ``SystemExit`` is not stored anywhere. Python 3.12+ reports it through ``sys.monitoring`` (a
  ``PY_UNWIND`` event, which costs nothing until an exception leaves a Python function). On 3.10/3.11 only
  the exits that pass through a function runlane wraps are seen: ``sys.exit`` looked up on ``sys`` and the
  ``exit``/``quit`` builtins; a bare ``raise SystemExit(n)`` counts as exit code 0 there.
- At an interactive prompt, an exception does not end the session; only a ``SystemExit`` does (or EOF).

A signal decided the ending when the exception that ended it was raised by that signal's handler: one
runlane chained (``note_signal``), or the handler installed now, found in the exception's traceback.
"""

from __future__ import annotations

import builtins
import signal
import sys
import threading
from collections.abc import Callable
from types import CodeType, FrameType, TracebackType
from typing import Any, NamedTuple, NoReturn

HANDLED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name))
_FREE_TOOL_IDS = (4, 3)  # sys.monitoring ids 0-2 and 5 are reserved for debuggers, coverage, profilers, optimizers


class Ending(NamedTuple):
    """What ended a program: ``error`` is the exception that left it (None: it returned or its session ended),
    ``signum`` the signal whose handler raised that exception."""

    error: BaseException | None
    signum: int | None


class _ExitSeen(NamedTuple):
    error: SystemExit
    signum: int | None
    at_prompt: bool


_watched = False
_main_frame: FrameType | None = None
_main_code: CodeType | None = None
_monitoring = False
_escaped: BaseException | None = None  # what left the main program, as sys.monitoring saw it
_prompt_exit: SystemExit | None = None  # the SystemExit that ended an interactive session, likewise
_last_exit: _ExitSeen | None = None  # without sys.monitoring: the latest SystemExit a wrapped exit function raised
_signalled: tuple[BaseException, int] | None = None  # the latest exception raised by a chained signal handler
_original_exit: Callable[..., NoReturn] = sys.exit
_worker_code: CodeType | None = None  # in a multiprocessing child: the code of its Process.run
_worker_escaped: BaseException | None = None  # what left that run(), as sys.monitoring saw it


def watch() -> None:
    """Start watching how the main program ends; idempotent. Call it from the process's first ``init()``."""
    global _watched, _main_frame, _main_code
    if _watched:
        return
    _watched = True
    _main_frame = _bottom_frame_of_main_thread()
    _main_code = _main_frame.f_code if _main_frame is not None else None
    if not _start_monitoring():
        _wrap_exit_functions()


def watch_worker(run: object) -> None:
    """This process is a multiprocessing child whose target runs in ``run`` (its ``Process.run``)."""
    global _worker_code, _worker_escaped
    code = getattr(run, "__code__", None)
    _worker_code = code if isinstance(code, CodeType) else None
    _worker_escaped = None


def worker_ending() -> Ending:
    """How the target of this multiprocessing child ended.

    Up to Python 3.12, multiprocessing runs its finalizers in a ``finally`` right after the target, where the
    target's exception is still the one being handled. From 3.13 on they run after ``Process._bootstrap``
    has caught and printed it; there ``sys.monitoring`` saw it leave ``run()``.
    """
    return ending_of(_worker_escaped if _worker_escaped is not None else sys.exc_info()[1])


def note_signal(exc: BaseException, signum: int) -> None:
    """Remember that ``exc`` was raised by the handler of ``signum`` (called by runlane's chaining handler)."""
    global _signalled, _last_exit
    _signalled = (exc, signum)
    if isinstance(exc, SystemExit) and threading.current_thread() is threading.main_thread():
        _last_exit = _ExitSeen(exc, signum, hasattr(sys, "ps1"))


def ending_of(exc: BaseException | None) -> Ending:
    """The ending that ``exc`` (None: a normal return) makes, with the signal that raised it if one did."""
    return Ending(exc, signal_of(exc) if exc is not None else None)


def main_ending() -> Ending:
    """How the main program ended; meaningful at exit."""
    if hasattr(sys, "ps1"):  # an interactive session: exceptions were shown at the prompt, and it went on
        if _monitoring:
            return ending_of(_prompt_exit)
        seen = _last_exit if _last_exit is not None and _last_exit.at_prompt else None
        return Ending(seen.error, seen.signum or signal_of(seen.error)) if seen is not None else Ending(None, None)
    if _escaped is not None:
        return ending_of(_escaped)
    frame = _main_frame
    if frame is None or _returned(frame):
        return Ending(None, None)
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if isinstance(last, BaseException) and last.__traceback__ is not None and last.__traceback__.tb_frame is frame:
        return ending_of(last)
    # Only a SystemExit leaves the main program without being stored in sys.last_value.
    if _last_exit is not None and not _last_exit.at_prompt:
        return Ending(_last_exit.error, _last_exit.signum or signal_of(_last_exit.error))
    return Ending(SystemExit(), None)  # raised where no wrapper saw it: its code is not visible (3.10/3.11)


def signal_of(exc: BaseException) -> int | None:
    """The signal whose handler raised ``exc``, or None."""
    if _signalled is not None and _signalled[0] is exc:
        return _signalled[1]
    return _signal_in_frames(_traceback_frames(exc.__traceback__))


# -- the main program's frame -------------------------------------------------------------------------


def _bottom_frame_of_main_thread() -> FrameType | None:
    if threading.current_thread() is threading.main_thread():
        frame: FrameType | None = sys._getframe()
    else:
        frame = sys._current_frames().get(threading.main_thread().ident or -1)
    while frame is not None and frame.f_back is not None:
        frame = frame.f_back
    return frame


def _returned(frame: FrameType) -> bool:
    """Whether a finished frame ended with a return (rather than by an exception leaving it)."""
    import dis

    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset == frame.f_lasti:
            return instruction.opname in ("RETURN_VALUE", "RETURN_CONST")
    return False


# -- Python 3.12+: sys.monitoring ---------------------------------------------------------------------


def _start_monitoring() -> bool:
    monitoring: Any = getattr(sys, "monitoring", None)
    if monitoring is None:
        return False
    for tool in _FREE_TOOL_IDS:
        if monitoring.get_tool(tool) is None:
            monitoring.use_tool_id(tool, "runlane")
            monitoring.register_callback(tool, monitoring.events.PY_UNWIND, _on_unwind)
            monitoring.set_events(tool, monitoring.get_events(tool) | monitoring.events.PY_UNWIND)
            global _monitoring
            _monitoring = True
            return True
    return False  # every free id is taken (by other tools): fall back to wrapping the exit functions


def _on_unwind(code: CodeType, offset: int, exc: BaseException) -> None:
    """Called whenever an exception leaves a Python frame: keep it short."""
    global _escaped, _prompt_exit, _worker_escaped
    if code is _main_code:
        _escaped = exc
    elif code is _worker_code:
        _worker_escaped = exc
    if (
        isinstance(exc, SystemExit)
        and hasattr(sys, "ps1")
        and threading.current_thread() is threading.main_thread()
        and sys._getframe(1).f_back is None  # a statement typed at the prompt
    ):
        _prompt_exit = exc


# -- Python 3.10/3.11: the exit functions, wrapped ----------------------------------------------------


def _wrap_exit_functions() -> None:
    global _original_exit
    _original_exit = sys.exit
    sys.exit = _exit
    for name in ("exit", "quit"):  # site's Quitter objects; absent under python -S
        original = getattr(builtins, name, None)
        if original is not None:
            vars(builtins)[name] = _Quitter(original)


def _exit(status: object = None) -> NoReturn:
    try:
        _original_exit(status)
    except SystemExit as exc:
        _saw_exit(exc)
        raise


class _Quitter:
    """``exit``/``quit`` as site installs them (a repr that explains them, a call that exits), seen by runlane."""

    def __init__(self, original: Callable[..., NoReturn]) -> None:
        self._original = original

    def __repr__(self) -> str:
        return repr(self._original)

    def __call__(self, code: object = None) -> NoReturn:
        try:
            self._original(code)
        except SystemExit as exc:
            _saw_exit(exc)
            raise


def _saw_exit(exc: SystemExit) -> None:
    global _last_exit
    if threading.current_thread() is threading.main_thread():  # elsewhere it only ends that thread
        _last_exit = _ExitSeen(exc, _signal_in_frames(_stack(sys._getframe(2))), hasattr(sys, "ps1"))


# -- which signal handler raised it -------------------------------------------------------------------


def _signal_in_frames(frames: list[FrameType]) -> int | None:
    """The signal whose installed handler runs in one of ``frames`` (a handler another library installed
    after runlane: runlane's own chain is recorded by ``note_signal``)."""
    handlers = _handler_codes()
    for frame in frames:
        signum = handlers.get(frame.f_code)
        if signum is not None:
            return signum
    return None


def _handler_codes() -> dict[CodeType, int]:
    codes: dict[CodeType, int] = {}
    for signum in HANDLED_SIGNALS:
        handler = signal.getsignal(signum)
        code = getattr(getattr(handler, "__func__", handler), "__code__", None)
        if isinstance(code, CodeType):
            codes[code] = signum
    return codes


def _traceback_frames(tb: TracebackType | None) -> list[FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _stack(frame: FrameType | None) -> list[FrameType]:
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames
