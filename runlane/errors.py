"""One exception tree shared by every layer of runlane.

Bad arguments raise the built-in ``ValueError`` / ``TypeError`` (what Python users expect from
any library); everything that is about the state of runs and stores derives from ``RunlaneError``.
"""

from __future__ import annotations


class RunlaneError(Exception):
    """Base class of every runlane-specific error."""


class RunNotFoundError(RunlaneError, LookupError):
    """A run reference (numeric id, display id or uid) names no run in the store."""

    def __init__(self, ref: object) -> None:
        super().__init__(f"no run {ref!r} in this store (a numeric id, display id like ABC-12, or uid)")
        self.ref = ref


class ProjectNotFoundError(RunlaneError, LookupError):
    """A project name names no project in the store."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no project {name!r} in this store")
        self.name = name


class StoreNotFoundError(RunlaneError, FileNotFoundError):
    """A reader was pointed at a directory that holds no runlane store."""


class StoreError(RunlaneError):
    """The store could not do what was asked (locked for too long, written by a newer runlane, read-only
    for this process, ...)."""


class StoreCorruptError(StoreError):
    """The store's database file is damaged or is not a runlane database; the message names the file."""


class StoreUnavailableError(StoreError):
    """A transient failure: the store is locked, its disk is full, the server cannot be reached.

    Retrying later can succeed, so writers back off and offer the same records again.
    """


class OffsetConflictError(StoreError):
    """A journal batch does not start where the store's copy of that journal ends.

    ``committed`` is the offset the store holds: a writer continues from there (after a lost
    acknowledgement, or while another process replays the same journal).
    """

    def __init__(self, writer_id: str, committed: int, start: int) -> None:
        super().__init__(
            f"journal of writer {writer_id}: the store holds records up to byte {committed}, "
            f"this batch starts at byte {start}"
        )
        self.writer_id = writer_id
        self.committed = committed


class DeletionRefusedError(RunlaneError):
    """A run cannot be deleted: other runs fork from it or nest in it, or a live process writes to it."""


class RunClosedError(RunlaneError, RuntimeError):
    """A write reached a run after this process called ``finish()`` or ``close()`` on it."""


class JournalWriteError(RunlaneError, OSError):
    """The journal could not be appended to (disk full, file removed): the data was not recorded."""


class JournalDamagedError(RunlaneError, RuntimeError):
    """A journal could not be read to its end: what preceded the damage is stored, the file is kept, and
    the message says where the damage and the file are."""


class CaptureUnavailableError(RunlaneError, RuntimeError):
    """A capture option cannot work in this interpreter (say, console capture without ``sys.executable``)."""


class ConsoleBusyError(RunlaneError, RuntimeError):
    """``capture_console=True`` while another run of this process captures the console (fds 1 and 2)."""


class SnapshotTooLargeError(RunlaneError, ValueError):
    """``snapshot_code=True`` found a workspace over the snapshot's size or file-count limit."""
