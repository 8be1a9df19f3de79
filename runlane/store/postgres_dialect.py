"""How PostgreSQL spells the parts of SQL that differ from SQLite (see ``runlane.store.sql``)."""

from __future__ import annotations

from collections.abc import Sequence

from .sql import Dialect, Params

#: Unique constraints the shared store code recognises, by PostgreSQL's default constraint names.
_CONSTRAINTS = {"runs_uid_key": "runs.uid", "projects_name_key": "projects.name", "projects_key_key": "projects.key"}


def _unique_violation(exc: BaseException) -> str | None:
    import psycopg.errors

    if isinstance(exc, psycopg.errors.UniqueViolation):
        name = exc.diag.constraint_name or ""
        return _CONSTRAINTS.get(name, name)
    return None


def _json_field(p: Params, source: str, path: Sequence[str]) -> tuple[str, str, str] | None:
    # The stored generated column ``<source>_doc`` holds the JSON text parsed once, at write time.
    # ``#>`` indexes arrays by number too, while a field is reached only through objects
    # (``runs_query.field_value``): every step of the path but the last must be an object.
    column = f"r.{source}_doc"

    def value() -> str:
        through = [f"jsonb_typeof({column} #> {p(list(path[:i]))}::text[]) = 'object'" for i in range(1, len(path))]
        found = f"{column} #> {p(list(path))}::text[]"
        return f"(CASE WHEN {' AND '.join(through)} THEN {found} END)" if through else f"({found})"

    return (
        f"CASE jsonb_typeof({value()}) WHEN 'number' THEN 0 WHEN 'boolean' THEN 0 WHEN 'string' THEN 1 ELSE 2 END",
        f"CASE jsonb_typeof({value()}) WHEN 'number' THEN ({value()} #>> '{{}}')::double precision"
        f" WHEN 'boolean' THEN CASE WHEN {value()} = 'true'::jsonb THEN 1 ELSE 0 END END",
        f"CASE jsonb_typeof({value()}) WHEN 'string' THEN ({value()} #>> '{{}}') COLLATE \"C\" END",
    )


DIALECT = Dialect(
    name="postgresql",
    for_update=" FOR UPDATE",
    like="lower({} COLLATE \"C\") LIKE {} ESCAPE '\\'",  # lower() in the C collation folds ASCII only
    text_order=' COLLATE "C"',  # UTF-8 byte order = code point order (the default may be a locale's)
    unique_violation=_unique_violation,
    json_field=_json_field,
)
