"""The wire format: the JSON shape of every entity, shared by every store, the CLI and (later) the server.

Two layers, each defined once here:

1. **Values** (``dumps``/``loads``, ``to_jsonable``/``from_jsonable``): strict JSON that keeps what Python
   JSON loses. Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON (browsers,
   PostgreSQL's ``jsonb`` and most clients refuse them), so a non-finite float is written as a tag,
   ``{"$float": "NaN" | "Infinity" | "-Infinity"}``. Tags are single-key objects whose key starts with
   ``$``; a *user's* object of that shape (in a config, a summary, file metadata) is escaped as
   ``{"$esc": [key, value]}``, so ``{"$float": "NaN"}`` written by a user reads back as that dict, never
   as a float. Every single-key ``$`` object is escaped, not only today's tags, so tags added in a later
   API version cannot capture data stored today.
2. **Entities** (``to_wire``/``from_wire``): each entity of ``runlane.entities`` as a JSON object with one
   member per field, nested entities as objects (``RunInfo.metrics`` maps keys to ``MetricSummary``
   objects), tuples as arrays and a ``History`` as parallel columns. ``from_wire`` ignores members it
   does not know (a newer server may add some within an API version) and names a missing one.

``API_VERSION`` is the version of both layers; a change that an older reader would misread gets a new one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar, cast

from .entities import (
    Bucket,
    History,
    ImageInfo,
    Lineage,
    LogLine,
    MetricPoint,
    MetricSummary,
    ProjectInfo,
    RunFile,
    RunInfo,
    SystemPoint,
    SystemSample,
    WriterInfo,
)

API_VERSION = 1

T = TypeVar("T")

_FLOAT = "$float"
_ESCAPE = "$esc"
_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# -- values -------------------------------------------------------------------------------------


def _tag_float(value: float) -> Any:
    if math.isnan(value):
        return {_FLOAT: "NaN"}
    return {_FLOAT: "Infinity" if value > 0 else "-Infinity"}


def to_jsonable(value: Any) -> Any:
    """``value`` with non-finite floats tagged and user objects shaped like a tag escaped (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _tag_float(value)
    if isinstance(value, dict):
        out = {k: to_jsonable(v) for k, v in value.items()}
        if len(out) == 1:
            ((key, item),) = out.items()
            if isinstance(key, str) and key.startswith("$"):
                return {_ESCAPE: [key, item]}
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _untag(obj: dict[str, Any]) -> Any:
    # An object_hook runs bottom-up: the members of an escaped object are decoded already, which is why
    # the escape holds its one member as a [key, value] array rather than as an object.
    if len(obj) != 1:
        return obj
    if _FLOAT in obj:
        name = obj[_FLOAT]
        if isinstance(name, str) and name in _NAMES:
            return _NAMES[name]
    elif _ESCAPE in obj:
        pair = obj[_ESCAPE]
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and pair[0].startswith("$"):
            return {pair[0]: pair[1]}
    return obj


def from_jsonable(value: Any) -> Any:
    """The inverse of ``to_jsonable`` for a value already parsed from JSON (e.g. by a web framework)."""
    if isinstance(value, dict):
        return _untag({k: from_jsonable(v) for k, v in value.items()})
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Encode to strict JSON (``allow_nan=False`` holds because non-finite floats are tagged)."""
    return json.dumps(to_jsonable(value), allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Decode JSON written by ``dumps``: tagged non-finite floats restored, escaped user objects unwrapped."""
    return json.loads(text, object_hook=_untag)


# -- entities -----------------------------------------------------------------------------------


class _Codec(NamedTuple):
    encode: Callable[[Any], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], Any]


def _field_names(cls: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return cast(tuple[str, ...], cls._fields)  # type: ignore[attr-defined]


def _member(data: Mapping[str, Any], name: str, cls: type) -> Any:
    try:
        return data[name]
    except KeyError:
        raise ValueError(f"a {cls.__name__} on the wire needs the member {name!r}") from None


def _flat(cls: type) -> _Codec:
    """An entity whose fields are all plain values: one member per field, in field order."""
    names = _field_names(cls)

    def encode(entity: Any) -> dict[str, Any]:
        return {name: getattr(entity, name) for name in names}

    def decode(data: Mapping[str, Any]) -> Any:
        return cls(*[_member(data, name, cls) for name in names])

    return _Codec(encode, decode)


_RUN_FIELDS = _field_names(RunInfo)
_SUMMARY = _flat(MetricSummary)
_WRITER = _flat(WriterInfo)


def _encode_run(run: RunInfo) -> dict[str, Any]:
    out = {name: getattr(run, name) for name in _RUN_FIELDS}
    out["tags"] = list(run.tags)
    out["metrics"] = {key: _SUMMARY.encode(series) for key, series in run.metrics.items()}
    out["writers"] = [_WRITER.encode(writer) for writer in run.writers]
    return out


def _decode_run(data: Mapping[str, Any]) -> RunInfo:
    values = {name: _member(data, name, RunInfo) for name in _RUN_FIELDS}
    values["tags"] = tuple(values["tags"])
    values["metrics"] = {key: _SUMMARY.decode(series) for key, series in values["metrics"].items()}
    values["writers"] = tuple(_WRITER.decode(writer) for writer in values["writers"])
    return RunInfo(**values)


def _encode_lineage(lineage: Lineage) -> dict[str, Any]:
    return {
        "run": _encode_run(lineage.run),
        "root": _encode_run(lineage.root),
        "ancestors": [_encode_run(run) for run in lineage.ancestors],
        "children": [_encode_run(run) for run in lineage.children],
    }


def _decode_lineage(data: Mapping[str, Any]) -> Lineage:
    return Lineage(
        run=_decode_run(_member(data, "run", Lineage)),
        root=_decode_run(_member(data, "root", Lineage)),
        ancestors=tuple(_decode_run(run) for run in _member(data, "ancestors", Lineage)),
        children=tuple(_decode_run(run) for run in _member(data, "children", Lineage)),
    )


_HISTORY_COLUMNS = ("steps", "values", "times", "stages", "run_ids")


def _encode_history(history: History) -> dict[str, Any]:
    # Columns, not one object per point: a long series is most of a response, and a chart wants columns.
    return {name: list(getattr(history, name)) for name in _HISTORY_COLUMNS}


def _decode_history(data: Mapping[str, Any]) -> History:
    columns = [list(_member(data, name, History)) for name in _HISTORY_COLUMNS]
    if len({len(column) for column in columns}) > 1:
        raise ValueError(f"a History on the wire needs columns of one length, got {[len(c) for c in columns]}")
    return History(*columns)


_CODECS: dict[type, _Codec] = {
    RunInfo: _Codec(_encode_run, _decode_run),
    Lineage: _Codec(_encode_lineage, _decode_lineage),
    History: _Codec(_encode_history, _decode_history),
    **{
        cls: _flat(cls)
        for cls in (
            Bucket,
            ImageInfo,
            LogLine,
            MetricPoint,
            MetricSummary,
            ProjectInfo,
            RunFile,
            SystemPoint,
            SystemSample,
            WriterInfo,
        )
    },
}


def to_wire(entity: Any) -> dict[str, Any]:
    """The JSON shape of an entity (a dict of plain values; ``dumps`` makes it strict JSON)."""
    codec = _CODECS.get(type(entity))
    if codec is None:
        raise TypeError(f"{type(entity).__name__} is not a runlane entity with a wire shape")
    return codec.encode(entity)


def from_wire(cls: type[T], data: Any) -> T:
    """The entity ``cls`` from its JSON shape (as ``loads`` returns it); ``ValueError`` naming what is wrong."""
    codec = _CODECS.get(cls)
    if codec is None:
        raise TypeError(f"{cls.__name__} is not a runlane entity with a wire shape")
    if not isinstance(data, Mapping):
        raise ValueError(f"a {cls.__name__} on the wire is a JSON object, got {type(data).__name__}")
    try:
        return cast(T, codec.decode(data))
    except (TypeError, AttributeError) as exc:  # a member of the wrong kind (a number where a list belongs)
        raise ValueError(f"a {cls.__name__} on the wire is malformed: {exc}") from exc
