"""JSON responses in runlane's wire encoding: NaN and +/-Inf survive as ``{"$float": ...}`` tags."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from .. import wire


class WireJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return wire.dumps(content).encode("utf-8")
