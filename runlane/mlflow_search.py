"""MLflow's search grammar: filter strings, ``order_by`` clauses and page tokens, as pure functions.

One parser for everything that speaks MLflow's search language: ``runlane.compat.mlflow.search_runs``
and ``search_experiments``, ``MlflowClient``, and the tracking server's ``runs/search`` and
``experiments/search`` routes. It imports nothing of the SDK or the store: callers hand it ``Row``s.

The grammar (MLflow's ``SearchUtils``, matched by behaviour):

- A filter is comparisons joined by ``AND`` (any case); MLflow has no ``OR`` and no parentheses.
- A comparison is ``<identifier> <comparator> <value>``. The identifier is ``<entity>.<key>`` with the entity
  ``metric(s)``, ``param(s)``/``parameter(s)``, ``tag(s)`` or ``attribute(s)``/``attr``/``run``; a bare name is
  an attribute. A key with other characters than letters, digits, ``_`` and ``.`` is quoted with backticks
  or double quotes: ``metrics.`val/acc` > 0.9``, ``tags."mlflow.user" = 'me'``.
- Metrics compare with ``= != < <= > >=`` against a number; params and tags with ``= != LIKE ILIKE``
  against a quoted string (``%`` and ``_`` are LIKE's wildcards); string attributes also take ``IN`` and
  ``NOT IN`` with a parenthesised list (``run_id`` only); numeric attributes (``start_time``, ``end_time``,
  alias ``created``) compare as integers (milliseconds).
- A row without the key never matches, whatever the comparator (MLflow's rule: ``!=`` too).
- ``order_by`` items are ``<identifier> [ASC|DESC]``; rows missing the value, and NaN metrics, sort last
  in either direction (NaN before missing).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

EntityType = Literal["metric", "parameter", "tag", "attribute"]


class SearchError(ValueError):
    """A filter, order_by or page token that cannot be used; MLflow answers INVALID_PARAMETER_VALUE."""


_ENTITIES: Mapping[str, EntityType] = {
    "metric": "metric",
    "metrics": "metric",
    "parameter": "parameter",
    "parameters": "parameter",
    "param": "parameter",
    "params": "parameter",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_KEY_ALIASES = {"created": "start_time", "Created": "start_time", "run name": "run_name", "Run name": "run_name"}
_KEY_ALIASES["Run Name"] = "run_name"

_NUMBER_COMPARATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_COMPARATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_LIST_COMPARATORS = frozenset({"IN", "NOT IN"})


@dataclass(frozen=True)
class Schema:
    """What one kind of search accepts: the entity types and which attributes exist, which are numbers,
    which may be sorted on and which take ``IN`` lists."""

    entities: frozenset[EntityType]
    string_attributes: frozenset[str]
    numeric_attributes: frozenset[str]
    orderable_attributes: frozenset[str]
    list_attributes: frozenset[str] = frozenset()

    @property
    def attributes(self) -> frozenset[str]:
        return self.string_attributes | self.numeric_attributes


RUNS = Schema(
    entities=frozenset({"metric", "parameter", "tag", "attribute"}),
    string_attributes=frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"}),
    numeric_attributes=frozenset({"start_time", "end_time"}),
    orderable_attributes=frozenset(
        {"run_id", "run_name", "status", "user_id", "artifact_uri", "start_time", "end_time"}
    ),
    list_attributes=frozenset({"run_id"}),
)
EXPERIMENTS = Schema(
    entities=frozenset({"tag", "attribute"}),
    string_attributes=frozenset({"name", "experiment_id"}),
    numeric_attributes=frozenset({"creation_time", "last_update_time"}),
    orderable_attributes=frozenset({"name", "experiment_id", "creation_time", "last_update_time"}),
)


@dataclass(frozen=True)
class Row:
    """What a search sees of one run (or experiment): metrics (latest values), params, tags, attributes."""

    attributes: Mapping[str, Any]
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def value(self, entity: EntityType, key: str) -> Any:
        if entity == "metric":
            return self.metrics.get(key)
        if entity == "parameter":
            return self.params.get(key)
        if entity == "tag":
            return self.tags.get(key)
        return self.attributes.get(key)


@dataclass(frozen=True)
class Clause:
    entity: EntityType
    key: str
    comparator: str
    value: Any  # float for metrics, int for numeric attributes, str, or tuple[str, ...] for IN lists

    def matches(self, row: Row) -> bool:
        have = row.value(self.entity, self.key)
        if have is None:
            return False
        return _COMPARE[self.comparator](have, self.value)


@dataclass(frozen=True)
class OrderKey:
    entity: EntityType
    key: str
    ascending: bool


# -- the tokenizer ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise SearchError(f"Invalid filter '{text}': unexpected character {text[position]!r} at {position}")
        kind = found.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, found.group(), position))
        position = found.end()
    return out


class _Reader:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.items = _tokens(text)
        self.index = 0

    def peek(self, offset: int = 0) -> _Token | None:
        at = self.index + offset
        return self.items[at] if at < len(self.items) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("it ends too early")
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.index += 1
            return True
        return False

    def error(self, why: str) -> SearchError:
        return SearchError(f"Invalid {self.what} '{self.text}': {why}")


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    if token.kind == "string":
        quote = token.text[0]
        return body.replace(quote * 2, quote)
    return body


def _identifier(reader: _Reader, schema: Schema) -> tuple[EntityType, str]:
    first = reader.take()
    if first.kind not in ("word", "backtick"):
        raise reader.error(f"expected a column like 'metrics.loss' or 'attributes.status', found {first.text!r}")
    head = _unquote(first) if first.kind == "backtick" else first.text
    dot = reader.peek()
    if dot is None or dot.text != ".":
        entity: EntityType = "attribute"
        key = head
    else:
        if head not in _ENTITIES:
            raise SearchError(
                f"Invalid entity type '{head}'. Valid values are ['metric', 'parameter', 'tag', 'attribute']"
            )
        entity = _ENTITIES[head]
        reader.take()
        part = reader.take()
        if part.kind in ("string", "backtick"):
            key = _unquote(part)
        elif part.kind in ("word", "number"):
            # A bare key may hold dots (tags.mlflow.user): join the words and dots that follow.
            pieces = [part.text]
            while (nxt := reader.peek()) is not None and nxt.text == "." and (after := reader.peek(1)) is not None:
                if after.kind not in ("word", "number") or after.at != nxt.at + 1:
                    break
                reader.index += 2
                pieces += [".", after.text]
            key = "".join(pieces)
        else:
            raise reader.error(f"expected a key after '{head}.', found {part.text!r}")
    if entity not in schema.entities:
        raise SearchError(f"Invalid entity type '{head}': this search filters on {sorted(schema.entities)}")
    if entity == "attribute":
        key = _KEY_ALIASES.get(key, key)
        if key not in schema.attributes:
            raise SearchError(f"Invalid attribute key '{key}' specified. Valid keys are '{sorted(schema.attributes)}'")
    return entity, key


def _comparator(reader: _Reader) -> str:
    token = reader.take()
    if token.kind == "op":
        return "!=" if token.text == "<>" else token.text
    word = token.text.upper() if token.kind == "word" else ""
    if word in ("LIKE", "ILIKE", "IN"):
        return word
    if word == "NOT" and reader.keyword("IN"):
        return "NOT IN"
    raise reader.error(f"expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN), found {token.text!r}")


def _value(reader: _Reader, schema: Schema, entity: EntityType, key: str, comparator: str) -> Any:
    numeric = entity == "metric" or (entity == "attribute" and key in schema.numeric_attributes)
    allowed = _NUMBER_COMPARATORS if numeric else _STRING_COMPARATORS
    if entity == "attribute" and key in schema.list_attributes:
        allowed = allowed | _LIST_COMPARATORS
    if comparator not in allowed:
        raise SearchError(f"Invalid comparator '{comparator}' not one of '{sorted(allowed)}'")
    if comparator in _LIST_COMPARATORS:
        if reader.take().text != "(":
            raise reader.error(f"{comparator} takes a list of quoted strings like ('a', 'b')")
        items: list[str] = []
        while True:
            item = reader.take()
            if item.kind != "string":
                raise reader.error(f"{comparator} takes a list of quoted strings, found {item.text!r}")
            items.append(_unquote(item))
            closing = reader.take()
            if closing.text == ")":
                return tuple(items)
            if closing.text != ",":
                raise reader.error(f"expected ',' or ')' in the {comparator} list, found {closing.text!r}")
    token = reader.take()
    if numeric:
        if token.kind != "number":
            what = "metric" if entity == "metric" else f"numeric attribute: {key}"
            raise SearchError(f"Expected numeric value type for {what}. Found {token.text}")
        return float(token.text) if entity == "metric" else int(float(token.text))
    if token.kind != "string":
        raise SearchError(f"Expected a quoted string value for {entity} (e.g. 'my-value'). Got value {token.text}")
    return _unquote(token)


def parse_filter(text: str | None, schema: Schema = RUNS) -> list[Clause]:
    """The comparisons of a filter string (all must hold); empty for ``None`` or ``""``."""
    if text is None or not text.strip():
        return []
    if not isinstance(text, str):
        raise SearchError(f"filter must be a string, got {type(text).__name__}")
    reader = _Reader(text, "filter")
    clauses: list[Clause] = []
    while True:
        entity, key = _identifier(reader, schema)
        comparator = _comparator(reader)
        clauses.append(Clause(entity, key, comparator, _value(reader, schema, entity, key, comparator)))
        if reader.peek() is None:
            return clauses
        if not reader.keyword("AND"):
            token = reader.take()
            raise reader.error(f"clauses are joined by AND (MLflow has no OR), found {token.text!r}")


def parse_order_by(items: Sequence[str] | None, schema: Schema = RUNS) -> list[OrderKey]:
    """``order_by`` clauses such as ``"metrics.loss ASC"`` or ``"attributes.start_time DESC"``."""
    keys: list[OrderKey] = []
    for item in items or ():
        if not isinstance(item, str) or not item.strip():
            raise SearchError(f"Invalid order_by clause {item!r}: a string like 'metrics.loss DESC'")
        reader = _Reader(item, "order_by clause")
        entity, key = _identifier(reader, schema)
        if entity == "attribute" and key not in schema.orderable_attributes:
            raise SearchError(
                f"Invalid order_by clause '{item}': attributes sort on {sorted(schema.orderable_attributes)}"
            )
        ascending = True
        if reader.keyword("DESC"):
            ascending = False
        else:
            reader.keyword("ASC")
        if reader.peek() is not None:
            raise reader.error("expected '<column> [ASC|DESC]'")
        keys.append(OrderKey(entity, key, ascending))
    return keys


def filter_rows(rows: Sequence[Row], clauses: Sequence[Clause]) -> list[Row]:
    return [row for row in rows if all(clause.matches(row) for clause in clauses)]


def sort_rows(rows: Sequence[Row], order: Sequence[OrderKey], default: Sequence[OrderKey]) -> list[Row]:
    """Sorted by ``order``, ties broken by ``default`` (runs: start_time DESC, then run_id)."""
    out = list(rows)
    for key in reversed([*order, *default]):  # stable sorts applied last key first
        present = [row for row in out if _sortable(row.value(key.entity, key.key))]
        nans = [row for row in out if _is_nan(row.value(key.entity, key.key))]
        missing = [row for row in out if row.value(key.entity, key.key) is None]
        present.sort(key=lambda row: row.value(key.entity, key.key), reverse=not key.ascending)
        out = present + nans + missing
    return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _sortable(value: Any) -> bool:
    return value is not None and not _is_nan(value)


# -- page tokens --------------------------------------------------------------------------------


def page_token(offset: int) -> str:
    """An opaque token for the page that starts at ``offset`` (base64 of a small JSON object, as MLflow)."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_offset(token: str | None) -> int:
    """Where the page a token names starts; 0 for no token; ``SearchError`` for one we did not make."""
    if not token:
        return 0
    try:
        decoded = json.loads(base64.b64decode(token, validate=True))
        offset = decoded["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise SearchError(f"Invalid page token {token!r}: use the next_page_token of a previous page") from exc
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise SearchError(f"Invalid page token {token!r}: use the next_page_token of a previous page")
    return offset


def page(rows: Sequence[Row], max_results: int, token: str | None) -> tuple[list[Row], str | None]:
    """One page of ``rows`` and the token of the next (None after the last)."""
    start = page_offset(token)
    end = start + max_results
    return list(rows[start:end]), (page_token(end) if end < len(rows) else None)


# -- comparisons --------------------------------------------------------------------------------


def _like_pattern(pattern: str, flags: int = 0) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), flags | re.DOTALL)


def _like(have: Any, pattern: Any) -> bool:
    return _like_pattern(str(pattern)).fullmatch(str(have)) is not None


def _ilike(have: Any, pattern: Any) -> bool:
    return _like_pattern(str(pattern), re.IGNORECASE).fullmatch(str(have)) is not None


_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "LIKE": _like,
    "ILIKE": _ilike,
    "IN": lambda a, b: a in b,
    "NOT IN": lambda a, b: a not in b,
}
