"""``create_app``: the ASGI app around a store (FastAPI; uvicorn runs it, see ``runlane.server.serve``).

Everything a request needs comes from the store, so the app keeps no state that matters between
requests: several server processes can share one store, and a server can be killed at any moment.

Extension points, for the modules that mount onto this app:

- ``ROUTERS``: ``"module:attribute"`` names of further ``APIRouter`` objects (the MLflow REST API, ...),
  included by every app; ``create_app(routers=...)`` adds more for one app. Both are included with
  ``runlane.server.auth.require_read`` (any valid key, once the store has keys); routes of theirs that
  write add ``Depends(require_write)``. A router may also be included later with ``app.include_router``
  (it must then add the auth dependencies itself): nothing is mounted at ``/`` that could shadow it.
- The web UI: when ``runlane/ui/static/`` exists its files are served for any GET no route answers,
  with ``index.html`` for client-side routes (``runlane.server.static``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI

from .. import __version__
from ..config import Tunables
from ..store.base import Store
from . import schemas
from .auth import require_read, require_write
from .errors import install_error_handlers
from .limits import BodyLimit
from .liveness import LivenessSweep
from .pool import StorePool
from .responses import WireJSONResponse
from .static import static_dir

#: Routers every app includes, as "module:attribute" (imported when an app is made).
ROUTERS: tuple[str, ...] = ()

#: The environment variable that hands the store location to uvicorn's worker processes.
ENV_STORE = "RUNLANE_SERVER_STORE"

StoreSource = str | os.PathLike[str] | Callable[[], Store]


def store_factory(source: StoreSource) -> Callable[[], Store]:
    """A function opening one more store at ``source`` (a location as ``open_store`` takes it, or a factory)."""
    if callable(source):
        return source
    location = os.fspath(source)

    def open_one() -> Store:
        from ..store import open_store

        return open_store(location, create=True)

    return open_one


def local_dir(source: StoreSource) -> Path | None:
    """The directory of an embedded store, where this machine's dead writers may have left journals."""
    if callable(source):
        return None
    text = os.fspath(source)
    if "://" in text:
        scheme, _, rest = text.partition("://")
        return Path(rest) if scheme == "sqlite" else None
    return Path(text)


def create_app(
    store: StoreSource,
    *,
    routers: Sequence[APIRouter] = (),
    ui: bool | Path = True,
) -> FastAPI:
    """The app over the store at ``store`` (a directory, a store URL, or a function that opens a ``Store``).

    ``ui``: serve the web UI's static files from the package (True), from that directory, or not (False).
    """
    factory = store_factory(store)
    directory = local_dir(store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if directory is not None:
            _recover(factory, directory)
        sweep = LivenessSweep(factory, directory, Tunables.from_env(os.environ))
        sweep.start()
        try:
            yield
        finally:
            sweep.stop()
            pool.close()

    app = FastAPI(
        title="runlane",
        version=__version__,
        description="The runlane tracking server: read and ingest API (see docs/http-api.md).",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        default_response_class=WireJSONResponse,
        lifespan=lifespan,
    )
    pool = StorePool(factory)
    app.state.pool = pool
    app.state.static_dir = Path(ui).resolve() if isinstance(ui, Path) else static_dir() if ui else None
    install_error_handlers(app)

    app.add_middleware(BodyLimit)

    from . import ingest_routes, read_routes

    # Health answers without a key (load balancers, readiness probes); everything else needs one once the
    # store has keys. Further routers need any valid key; their write routes add ``require_write``.
    app.include_router(read_routes.health_router)
    app.include_router(read_routes.router, dependencies=[Depends(require_read)])
    app.include_router(ingest_routes.reads, dependencies=[Depends(require_read)])
    app.include_router(ingest_routes.router, dependencies=[Depends(require_write)])
    for name in ROUTERS:
        module, _, attribute = name.partition(":")
        app.include_router(getattr(importlib.import_module(module), attribute), dependencies=[Depends(require_read)])
    for extra in routers:
        app.include_router(extra, dependencies=[Depends(require_read)])
    schemas.install(app)
    return app


def _recover(factory: Callable[[], Store], directory: Path) -> None:
    # As runlane.Api does on open: what processes of this machine left in their journals is replayed
    # before the first reader looks, and runs their owners abandoned are failed.
    from ..config import STORE_JOURNALS
    from ..recovery import recover
    from ..spool import Spool

    store = factory()
    try:
        if not store.read_only:
            recover(store, Spool(directory / STORE_JOURNALS, str(directory.absolute())))
    finally:
        store.close()


def app_from_env() -> FastAPI:
    """The app uvicorn's worker processes build (``--workers N``): the store comes from ``$RUNLANE_SERVER_STORE``."""
    location = os.environ.get(ENV_STORE)
    if not location:
        raise RuntimeError(f"{ENV_STORE} is not set: start the server with `runlane server --store URL`")
    return create_app(location)
