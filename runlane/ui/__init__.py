"""The web UI: static files served by ``runlane ui`` and ``runlane server`` (see docs/ui.md).

``STATIC_DIR`` is the folder the server mounts at ``/``; nothing here imports a web framework, so the
package stays importable from ``import runlane`` code paths that never serve anything.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"
