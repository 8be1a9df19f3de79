"""What every route depends on: a leased store, the caller's permission, a parsed run reference."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request

from ..naming import RunRef, parse_run_ref
from ..store.base import Store
from .errors import ApiError

#: A client with a deadline (``Store.patience`` on an ``HttpStore``) says how long it waits; the server then
#: gives up on a busy store in about that time with 503 instead of committing after the client left.
PATIENCE_HEADER = "X-Runlane-Patience"
MAX_PATIENCE_S = 600.0


def _patience(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise ApiError(
            400, f"{PATIENCE_HEADER} must be a number of seconds, got {value[:40]!r}", PATIENCE_HEADER
        ) from None
    if not 0 < seconds <= MAX_PATIENCE_S:  # also refuses NaN
        raise ApiError(400, f"{PATIENCE_HEADER} must be from 0 to {MAX_PATIENCE_S:g} seconds", PATIENCE_HEADER)
    return seconds


def _store(request: Request) -> Iterator[Store]:
    seconds = _patience(request.headers.get(PATIENCE_HEADER))
    with request.app.state.pool.lease() as store:
        if seconds is None:
            yield store
        else:
            with store.patience(seconds):
                yield store


StoreDep = Annotated[Store, Depends(_store)]


def _run_ref(ref: Annotated[str, Path(description="numeric id, display id (MMP-42) or uid", max_length=200)]) -> RunRef:
    try:
        return parse_run_ref(ref)
    except ValueError as exc:
        raise ApiError(400, str(exc), "ref") from None


RefDep = Annotated[RunRef, Depends(_run_ref)]
