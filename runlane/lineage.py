"""Fork lineage: which run owns a step, what a fork may start from, and how a stitched series is cut.

Pure functions over small records, shared by every store and the server, so that the embedded store,
PostgreSQL and the HTTP API resolve and stitch forks by exactly the same rule (SPEC.md section 4):

- A fork of run X at step S records as its parent the ancestor that owns S: walk up from X while
  ``S <= fork_step`` of the current run. (A logs 0-100; B forks A at 50 and logs 51-200; C forks B at 150.
  Forking C at 75 gives parent B, at 30 gives parent A, at 175 gives parent C.)
- The stitched series of a run is the root's points up to the first fork step, each intermediate run's
  points in (its fork_step, next fork_step], and the run's own points after its fork_step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from .merge import deep_merge


class Node(NamedTuple):
    """One run in a chain of ancestors, with the step range of its own user metrics."""

    run_id: int
    fork_run_id: int | None
    fork_step: int | None
    first_step: int | None  # None when the run has logged no user metric
    last_step: int | None


class Segment(NamedTuple):
    """The steps of a stitched series that come from ``run_id``: ``after < step <= upto`` (None: open)."""

    run_id: int
    after: int | None
    upto: int | None

    def clip(self, start: int | None, end: int | None) -> tuple[int | None, int | None] | None:
        """This segment's inclusive step bounds within ``[start, end]``, or None if they do not meet."""
        low = None if self.after is None else self.after + 1
        if start is not None:
            low = start if low is None else max(low, start)
        high = self.upto
        if end is not None:
            high = end if high is None else min(high, end)
        if low is not None and high is not None and low > high:
            return None
        return low, high


def segments(chain: Sequence[Node]) -> list[Segment]:
    """Cut a chain (root first, the run last) into the step ranges each run contributes."""
    out = []
    for i, node in enumerate(chain):
        upto = chain[i + 1].fork_step if i + 1 < len(chain) else None
        out.append(Segment(node.run_id, node.fork_step if i > 0 else None, upto))
    return out


def step_range(chain: Sequence[Node]) -> tuple[int, int] | None:
    """The first and last step of the run's stitched user metrics (own and inherited), or None."""
    lows, highs = [], []
    for node, segment in zip(chain, segments(chain), strict=True):
        if node.first_step is None or node.last_step is None:
            continue
        bounds = segment.clip(node.first_step, node.last_step)
        if bounds is None:
            continue
        low, high = bounds
        assert low is not None
        assert high is not None
        lows.append(low)
        highs.append(high)
    if not lows:
        return None
    return min(lows), max(highs)


def resolve_parent(chain: Sequence[Node], fork_step: int) -> int:
    """The id of the run that owns ``fork_step`` in ``chain`` (root first, the requested parent last)."""
    index = len(chain) - 1
    while index > 0:
        own_fork = chain[index].fork_step
        if own_fork is None or fork_step > own_fork:
            break
        index -= 1
    return chain[index].run_id


def check_fork_step(chain: Sequence[Node], fork_step: object, parent_label: str) -> int:
    """Validate ``fork_step`` against the logged range of the requested parent; return it as an int."""
    if isinstance(fork_step, bool) or not isinstance(fork_step, int):
        raise ValueError(f"fork_step must be an integer step, got {type(fork_step).__name__} {fork_step!r}")
    bounds = step_range(chain)
    if bounds is None:
        raise ValueError(f"run {parent_label} has no logged metrics, so there is no step to fork it at")
    low, high = bounds
    if not low <= fork_step <= high:
        raise ValueError(
            f"fork_step {fork_step} is outside the logged range of run {parent_label}: "
            f"choose a step from {low} to {high}"
        )
    return fork_step


def inherit_config(parent: dict[str, Any], child: dict[str, Any], enabled: bool) -> dict[str, Any]:
    """The fork's config: the parent's deep-merged with the child's (the child wins at every leaf)."""
    return deep_merge(parent, child) if enabled else dict(child)


def inherit_tags(parent: Sequence[str], child: Sequence[str], enabled: bool) -> tuple[str, ...]:
    """The fork's tags: the union of both, parent's first, without duplicates, when enabled."""
    return tuple(dict.fromkeys([*parent, *child])) if enabled else tuple(dict.fromkeys(child))
