"""Run context capture: console output, system metrics, environment, code snapshot.

Everything here runs off the caller's thread and hands what it captured to the run as journal records
through an ``Emit`` callable (``Run._record``), or, for the console, into a journal of its own that the
drain tails like the run's (``SideJournal``); nothing here touches the store. Each piece is started by
``init()`` through ``context.RunCapture`` and stopped by ``Run._end`` before the journal is drained.

Import rule (tests/test_package.py): may import the foundation modules (``journal``, ``blobs``, ``errors``,
``wire``, ``diagnostics``, ...) and the standard library, never ``store``, ``recovery``, ``drain`` or
``api``; psutil, pynvml and zipfile-sized work are imported lazily, on the thread that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ...journal import JournalFile

Emit = Callable[[list[tuple[Any, ...]]], None]
"""Appends journal records to the run; never raises (capture threads must not die on a full disk)."""


class SideJournal(Protocol):
    """A journal of the run besides the process's own, for another process to append to (the console tee)."""

    @property
    def file(self) -> JournalFile:
        """The open journal, to hand to that process; the capture closes its own copy."""

    def end(self) -> None:
        """Once that process is gone without doing it: append the journal's END record (no status: it closes
        this writer only), so the run's end can apply the journal to its end."""


OpenJournal = Callable[[], SideJournal]
"""Creates a side journal for the run; ``init()`` passes it to the capture."""
