"""A real runlane server process for the contract suite that serves a fresh store per test.

``python multistore.py`` runs uvicorn on a free port and prints its URL. A request to
``/s/<token>/api/v1/...`` is answered by ``create_app`` over the store directory that ``token`` names
(URL-safe base64 of its absolute path), created on first use: one server process for the whole suite,
and every test's store in that test's own ``tmp_path``, as with the other backends.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from runlane.server.app import create_app


def token(store_dir: Path) -> str:
    return base64.urlsafe_b64encode(str(store_dir.absolute()).encode()).decode().rstrip("=")


def _directory(text: str) -> Path:
    return Path(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode())


class Stores:
    def __init__(self) -> None:
        self.apps: dict[str, FastAPI] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            for app in self.apps.values():
                app.state.pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        parts = scope["path"].split("/", 3)  # "", "s", token, rest
        if len(parts) < 3 or parts[1] != "s":  # the readiness probe
            await JSONResponse({"ok": True}, status_code=200 if scope["path"] == "/api/v1/health" else 404)(
                scope, receive, send
            )
            return
        name = parts[2]
        if name not in self.apps:
            self.apps[name] = create_app(_directory(name), ui=False)
        app = self.apps[name]
        rest = "/" + (parts[3] if len(parts) > 3 else "")
        await app({**scope, "path": rest, "raw_path": rest.encode()}, receive, send)


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(Stores(), log_level="warning", access_log=False, timeout_keep_alive=30)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
