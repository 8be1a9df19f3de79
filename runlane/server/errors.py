"""Every failure as a 4xx JSON body naming what was wrong: ``{"error": {"code", "message", "field"}}``.

Routes raise ``ApiError`` (or let runlane's own errors through); the handlers installed by
``install_error_handlers`` map each to its status, so no request a client sends ends in a traceback.
The one 5xx is 503 with ``Retry-After`` for a store that is briefly unavailable (a client retries it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..errors import (
    DeletionRefusedError,
    OffsetConflictError,
    ProjectNotFoundError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from .responses import WireJSONResponse

log = logging.getLogger("runlane.server")

#: Seconds a client waits before retrying a request that met an unavailable store.
RETRY_AFTER_S = 1

CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


class ApiError(Exception):
    """A request the server refuses: the status, what was wrong, and the parameter it was about."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
        self.extra = extra


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    code: str | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"code": code or CODES.get(status, "error"), "message": message, "field": field, **extra}
    return WireJSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    # FastAPI's locations look like ("query", "limit") or ("path", "ref") or ("body", "name", 0).
    parts = [str(part) for part in loc[1:]] if len(loc) > 1 else [str(part) for part in loc]
    return ".".join(parts) or None


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    field = _field(first.get("loc", ()))
    message = str(first.get("msg", "invalid request"))
    return error_response(400, f"{field}: {message}" if field else message, field)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.field, exc.headers, **exc.extra)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        # No route matched: the UI's client-side routes are answered by its index.html (see ``static``).
        from .static import fallback

        served = fallback(request)
        if served is not None:
            return served
        return error_response(404, f"no route {request.url.path}", None)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route of that path; a path served by several routers
        # (GET /projects reads, POST /projects writes) supports all of theirs.
        headers["Allow"] = ", ".join(_methods(request))
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    return error_response(status, str(exc.detail), None, headers=headers)


def _methods(request: Request) -> list[str]:
    from starlette.routing import Match

    found: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        methods = getattr(route, "methods", None)
        if match != Match.NONE and methods:
            found.update(methods)
    return sorted(found)


async def _runlane(request: Request, exc: Exception) -> Response:
    if isinstance(exc, RunNotFoundError):
        return error_response(404, str(exc), "ref")
    if isinstance(exc, ProjectNotFoundError):
        return error_response(404, str(exc), "project")
    if isinstance(exc, OffsetConflictError):
        return error_response(409, str(exc), "start", committed=exc.committed)
    if isinstance(exc, DeletionRefusedError):
        return error_response(409, str(exc), "ref", code="deletion_refused")
    if isinstance(exc, StoreUnavailableError):
        return error_response(503, str(exc), None, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, StoreError):
        # Read-only store, a writer it does not know, ...: the state of the store, not a server fault.
        return error_response(409, str(exc), None, code="store_error")
    return error_response(400, str(exc), None)


async def _value(request: Request, exc: Exception) -> Response:
    # ValueError/TypeError from runlane's own checks name the argument in their message.
    return error_response(400, str(exc), getattr(exc, "field", None))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug: logged with its traceback here, answered without one (the body says where to look).
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return WireJSONResponse(
        {"error": {"code": "internal", "message": "internal server error (see the server log)", "field": None}},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    from ..errors import RunlaneError

    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RunlaneError, _runlane)
    app.add_exception_handler(ValueError, _value)
    app.add_exception_handler(TypeError, _value)
    app.add_exception_handler(Exception, _unexpected)
