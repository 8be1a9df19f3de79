"""Bearer API keys (SPEC.md 6.3): with a valid key in the store, every route but health needs one.

Each request looks its key up in the store by the secret's hash (an indexed read), so a key created or
revoked with ``runlane keys`` counts from the next request on, in every server process, with nothing
kept in memory. Read-only keys may use the read routes only; the routers say which they are by
depending on ``require_read`` or ``require_write``.
"""

from __future__ import annotations

from fastapi import Request

from ..store.base import Store
from ..store.keys import ApiKeyInfo, hash_secret
from .deps import StoreDep
from .errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="runlane"'}


def _caller(request: Request, store: Store) -> ApiKeyInfo | None:
    """The key the request carries (None: this store has no keys, so none is needed)."""
    header = request.headers.get("authorization")
    if header is None:
        if store.has_api_keys():
            raise ApiError(401, "this server requires an API key: send Authorization: Bearer <key>", "authorization",
                           headers=_CHALLENGE)  # fmt: skip
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "the Authorization header must be 'Bearer <key>'", "authorization", headers=_CHALLENGE)
    key = store.api_key(hash_secret(secret.strip()))
    if key is None:
        if not store.has_api_keys():
            return None  # a key sent to a server that needs none is not an error
        raise ApiError(401, "the API key is not valid (unknown or revoked)", "authorization", headers=_CHALLENGE)
    return key


def require_read(request: Request, store: StoreDep) -> None:
    """Any valid key (or none, on a store without keys)."""
    _caller(request, store)


def require_write(request: Request, store: StoreDep) -> None:
    """A valid key that is not read-only (or none, on a store without keys)."""
    key = _caller(request, store)
    if key is not None and key.read_only:
        raise ApiError(403, f"the API key {key.name!r} is read-only; this request writes", "authorization")
