"""The OpenAPI document's response schemas, derived from ``runlane.entities`` as ``runlane.wire`` writes them.

Routes answer wire shapes (not pydantic models), so their schemas are built here from the entities'
type hints: a ``float`` may be a number or a non-finite tag (``{"$float": "NaN"}``), an optional field
may be null, a nested entity is a reference. ``install`` adds them to the document and replaces
FastAPI's default 422 (which this API never answers) with the 4xx error body every route can answer.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..entities import (
    Bucket,
    ImageInfo,
    Lineage,
    LogLine,
    MetricSummary,
    ProjectInfo,
    RunFile,
    RunInfo,
    SystemSample,
    WriterInfo,
)
from ..lineage import Node
from ..store.base import OpenWriter

Schema = dict[str, Any]

FLOAT: Schema = {"anyOf": [{"type": "number"}, {"$ref": "#/components/schemas/NonFiniteFloat"}]}
ENTITIES: tuple[type, ...] = (
    Bucket,
    ImageInfo,
    Lineage,
    LogLine,
    MetricSummary,
    ProjectInfo,
    RunFile,
    RunInfo,
    SystemSample,
    WriterInfo,
    Node,
    OpenWriter,
)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _of(hint: Any) -> Schema:
    origin = typing.get_origin(hint)
    if hint is Any:
        return {}
    if hint is type(None):
        return {"type": "null"}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_of(arg) for arg in typing.get_args(hint)]}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return FLOAT
    if hint is str:
        return {"type": "string"}
    if origin is dict:
        _, value = typing.get_args(hint)
        return {"type": "object"} if value is Any else {"type": "object", "additionalProperties": _of(value)}
    if origin in (tuple, list):
        return {"type": "array", "items": _of(typing.get_args(hint)[0])}
    if hint in ENTITIES:
        return ref(hint.__name__)
    raise TypeError(f"no schema for {hint!r}")


def _entity(cls: type) -> Schema:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else list(cls._fields)  # type: ignore[attr-defined]
    return {"type": "object", "properties": {name: _of(hints[name]) for name in names}, "required": names}


def components() -> dict[str, Schema]:
    out = {cls.__name__: _entity(cls) for cls in ENTITIES}
    columns = {"steps": "integer", "run_ids": "integer"}
    out["History"] = {
        "type": "object",
        "properties": {
            **{name: {"type": "array", "items": {"type": kind}} for name, kind in columns.items()},
            "values": {"type": "array", "items": FLOAT},
            "times": {"type": "array", "items": FLOAT},
            "stages": {"type": "array", "items": {"type": ["string", "null"]}},
        },
        "required": ["steps", "values", "times", "stages", "run_ids"],
    }
    out["NonFiniteFloat"] = {
        "type": "object",
        "properties": {"$float": {"enum": ["NaN", "Infinity", "-Infinity"]}},
        "required": ["$float"],
        "additionalProperties": False,
    }
    out["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "committed": {"type": "integer"},
                },
                "required": ["code", "message", "field"],
            }
        },
        "required": ["error"],
    }
    return out


def items(item: Schema, *, next: Schema | None = None, **extra: Schema) -> Schema:
    """``{"items": [...], "next": ...}``: a list answer (``next`` only where it pages)."""
    properties: dict[str, Schema] = {"items": {"type": "array", "items": item}, **extra}
    if next is not None:
        properties["next"] = next
    return {"type": "object", "properties": properties, "required": list(properties)}


def obj(**properties: Schema) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


def ok(schema: Schema, description: str = "the answer") -> dict[int | str, Any]:
    """A route's ``responses=``: its 200 body."""
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


OK = ok(obj(ok={"const": True}))
INTEGER: Schema = {"type": "integer"}
CURSOR: Schema = {"type": ["integer", "null"]}

_ERROR = {"description": "a request the server refuses (see docs/http-api.md for the codes)",
          "content": {"application/json": {"schema": ref("Error")}}}  # fmt: skip
_UNAVAILABLE = {"description": "the store is briefly unavailable: retry after Retry-After seconds",
                "content": {"application/json": {"schema": ref("Error")}}}  # fmt: skip


def install(app: FastAPI) -> None:
    """Give ``app`` an OpenAPI document with these schemas and the error answers every route has."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemas.update(components())
            for operations in document["paths"].values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    responses.setdefault("4XX", _ERROR)
                    responses.setdefault("503", _UNAVAILABLE)
            app.openapi_schema = document
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010  (FastAPI's documented way to replace the document)
