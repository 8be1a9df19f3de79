"""What a step is: a signed 64-bit integer, because that is what every store can hold.

SQLite's INTEGER, PostgreSQL's BIGINT and the chunks' packed ``q`` columns are all int64, so a step
outside ``[STEP_MIN, STEP_MAX]`` is refused where the user passes it rather than accepted into a journal
that no store could ingest. Pure code, shared by the SDK, the read API and the stores.
"""

from __future__ import annotations

import operator

STEP_MIN = -(2**63)
STEP_MAX = 2**63 - 1


def as_integer(value: object) -> int | None:
    """``value`` as a Python int if it is an integer (int, numpy or torch integer scalar, 0-d integer
    array or tensor); None for anything else, booleans included (``True`` is not a step)."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or "bool" in str(getattr(value, "dtype", "")):
        return None
    if not hasattr(type(value), "__index__"):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:  # a float tensor or array also has __index__, and refuses it
        return None


def in_range(step: int) -> bool:
    return STEP_MIN <= step <= STEP_MAX
