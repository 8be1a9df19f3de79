"""Journal batches from the network: decoded from msgpack and checked field by field before ingest.

A local journal is written by runlane itself; a batch sent to the server is whatever a client sent, so
each record must have the shape of its type (``runlane.journal``) with values of the right kinds before
it reaches ``Store.ingest``. A bad record is a 400 naming its index and field, and nothing of the batch
is applied (ingest is one transaction), instead of an error deep inside the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from .. import journal
from ..blobs import check_blob_name
from ..naming import check_metric_key
from ..statuses import STATUSES
from .errors import ApiError

STREAMS = ("stdout", "stderr", "log")
FILE_KINDS = ("environment", "code")
PRIMARY_MODES = ("max", "min")
MAX_TEXT = journal.MAX_RECORD_BYTES


class BadRecord(ValueError):
    pass


def _number(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRecord(f"{what} must be a number, got {type(value).__name__}")


def _string(value: object, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise BadRecord(f"{what} must be a string{' or null' if optional else ''}, got {type(value).__name__}")


def _integer(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"{what} must be an integer, got {type(value).__name__}")


def _mapping(value: object, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"{what} must be a map, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise BadRecord(f"{what} has a key that is not a string: {key!r}")
    return value


def _plain(value: object, what: str, depth: int = 0) -> None:
    # Summary, config and file meta values are stored as JSON: only what JSON (and runlane.wire) can hold.
    if depth > 64:
        raise BadRecord(f"{what} is nested more than 64 levels deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, list):
        for item in value:
            _plain(item, what, depth + 1)
        return
    if isinstance(value, dict):
        for item in _mapping(value, what).values():
            _plain(item, what, depth + 1)
        return
    raise BadRecord(f"{what} holds a {type(value).__name__}, which JSON cannot hold")


# Metric keys already found valid: a batch repeats the same few keys in every record, and checking a key
# is most of what checking a record costs (bounded, so a client sending endless new keys cannot grow it).
_CHECKED_KEYS: set[str] = set()
_MAX_CHECKED_KEYS = 100_000


def _metrics(record: list[Any]) -> None:
    _, _, step, stage, values = record
    if type(step) is not int:
        _integer(step, "step")
    if stage is not None:
        _string(stage, "stage")
    if type(values) is not dict:
        _mapping(values, "values")
    for key, value in values.items():
        if key not in _CHECKED_KEYS:
            try:
                check_metric_key(key)  # not a string: TypeError
            except (TypeError, ValueError) as exc:
                raise BadRecord(str(exc)) from None
            if len(_CHECKED_KEYS) < _MAX_CHECKED_KEYS:
                _CHECKED_KEYS.add(key)
        kind = type(value)
        if kind is not float and kind is not int:  # bool is neither (its type is bool)
            _number(value, f"values[{key!r}]")


def _text(record: list[Any]) -> None:
    _, _, stream, text = record
    if stream not in STREAMS:
        raise BadRecord(f"stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    _string(text, "text")


def _values(record: list[Any]) -> None:
    _plain(_mapping(record[2], "values"), "values")


def _tags(record: list[Any]) -> None:
    for name, tags in (("added", record[2]), ("removed", record[3])):
        if not isinstance(tags, list) or not all(isinstance(tag, str) and tag for tag in tags):
            raise BadRecord(f"{name} must be a list of non-empty strings")


def _primary(record: list[Any]) -> None:
    _, _, name, mode = record
    _string(name, "name")
    if mode not in PRIMARY_MODES:
        raise BadRecord(f"mode must be 'max' or 'min', got {mode!r}")


def _blob(value: object) -> None:
    try:
        check_blob_name(value)
    except ValueError as exc:
        raise BadRecord(str(exc)) from None


def _image(record: list[Any]) -> None:
    _, _, key, step, caption, blob, width, height = record
    _string(key, "key")
    _integer(step, "step")
    _string(caption, "caption", optional=True)
    _blob(blob)
    for name, value in (("width", width), ("height", height)):
        _integer(value, name)
        if value < 0:
            raise BadRecord(f"{name} must be >= 0, got {value}")


def _system(record: list[Any]) -> None:
    for key, value in _mapping(record[2], "values").items():
        _number(value, f"values[{key!r}]")


def _file(record: list[Any]) -> None:
    _, _, kind, blob, meta = record
    if kind not in FILE_KINDS:
        raise BadRecord(f"file kind must be one of {', '.join(FILE_KINDS)}, got {kind!r}")
    _blob(blob)
    _plain(_mapping(meta, "meta"), "meta")


def _end(record: list[Any]) -> None:
    _, _, status, reason = record
    if status is not None and status not in STATUSES:
        raise BadRecord(f"status must be one of {', '.join(STATUSES)} or null, got {status!r}")
    _string(reason, "reason", optional=True)


_CHECKS: dict[int, Callable[[list[Any]], None]] = {
    journal.METRICS: _metrics,
    journal.TEXT: _text,
    journal.SUMMARY: _values,
    journal.CONFIG: _values,
    journal.TAGS: _tags,
    journal.PRIMARY: _primary,
    journal.IMAGE: _image,
    journal.SYSTEM: _system,
    journal.FILE: _file,
    journal.END: _end,
}


def decode_batch(body: bytes) -> list[list[Any]]:
    """The records of a batch body (a msgpack array of records), each checked; ``ApiError`` 400 if not."""
    try:
        records = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise ApiError(400, f"the batch body is not msgpack: {exc}", "body") from None
    if not isinstance(records, list):
        raise ApiError(400, f"the batch body must be a msgpack array of records, got {type(records).__name__}", "body")
    for index, record in enumerate(records):
        if not journal.is_record(record):
            raise ApiError(400, f"record {index} is not a journal record (type and number of fields)", f"body.{index}")
        try:
            _number(record[1], "time")
            _CHECKS[record[0]](record)
        except BadRecord as exc:
            raise ApiError(400, f"record {index}: {exc}", f"body.{index}") from None
    return records


def blobs_named(records: list[list[Any]]) -> set[str]:
    """Blobs the records name (images, files): each must be on the server before a record names it."""
    names: set[str] = set()
    for record in records:
        if record[0] == journal.IMAGE:
            names.add(record[5])
        elif record[0] == journal.FILE:
            names.add(record[3])
    return names
