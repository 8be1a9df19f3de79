"""The SQL dialect seam: what differs between SQLite and PostgreSQL, in one place.

The stores' logic (``sql_store``, ``sql_series``, ``sql_runs``) is written once, in the SQL both engines
accept: ``?`` placeholders, ``INSERT ... ON CONFLICT DO NOTHING``, ``INSERT ... RETURNING id`` (never a
driver's ``lastrowid``), ``TRUE`` for an always-true condition. Everything else is a member of
``Dialect`` (row locks, case-insensitive ``LIKE``, JSON field extraction, text order) or is recognised
through it (which unique constraint an insert broke), so no store module matches a driver's error text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol


class Cursor(Protocol):
    """What both drivers' cursors give back: rows as tuples."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Dialect(NamedTuple):
    """The parts of SQL the two engines spell differently.

    ``for_update``: appended to a SELECT that must lock the rows it reads until commit (PostgreSQL; SQLite's
    write transactions hold the whole database already). ``like``: a condition with two slots, a text
    expression and a placeholder, true where the text matches the ``like_pattern`` ignoring ASCII case (and
    only ASCII case, on both engines: SQLite's LIKE folds nothing else, PostgreSQL's ILIKE would).
    ``text_order``: a collation that orders text by code point, as Python does.
    ``unique_violation``: the name (``table.column``) of the unique constraint an exception says was broken,
    or None when it says something else.
    """

    name: str
    for_update: str
    like: str
    text_order: str
    unique_violation: Callable[[BaseException], str | None]
    #: Sort expressions of a field of a run's ``config`` or ``summary`` (``source``) at ``path`` (object keys):
    #: (class: 0 number or boolean, 1 string, 2 anything else or absent; the number; the text), their
    #: placeholders bound through ``Params`` in the order the three appear; None: not expressible. See ``sql_runs``.
    json_field: Callable[[Params, str, Sequence[str]], tuple[str, str, str] | None]


class Params:
    """Parameters collected in the order their ``?`` is written: ``f"{p(a)} ... {p(b)}"`` keeps them in step."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return "?"


class Db:
    """One connection seen through a dialect: ``?`` placeholders everywhere, rows as tuples."""

    def __init__(self, raw: Any, dialect: Dialect, translate: Callable[[str], str] | None = None) -> None:
        self.raw = raw
        self.dialect = dialect
        self._translate = translate or (lambda sql: sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self.raw.execute(self._translate(sql), params)
        return cursor

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()

    def blob_rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows with large binary columns (metric chunks): a driver that can sends those unencoded."""
        return self.all(sql, params)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self._executemany(self._translate(sql), rows)

    def _executemany(self, sql: str, rows: list[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT of one row and return the id the database gave it."""
        row = self.one(sql + " RETURNING id", params)
        return int(row[0])


@functools.lru_cache(maxsize=1024)
def pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled). Our SQL never has a ``?`` in a literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def like_pattern(text: str) -> str:
    """The pattern for ``Dialect.like`` that finds ``text`` anywhere, its own ``%``/``_`` taken literally."""
    from .runs_query import fold_ascii

    escaped = fold_ascii(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def marks(count: int) -> str:
    """``?, ?, ...``: the placeholders of an ``IN (...)`` list."""
    return ",".join("?" * count)
