"""Turning what users pass to ``log()``, ``summary()`` and ``update_config()`` into storable values.

``log()`` calls ``metric_values`` only when its inline fast path (flat dict, known keys, plain int or
float values) does not apply, so everything here may be thorough rather than fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import journal
from ..naming import check_metric_key

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
MAX_TEXT_VALUE = 1024 * 1024  # a summary/config string above this is almost surely a mistake


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_number(key: str, value: Any) -> float | int:
    """A metric value as int or float; ``TypeError`` naming ``key`` if it is not a scalar number."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return int(value)
    if kind is int:
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value  # type: ignore[no-any-return]
        return _as_float(key, value)
    if isinstance(value, (str, bytes, bytearray)) or value is None:
        raise TypeError(f"metric {key!r}: {kind.__name__} {_describe(value)} is not a number")
    # numpy/torch: 0-d arrays and tensors are scalars; anything with more dimensions is not.
    ndim = getattr(value, "ndim", None)
    if isinstance(ndim, int) and ndim > 0:
        shape = tuple(getattr(value, "shape", ()))
        raise TypeError(
            f"metric {key!r}: an array of shape {shape} is not a scalar; log one number (e.g. .mean().item())"
        )
    item = getattr(value, "item", None)
    if callable(item) and ndim == 0:
        value = item()
        if type(value) is bool:
            return int(value)
        if isinstance(value, complex):
            raise TypeError(f"metric {key!r}: complex value {_describe(value)} is not a real number")
    return _as_float(key, value)


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, complex):
        raise TypeError(f"metric {key!r}: complex value {_describe(value)} is not a real number")
    try:
        return float(value)
    except OverflowError as exc:
        raise TypeError(f"metric {key!r}: {_describe(value)} is too large for a float") from exc
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metric {key!r}: {type(value).__name__} {_describe(value)} is not a number") from exc


def _flatten_into(out: dict[str, Any], prefix: str, data: Mapping[Any, Any]) -> None:
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {type(key).__name__}: {key!r}")
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten_into(out, name, value)
        else:
            out[check_metric_key(name)] = to_number(name, value)


def metric_values(data: Mapping[Any, Any] | None, extra: Mapping[str, Any]) -> dict[str, float | int]:
    """Flatten nested dicts with ``/`` and convert every value, or raise before anything is recorded."""
    out: dict[str, float | int] = {}
    if data is not None:
        if not isinstance(data, Mapping):
            raise TypeError(f"log() takes a dict of metrics, got {type(data).__name__}")
        _flatten_into(out, "", data)
    _flatten_into(out, "", extra)
    return out


def plain(value: Any, where: str) -> Any:
    """A JSON-like copy of ``value`` for config and summary; ``TypeError`` naming ``where`` otherwise.

    numpy and torch scalars become numbers, arrays become lists, tuples and sets become lists, paths
    become strings. Non-finite floats are kept (the wire format preserves them).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            # msgpack (the journal) cannot hold more than 64 bits, and SQLite's JSON functions (sorting runs by
            # a summary field) read anything beyond int64 as an inexact float: refuse it at the call rather
            # than fail later or store something other than what was given.
            raise ValueError(
                f"{where}: integer {_describe(value)} is outside the signed 64-bit range a store can hold; "
                "store it as a string"
            )
        return int(value)  # also IntEnum and friends
    if isinstance(value, str):
        if len(value) > MAX_TEXT_VALUE:
            raise ValueError(f"{where}: string of {len(value)} characters; at most {MAX_TEXT_VALUE} are stored")
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {type(key).__name__} {key!r}")
            out[key] = plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [plain(item, f"{where}[{i}]") for i, item in enumerate(items)]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist):
        _check_array_size(value, where)
        return plain(tolist(), where)
    if hasattr(value, "__fspath__"):
        return str(value)
    if isinstance(value, complex) or not hasattr(value, "__float__"):
        raise TypeError(f"{where}: {type(value).__name__} {_describe(value)} cannot be stored as JSON")
    return float(value)


def _check_array_size(value: Any, where: str) -> None:
    """Refuse at once an array that cannot fit in one journal record, before converting it element by element
    (seconds for millions of elements). Each float takes 9 bytes of msgpack and anything else at least 1,
    so this never refuses an array that would fit; what passes is still checked once encoded."""
    shape = getattr(value, "shape", None)
    if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
        return
    count = math.prod(shape)
    dtype = getattr(value, "dtype", None)
    floating = getattr(dtype, "kind", None) == "f" or getattr(dtype, "is_floating_point", False) is True
    at_least = count * (9 if floating else 1)
    if at_least > journal.MAX_RECORD_BYTES:
        raise ValueError(
            f"{where}: an array of shape {shape} takes at least {at_least} bytes encoded; a journal record holds"
            f" at most {journal.MAX_RECORD_BYTES} bytes ({journal.MAX_RECORD_BYTES >> 20} MiB); nothing was"
            " recorded (store large arrays as files or images, or summarize them)"
        )


def plain_mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"{what} takes a dict, got {type(data).__name__}")
    return plain(data, what)  # type: ignore[no-any-return]
