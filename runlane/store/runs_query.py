"""The runs-page query: one page of runs, sorted, filtered and searched, with a cursor for the next page.

Shared by every layer that lists runs for a person (``Api.runs_page``, the CLI, the server's runs table),
so the argument checks live here once. Backends answer it with ``Store.runs_page``; the reference
implementation below (in Python over ``Store.runs``) defines the semantics that a backend's SQL must
match, and the contract suite holds both to it.

Sort keys:

- a column: ``created_at``, ``started_at``, ``ended_at``, ``duration``, ``display_id`` (by its number),
  ``name``, ``alias``, ``status``, ``id``;
- ``config.<path>`` / ``summary.<path>``: a field of the run's config or summary (dots separate nested keys);
  numbers sort before strings ascending (after them descending), booleans as 0/1, and runs without
  the field (or with a list or object there) come last in either direction;
- ``best``: the primary metric's best value (runs without one come last).

Search: the display id, name, alias or notes contain the text, ignoring the case of ASCII letters (only
those: ``fold_ascii``), as the search of a run's logs does.

The cursor is opaque to callers: pass back ``RunsPage.next_cursor`` unchanged, with the same query.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
from dataclasses import dataclass
from typing import Any

from ..entities import RunInfo
from ..statuses import STATUSES

COLUMNS: tuple[str, ...] = (
    "created_at",
    "started_at",
    "ended_at",
    "duration",
    "display_id",
    "name",
    "alias",
    "status",
    "id",
)
FIELD_PREFIXES: tuple[str, ...] = ("config.", "summary.")
BEST = "best"
MAX_LIMIT = 1000
MAX_SEARCH = 200


@dataclass(frozen=True)
class RunsQuery:
    """What page of which runs. ``check()`` names the first bad argument with a ``ValueError``."""

    project: str | None = None
    sort: str = "created_at"
    descending: bool = True
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    search: str | None = None
    limit: int = 50
    cursor: str | None = None

    def check(self) -> RunsQuery:
        if not isinstance(self.sort, str) or not (
            self.sort in COLUMNS
            or self.sort == BEST
            or (self.sort.startswith(FIELD_PREFIXES) and len(self.sort.partition(".")[2]) > 0)
        ):
            raise ValueError(
                f"sort={self.sort!r} is not a runs column; use one of {', '.join(COLUMNS)}, {BEST!r}, "
                "'config.<field>' or 'summary.<field>'"
            )
        if not isinstance(self.descending, bool):
            raise ValueError(f"descending must be true or false, got {self.descending!r}")
        for status in self.statuses:
            if status not in STATUSES:
                raise ValueError(f"status {status!r} is not a run status; use one of {', '.join(STATUSES)}")
        for tag in self.tags:
            if not isinstance(tag, str) or not tag:
                raise ValueError(f"tag filter {tag!r} must be a non-empty string")
        if self.search is not None and (not isinstance(self.search, str) or len(self.search) > MAX_SEARCH):
            raise ValueError(f"search must be a string of at most {MAX_SEARCH} characters")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {self.limit!r}")
        if self.cursor is not None:
            decode_offset(self.cursor)
        return self


@dataclass(frozen=True)
class RunsPage:
    """One page of runs, the cursor of the next (None on the last page) and how many runs match in all."""

    runs: list[RunInfo]
    next_cursor: str | None
    total: int


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_offset(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = data["o"]
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValueError(f"cursor {cursor[:40]!r} is not a runs cursor from this query") from exc
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"cursor {cursor[:40]!r} is not a runs cursor from this query")
    return offset


def field_value(run: RunInfo, sort: str) -> Any:
    """The value a run sorts by (None: the run lacks it and sorts last)."""
    if sort == BEST:
        return run.best_value
    if sort == "duration":
        return run.duration
    if sort == "display_id":
        return int(run.display_id.rpartition("-")[2])
    if sort in COLUMNS:
        return getattr(run, sort)
    source, _, path = sort.partition(".")
    node: Any = run.config if source == "config" else run.summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return int(node)
    return node if isinstance(node, (int, float, str)) else None


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold_ascii(text: str) -> str:
    """``text`` with ASCII letters in lower case and every other character as it is: the case folding of
    every search in runlane (SQL engines agree on ASCII, not on the rest of Unicode)."""
    return text.translate(_ASCII_LOWER)


def matches_search(run: RunInfo, text: str) -> bool:
    needle = fold_ascii(text)
    return any(needle in fold_ascii(value) for value in (run.display_id, run.name, run.alias, run.notes) if value)


def reference_page(candidates: list[RunInfo], query: RunsQuery) -> RunsPage:
    """The semantics: filter by search, sort (missing values last, ties by id in the sort direction),
    then cut the page at the cursor."""
    rows = [run for run in candidates if not query.search or matches_search(run, query.search)]
    keyed = [(field_value(run, query.sort), run) for run in rows]

    def order(item: tuple[Any, RunInfo]) -> tuple[Any, ...]:
        value, run = item
        return (1, 0, value, run.id) if isinstance(value, str) else (0, value, "", run.id)

    valued = sorted(((value, run) for value, run in keyed if value is not None), key=order, reverse=query.descending)
    present = [run for _, run in valued]
    missing = sorted((run for value, run in keyed if value is None), key=lambda run: run.id, reverse=query.descending)
    ordered = present + missing
    offset = decode_offset(query.cursor) if query.cursor else 0
    page = ordered[offset : offset + query.limit]
    nxt = offset + query.limit
    return RunsPage(page, encode_offset(nxt) if nxt < len(ordered) else None, len(ordered))
