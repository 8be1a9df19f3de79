"""Run statuses: the canonical lower-case names and the aliases users of other tools type."""

from __future__ import annotations

SCHEDULED = "scheduled"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
KILLED = "killed"

STATUSES: tuple[str, ...] = (SCHEDULED, RUNNING, FINISHED, FAILED, KILLED)
TERMINAL: frozenset[str] = frozenset({FINISHED, FAILED, KILLED})

_ALIASES = {
    "completed": FINISHED,
    "complete": FINISHED,
    "success": FINISHED,
    "interrupted": KILLED,
    "terminated": KILLED,
    "cancelled": KILLED,
    "canceled": KILLED,
    "crashed": FAILED,
}


def normalize_status(status: object) -> str:
    """Return the canonical name of ``status`` or raise ``ValueError`` naming the accepted ones."""
    if not isinstance(status, str):
        raise ValueError(f"status must be a string, got {type(status).__name__}: {status!r}")
    lowered = status.strip().lower()
    if lowered in STATUSES:
        return lowered
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    accepted = ", ".join(STATUSES + tuple(_ALIASES))
    raise ValueError(f"unknown run status {status!r}; accepted (any case): {accepted}")
