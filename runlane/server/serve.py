"""``runlane server`` and ``runlane ui``: run the app with uvicorn on a socket bound here, print its URL.

The socket is bound before uvicorn starts, so the printed URL names the real port (``--port 0`` picks a
free one) and a second server on a taken port fails with a clear message. Binding anything but a
loopback address is refused unless the store has API keys: a server that anyone on the network could
write to is never what a plain ``runlane server`` should give.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from .app import ENV_STORE

if TYPE_CHECKING:
    import uvicorn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def keys_configured(location: str) -> bool:
    """Whether the store at ``location`` holds an API key (opening it once: a bad location fails here)."""
    from ..store import open_store

    with open_store(location, create=True) as store:
        return store.has_api_keys()


def serve(location: str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1) -> int:
    """Serve the store at ``location`` until interrupted; returns the exit status."""
    import uvicorn

    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be from 0 to 65535, got {port}")
    has_keys = keys_configured(location)  # also opens (and migrates) the store once: a bad URL fails here
    if not is_loopback(host) and not has_keys:
        print(
            f"runlane: error: refusing to serve on {host}: it is not a loopback address and the store has no API"
            " keys, so anyone who can reach it could read and write every run. Create a key first"
            f" (`runlane keys create NAME --store {location}`) or bind 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    os.environ[ENV_STORE] = location  # read by each worker's app_from_env
    config = uvicorn.Config(
        "runlane.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # The server's own keep-alive timeout must outlast no client's; the default 5 s is too eager for
        # a writer that uploads once a second or so under load.
        timeout_keep_alive=30,
    )
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn reports a taken port and exits; say it in runlane's words
        print(f"runlane: error: cannot listen on {host}:{port} (is another server using it?)", file=sys.stderr)
        return 1
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"runlane server: serving {location} at http://{shown}:{bound_port} (Ctrl+C to stop)", flush=True)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            _multiprocess(config, server, sock)
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


def _multiprocess(config: uvicorn.Config, server: uvicorn.Server, sock: socket.socket) -> None:
    import inspect

    from uvicorn.supervisors import Multiprocess

    # Older uvicorn releases take the worker's entry point as ``target``; newer ones build it themselves.
    if "target" in inspect.signature(Multiprocess).parameters:
        Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()


def serve_ui(directory: Path, *, port: int = DEFAULT_PORT) -> int:
    """``runlane ui``: the same server over the local store, on loopback only."""
    if not (directory / "runlane.db").exists():
        raise StoreError(f"no runlane store in {directory} (pass --dir or set RUNLANE_DIR to where your runs are)")
    return serve(str(directory), host=DEFAULT_HOST, port=port)
