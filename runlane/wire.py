"""JSON shapes shared by every store and the server: strict JSON with non-finite floats tagged.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: browsers, PostgreSQL's
``jsonb`` and most clients refuse them. runlane encodes a non-finite float as
``{"$float": "NaN" | "Infinity" | "-Infinity"}`` wherever JSON leaves the process, and decodes it back,
so NaN and +/-Inf round-trip exactly and never turn into 0 or null.
"""

from __future__ import annotations

import json
import math
from typing import Any

_TAG = "$float"
_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _tag_float(value: float) -> Any:
    if math.isnan(value):
        return {_TAG: "NaN"}
    return {_TAG: "Infinity" if value > 0 else "-Infinity"}


def to_jsonable(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by its tagged form (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _tag_float(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _TAG in obj and obj[_TAG] in _NAMES:
        return _NAMES[obj[_TAG]]
    return obj


def dumps(value: Any) -> str:
    """Encode to strict JSON (``allow_nan=False`` holds because non-finite floats are tagged)."""
    return json.dumps(to_jsonable(value), allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Decode JSON written by ``dumps``, restoring tagged non-finite floats."""
    return json.loads(text, object_hook=_untag)
