"""Request body limits: a body over its route's limit is refused with 413 before it is read whole.

Journal batches may be as large as the largest journal record (plus the batch around it), blobs as
large as a code snapshot may grow; every JSON body is small. A declared ``Content-Length`` over the
limit is refused at once; a chunked body is counted as it arrives and refused when it passes the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..journal import MAX_RECORD_BYTES
from .errors import error_response

MAX_BATCH_BYTES = MAX_RECORD_BYTES + 16 * 2**20
MAX_BLOB_BYTES = 256 * 2**20
MAX_JSON_BYTES = 16 * 2**20


def limit_for(method: str, path: str) -> int:
    if method == "POST" and path.startswith("/api/v1/writers/") and path.endswith("/batches"):
        return MAX_BATCH_BYTES
    if method == "PUT" and path.startswith("/api/v1/blobs/"):
        return MAX_BLOB_BYTES
    return MAX_JSON_BYTES


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["method"], scope["path"])
        declared = next((value for key, value in scope["headers"] if key == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            # A chunked body passing the limit: answer 413 now and tell the app the client went away;
            # whatever the app answers after that is dropped.
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._refuse(scope, receive, send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:
                raise

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, f"the request body is larger than this route takes ({limit} bytes)", "body")
        await response(scope, receive, send)
