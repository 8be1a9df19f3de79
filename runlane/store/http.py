"""``HttpStore``: the ``Store`` of a run or reader whose store is a runlane server (``http(s)://host:port``).

Every ``Store`` method is one call (or, for unbounded reads, a few pages) of the server's API
(docs/http-api.md), and the server's answers map back to runlane's own errors, so code written against
``Store`` cannot tell it from an embedded store: 404 is ``RunNotFoundError``/``ProjectNotFoundError``,
409 with ``committed`` is ``OffsetConflictError``, 400 and 413 are ``ValueError``, a server that cannot be
reached or answers 502/503/504 is ``StoreUnavailableError`` (a writer retries it), anything else is
``StoreError``.

httpx is imported when an HTTP store is opened, never by ``import runlane``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn
from urllib.parse import quote

import msgpack

from .. import __version__, wire
from ..blobs import blob_name, check_blob_name
from ..entities import Bucket, History, ImageInfo, LogLine, ProjectInfo, RunFile, RunInfo, SystemSample
from ..errors import (
    DeletionRefusedError,
    OffsetConflictError,
    ProjectNotFoundError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from ..lineage import Node
from ..naming import RunRef
from .base import Attached, MetricDetail, NewRun, OpenWriter, Store, WriterSpec
from .keys import ApiKeyInfo
from .runs_query import RunsPage, RunsQuery

if TYPE_CHECKING:
    import httpx
    import numpy as np
    from numpy.typing import NDArray

#: Seconds to wait for the server's answer to one request (a batch commit included).
DEFAULT_TIMEOUT_S = 60.0
#: Rows per request when a read asks for everything (the server's page limit for logs and samples).
PAGE = 10_000
_UNAVAILABLE = (502, 503, 504)
PATIENCE_HEADER = "X-Runlane-Patience"  # as runlane.server.deps reads it (the store never imports the server)


def open_http(url: str, *, create: bool, allow_read_only: bool, api_key: str | None = None) -> HttpStore:
    """``open_store``'s opener for ``http(s)://`` (a server's store always exists; writes it refuses are
    refused per request). The key defaults to ``$RUNLANE_API_KEY``, so every process that opens the
    server's URL (the SDK's drain, ``runlane sync``, the CLI) sends the one its user set."""
    import os

    return HttpStore(url, api_key=api_key if api_key is not None else os.environ.get("RUNLANE_API_KEY") or None)


class HttpStore(Store):
    """The store behind a runlane server at ``url``; ``api_key`` is sent as ``Authorization: Bearer``."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"User-Agent": f"runlane/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._patience: float | None = None
        self._client: httpx.Client | None = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, follow_redirects=False
        )

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise StoreError("the store has been closed")
        return self._client

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, Any] | None = None,
        ref: object = None,
        writer: tuple[str, int] | None = None,
    ) -> httpx.Response:
        headers = {}
        if body is not None:
            content = wire.dumps(body).encode("utf-8")
            content_type = "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = self._send(method, path, content=content, params=params, headers=headers)
        if response.status_code >= 400:
            self._raise(response, ref, writer)
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request; a server that cannot be reached or does not answer in time is ``StoreUnavailableError``."""
        import httpx

        query = {key: value for key, value in (params or {}).items() if value is not None}
        if self._patience is not None:
            headers = {**(headers or {}), PATIENCE_HEADER: f"{self._patience:.3f}"}
        try:
            return self.client.request(
                method, path, content=content, params=query, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise StoreUnavailableError(
                f"the runlane server at {self.url} did not answer within {self._timeout:g} s ({method} {path})"
            ) from exc
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"cannot reach the runlane server at {self.url}: {exc}") from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return wire.loads(response.content)
        except ValueError as exc:
            raise StoreError(f"the server at {self.url} answered {method} {path} with something not JSON") from exc

    def _raise(self, response: httpx.Response, ref: object, writer: tuple[str, int] | None) -> NoReturn:
        status = response.status_code
        error = _error(response)
        message = str(error.get("message") or response.text[:500] or response.reason_phrase)
        code, field = error.get("code"), error.get("field")
        said = f"the runlane server at {self.url}: {message}"
        if status in _UNAVAILABLE:
            raise StoreUnavailableError(said)
        if status in (400, 413):
            raise ValueError(message)
        if status == 404 and field == "ref":
            raise RunNotFoundError(ref if ref is not None else message)
        if status == 404 and field == "project":
            raise ProjectNotFoundError(str(ref) if ref is not None else message)
        if status == 409 and code == "conflict" and "committed" in error and writer is not None:
            raise OffsetConflictError(writer[0], int(error["committed"]), writer[1])
        if status == 409 and code == "deletion_refused":
            raise DeletionRefusedError(message)
        if status in (401, 403):
            raise StoreError(f"{said} (set RUNLANE_API_KEY to a key with the access this needs)")
        raise StoreError(said)

    @contextmanager
    def patience(self, seconds: float) -> Iterator[None]:
        # The server is told too (PATIENCE_HEADER), so it gives up on a locked store in time and answers
        # 503 rather than committing after this client stopped waiting.
        previous, before = self._timeout, self._patience
        wait = max(0.1, min(previous, seconds))
        self._timeout, self._patience = wait + 1.0, wait
        try:
            yield
        finally:
            self._timeout, self._patience = previous, before

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- writes: runs and writers ---------------------------------------------------------------

    def create_run(self, new: NewRun, writer: WriterSpec) -> RunInfo:
        run: dict[str, Any] = {
            "uid": new.uid,
            "project": new.project,
            "name": new.name,
            "alias": new.alias,
            "notes": new.notes,
            "config": new.config,
            "tags": list(new.tags),
            "status": new.status,
            "parent_run_id": new.parent_run_id,
            "fork_run_id": new.fork_run_id,
            "fork_step": new.fork_step,
            "fork": None,
            "created_at": new.created_at,
            "started_at": new.started_at,
        }
        ref: object = None
        if new.fork is not None:
            fork = new.fork
            ref = fork.ref.value
            run["fork"] = {
                "ref": str(fork.ref.value),
                "step": fork.step,
                "inherit_config": fork.inherit_config,
                "inherit_tags": fork.inherit_tags,
                "keep_project": fork.keep_project,
            }
        data = self._json("POST", "/runs", body={"run": run, "writer": writer._asdict()}, ref=ref)
        return wire.from_wire(RunInfo, data)

    def attach(self, ref: RunRef, writer: WriterSpec, *, project: str | None = None) -> Attached:
        body = {"writer": writer._asdict(), "project": project}
        data = self._json("POST", f"/runs/{_ref(ref)}/attach", body=body, ref=ref.value)
        return Attached(wire.from_wire(RunInfo, data["info"]), int(data["next_step"]), bool(data["owner"]))

    def add_writer(self, run_id: int, writer: WriterSpec) -> None:
        self._request("POST", f"/runs/{run_id}/writers", body=writer._asdict(), ref=run_id)

    def ingest(self, writer_id: str, run_id: int, records: list[list[Any]], start: int, end: int) -> bool:
        data = self._json(
            "POST",
            f"/writers/{quote(writer_id, safe='')}/batches",
            content=msgpack.packb(records, use_bin_type=True),
            content_type="application/msgpack",
            params={"run_id": run_id, "start": start, "end": end},
            ref=run_id,
            writer=(writer_id, start),
        )
        return bool(data["applied"])

    def close_writer(self, writer_id: str, status: str | None = None, reason: str | None = None) -> None:
        self._request("POST", f"/writers/{quote(writer_id, safe='')}/close", body={"status": status, "reason": reason})

    def create_project(self, name: str, *, key: str | None = None, exist_ok: bool = False) -> ProjectInfo:
        data = self._json("POST", "/projects", body={"name": name, "key": key, "exist_ok": exist_ok})
        return wire.from_wire(ProjectInfo, data)

    def update_project(
        self, name: str, *, rename: str | None = None, meta: Mapping[str, str | None] | None = None
    ) -> ProjectInfo:
        body = {"name": name, "rename": rename, "meta": dict(meta or {})}
        return wire.from_wire(ProjectInfo, self._json("POST", "/projects/update", body=body, ref=name))

    def heartbeat(self, writer_ids: Sequence[str], at: float) -> None:
        self._request("POST", "/heartbeat", body={"writer_ids": list(writer_ids), "at": at})

    def open_writers(self) -> list[OpenWriter]:
        return [OpenWriter(**item) for item in self._json("GET", "/writers")["items"]]

    def fail_abandoned(self, run_ids: Iterable[int], reasons: dict[int, str], ended_at: dict[int, float]) -> list[int]:
        body = {
            "run_ids": list(run_ids),
            "reasons": {str(key): value for key, value in reasons.items()},
            "ended_at": {str(key): value for key, value in ended_at.items()},
        }
        return [int(run_id) for run_id in self._json("POST", "/runs/abandoned", body=body)["failed"]]

    def delete_run(self, ref: RunRef) -> None:
        self._request("DELETE", f"/runs/{_ref(ref)}", ref=ref.value)

    # -- reads ----------------------------------------------------------------------------------

    def projects(self) -> list[ProjectInfo]:
        return [wire.from_wire(ProjectInfo, item) for item in self._json("GET", "/projects")["items"]]

    def project_meta(self, name: str) -> dict[str, str]:
        meta: dict[str, str] = self._json("GET", "/projects/meta", params={"name": name}, ref=name)["meta"]
        return meta

    def runs(
        self,
        project: str | None = None,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        *,
        metrics: MetricDetail = "all",
    ) -> list[RunInfo]:
        params = {"project": project, "status": list(statuses or []), "tag": list(tags or []), "metrics": metrics}
        return [wire.from_wire(RunInfo, item) for item in self._json("GET", "/run-list", params=params)["items"]]

    def runs_page(self, query: RunsQuery) -> RunsPage:
        query.check()
        params = {
            "project": query.project,
            "sort": query.sort,
            "descending": "true" if query.descending else "false",
            "status": list(query.statuses),
            "tag": list(query.tags),
            "search": query.search,
            "limit": query.limit,
            "cursor": query.cursor,
        }
        data = self._json("GET", "/runs", params=params)
        return RunsPage([wire.from_wire(RunInfo, item) for item in data["items"]], data["next"], int(data["total"]))

    def run(self, ref: RunRef) -> RunInfo:
        return wire.from_wire(RunInfo, self._json("GET", f"/runs/{_ref(ref)}", ref=ref.value))

    def resolve(self, ref: RunRef) -> int:
        return int(self._json("GET", f"/runs/{_ref(ref)}/id", ref=ref.value)["id"])

    def history(self, run_id: int, key: str, start: int | None = None, end: int | None = None) -> History:
        params = {"key": key, "start": start, "end": end}
        return wire.from_wire(History, self._json("GET", f"/runs/{run_id}/history", params=params, ref=run_id))

    def stitched_history(self, run_id: int, key: str, start: int | None = None, end: int | None = None) -> History:
        params = {"key": key, "start": start, "end": end, "stitched": "true"}
        return wire.from_wire(History, self._json("GET", f"/runs/{run_id}/history", params=params, ref=run_id))

    def point_arrays(
        self, run_id: int, key: str, start: int | None = None, end: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        import numpy as np

        found = self.history(run_id, key, start, end)
        return np.array(found.steps, dtype=np.int64), np.array(found.values, dtype=np.float64)

    def downsampled(
        self,
        run_id: int,
        key: str,
        count: int,
        *,
        stitched: bool = False,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Bucket]:
        params = {"key": key, "buckets": count, "stitched": "true" if stitched else "false", "start": start, "end": end}
        data = self._json("GET", f"/runs/{run_id}/history", params=params, ref=run_id)
        return [wire.from_wire(Bucket, item) for item in data["buckets"]]

    def ancestry(self, run_id: int) -> list[Node]:
        return [Node(**item) for item in self._json("GET", f"/runs/{run_id}/ancestry", ref=run_id)["items"]]

    def forks(self, run_id: int) -> list[RunInfo]:
        return [
            wire.from_wire(RunInfo, item) for item in self._json("GET", f"/runs/{run_id}/forks", ref=run_id)["items"]
        ]

    def logs(
        self,
        run_id: int,
        *,
        after: int | None = None,
        limit: int | None = None,
        search: str | None = None,
        streams: Sequence[str] | None = None,
    ) -> list[LogLine]:
        params = {"search": search or None, "stream": list(streams) if streams else None}
        items = self._pages(f"/runs/{run_id}/logs", params, run_id, after, limit)
        return [wire.from_wire(LogLine, item) for item in items]

    def system_samples(
        self, run_id: int, key: str | None = None, *, after: int | None = None, limit: int | None = None
    ) -> list[SystemSample]:
        items = self._pages(f"/runs/{run_id}/system", {"key": key}, run_id, after, limit)
        return [wire.from_wire(SystemSample, item) for item in items]

    def _pages(self, path: str, params: dict[str, Any], run_id: int, after: int | None, limit: int | None) -> list[Any]:
        """Pages of a cursor read until ``limit`` items (or the end): the server caps one page at ``PAGE``."""
        out: list[Any] = []
        while True:
            want = PAGE if limit is None else min(PAGE, limit - len(out))
            data = self._json("GET", path, params={**params, "after": after, "limit": want}, ref=run_id)
            out.extend(data["items"])
            if len(data["items"]) < want or (limit is not None and len(out) >= limit):
                return out
            after = data["next"]

    def images(self, run_id: int, key: str | None = None) -> list[ImageInfo]:
        data = self._json("GET", f"/runs/{run_id}/images", params={"key": key}, ref=run_id)
        return [wire.from_wire(ImageInfo, item) for item in data["items"]]

    def run_file(self, run_id: int, kind: str) -> RunFile | None:
        response = self._send("GET", f"/runs/{run_id}/files/{quote(kind, safe='')}")
        if response.status_code == 404 and _error(response).get("field") == "kind":
            return None  # the run has no file of that kind
        if response.status_code >= 400:
            self._raise(response, run_id, None)
        return wire.from_wire(RunFile, wire.loads(response.content))

    # -- API keys: managed on the server's own store, never over the API it guards ------------

    def _keys_elsewhere(self) -> NoReturn:
        raise StoreError(
            f"API keys are managed on the store the server at {self.url} serves, not through it:"
            " run `runlane keys ... --store <that store>` where it lives"
        )

    def create_api_key(self, name: str, secret_hash: str, *, read_only: bool) -> ApiKeyInfo:
        self._keys_elsewhere()

    def api_keys(self) -> list[ApiKeyInfo]:
        self._keys_elsewhere()

    def revoke_api_key(self, name: str) -> ApiKeyInfo:
        self._keys_elsewhere()

    def api_key(self, secret_hash: str) -> ApiKeyInfo | None:
        self._keys_elsewhere()

    # -- blobs ----------------------------------------------------------------------------------

    def put_blob(self, data: bytes, ext: str) -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a blob is bytes, got {type(data).__name__}")
        name = blob_name(hashlib.sha256(data).hexdigest(), ext)
        self._request("PUT", f"/blobs/{name}", content=bytes(data), content_type="application/octet-stream")
        return name

    def open_blob(self, name: str) -> BinaryIO:
        check_blob_name(name)
        return io.BytesIO(self._request("GET", f"/blobs/{name}").content)


def _ref(ref: RunRef) -> str:
    return quote(str(ref.value), safe="")


def _error(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` member of an error answer, or {} for one that is not runlane's (a proxy's page)."""
    try:
        error = wire.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return {}
    return error if isinstance(error, dict) else {}
