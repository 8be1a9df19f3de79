"""The runs page in SQL (``Store.runs_page``), for SQLite and PostgreSQL alike.

Returns exactly the pages of ``runs_query.reference_page`` (the contract suite compares them over random
runs) with the same offset cursor, without reading a run that is not on the page: the filters, the sort
and the count run in the database. A column sort orders by the column itself (indexes on
``(project_id, created_at, id)`` and ``(created_at, id)`` give the default order's first pages without
a sort); a ``config.<path>``/``summary.<path>`` sort computes each matching run's (class, number, text)
as the reference does, through ``Dialect.json_field``; ``best`` joins the primary metric's series row.
Metric points are never read.
"""

from __future__ import annotations

from typing import Any

from ..errors import ProjectNotFoundError
from ..naming import normalize_project
from .runs_query import BEST, RunsQuery, decode_offset
from .sql import Db, Params, like_pattern

#: Columns that are never NULL: ordered by themselves, so an index gives the order.
_PLAIN = {"created_at": "r.created_at", "started_at": "r.started_at", "id": "r.id", "display_id": "r.seq"}
#: Columns that may be NULL (missing: last in either direction).
_NULLABLE = {
    "ended_at": "r.ended_at",
    "duration": "(r.ended_at - r.started_at)",
    "name": "r.name",
    "alias": "r.alias",
    BEST: "(CASE WHEN r.primary_mode = 'min' THEN s.min_value ELSE s.max_value END)",
}
_TEXT = {"name", "alias", "status"}
#: Where the search looks (``runs_query.matches_search``): the display id, name, alias and notes.
_SEARCHED = ("(p.key || '-' || r.seq)", "r.name", "r.alias", "r.notes")


def _filters(db: Db, query: RunsQuery) -> tuple[str, list[Any]]:
    p = Params()
    clauses = []
    if query.project is not None:
        name = normalize_project(query.project)
        if db.one("SELECT 1 FROM projects WHERE name = ?", (name,)) is None:
            raise ProjectNotFoundError(name)
        clauses.append(f"p.name = {p(name)}")
    if query.statuses:
        wanted = sorted(set(query.statuses))
        clauses.append(f"r.status IN ({','.join(p(s) for s in wanted)})")
    for tag in sorted(set(query.tags)):
        # one primary-key probe per run and tag (a GROUP BY over the tag's rows was 3x slower on PostgreSQL)
        clauses.append(f"EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.tag = {p(tag)})")
    if query.search:
        pattern = like_pattern(query.search)
        clauses.append("(" + " OR ".join(db.dialect.like.format(column, p(pattern)) for column in _SEARCHED) + ")")
    return " AND ".join(clauses) or "TRUE", p.values


def page(db: Db, query: RunsQuery) -> tuple[list[int], int] | None:
    """The ids of the runs on the page, in page order, and how many runs match in all; None when this
    dialect cannot express the sort (the caller then uses the reference implementation)."""
    where, where_params = _filters(db, query)
    tables = "runs r JOIN projects p ON p.id = r.project_id"
    if query.sort == BEST:
        tables += " LEFT JOIN series s ON s.run_id = r.id AND s.key = r.primary_metric"
    direction = " DESC" if query.descending else " ASC"
    offset = decode_offset(query.cursor) if query.cursor else 0
    text = db.dialect.text_order
    if query.sort in _PLAIN or query.sort == "status":
        column = _PLAIN.get(query.sort) or f"r.status{text}"
        sql = f"SELECT r.id FROM {tables} WHERE {where} ORDER BY {column}{direction}, r.id{direction}"
        select_params: list[Any] = []
    elif query.sort in _NULLABLE:
        column = _NULLABLE[query.sort] + (text if query.sort in _TEXT else "")
        sql = (
            f"SELECT r.id FROM {tables} WHERE {where} ORDER BY ({column} IS NULL), {column}{direction}, r.id{direction}"
        )
        select_params = []
    else:
        source, _, path = query.sort.partition(".")
        p = Params()
        expressions = db.dialect.json_field(p, source, path.split("."))
        if expressions is None:
            return None
        kind, number, string = expressions
        # The subquery names the three values, so the order can use them in expressions on both engines.
        sql = (
            f"SELECT id FROM (SELECT r.id AS id, {kind} AS k, {number} AS n, {string} AS t FROM {tables}"
            f" WHERE {where}) q ORDER BY (k = 2), k{direction}, n{direction}, t{direction}, id{direction}"
        )
        select_params = p.values
    ids = [row[0] for row in db.all(f"{sql} LIMIT ? OFFSET ?", [*select_params, *where_params, query.limit, offset])]
    (total,) = db.one(f"SELECT count(*) FROM {tables} WHERE {where}", where_params)
    return ids, int(total)


def in_order(ids: list[int], rows: list[Any]) -> list[Any]:
    """``rows`` (whose first column is the run id) in the order of ``ids``."""
    by_id = {row[0]: row for row in rows}
    return [by_id[run_id] for run_id in ids if run_id in by_id]
