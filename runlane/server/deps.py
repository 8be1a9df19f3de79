"""What every route depends on: a leased store, the caller's permission, a parsed run reference."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request

from ..naming import RunRef, parse_run_ref
from ..store.base import Store
from .errors import ApiError


def _store(request: Request) -> Iterator[Store]:
    with request.app.state.pool.lease() as store:
        yield store


StoreDep = Annotated[Store, Depends(_store)]


def _run_ref(ref: Annotated[str, Path(description="numeric id, display id (MMP-42) or uid", max_length=200)]) -> RunRef:
    try:
        return parse_run_ref(ref)
    except ValueError as exc:
        raise ApiError(400, str(exc), "ref") from None


RefDep = Annotated[RunRef, Depends(_run_ref)]
