"""API keys: what a store keeps of them and how a secret becomes what it keeps.

A key is a random secret shown once, when it is made (``runlane keys create``); the store keeps only its
sha256 (a secret of 256 random bits needs no slow hash: there is nothing to guess), its name, whether it
is read-only, and when it was made and revoked. The server looks a request's Bearer token up by its hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NamedTuple

#: Every key starts with this, so a leaked one is recognisable (secret scanners, logs).
PREFIX = "rlk_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ApiKeyInfo(NamedTuple):
    """A key as the store knows it (never the secret): ``revoked_at`` is None while it is valid."""

    name: str
    read_only: bool
    created_at: float
    revoked_at: float | None


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_key_name(name: object) -> str:
    """A key's name: 1-64 letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"key name {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name
