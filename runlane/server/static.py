"""The web UI's static files, served at ``/`` when ``runlane/ui/static/`` exists (the UI ships there).

They are answered from the app's not-found handler rather than a mount at ``/``: a mount would shadow
every route added after it (``app.include_router`` by the UI or MLflow modules), a fallback never does.
A GET for a path no route serves gets that file under the static directory if there is one, else the
UI's ``index.html`` (client-side routes like ``/runs/MMP-3`` survive a reload). ``/api/...`` paths never
fall back: an unknown API route is a JSON 404.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"


def fallback(request: Request) -> Response | None:
    root: Path | None = getattr(request.app.state, "static_dir", None)
    if root is None or request.method not in ("GET", "HEAD") or request.url.path.startswith("/api/"):
        return None
    relative = request.url.path.lstrip("/")
    if relative:
        candidate = (root / relative).resolve()
        # resolve() folds "..", symlinks included: only files inside the static directory are served.
        if candidate.is_relative_to(root) and candidate.is_file():
            media = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
            return FileResponse(candidate, media_type=media)
    index = root / "index.html"
    if index.is_file():
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})
    return None


def static_dir() -> Path | None:
    """The UI's directory if this installation ships one."""
    return STATIC_DIR.resolve() if STATIC_DIR.is_dir() else None
