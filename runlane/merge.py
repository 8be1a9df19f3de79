"""Deep merge of config dicts: one rule for ``update_config``, resume and fork inheritance."""

from __future__ import annotations

from typing import Any


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``update`` merged in: dicts merge recursively, anything else (lists included)
    is a leaf that ``update`` replaces. Neither argument is modified."""
    merged = dict(base)
    for key, value in update.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged
