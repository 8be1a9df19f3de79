"""The ingest API (SPEC.md 6.2), used by ``runlane.store.http.HttpStore``: each route is one atomic
``Store`` call, idempotent when retried with the same ids, and answered only after it committed.

Bodies are JSON in ``runlane.wire``'s encoding (configs may hold NaN), except journal batches (msgpack,
checked record by record in ``records``) and blob bytes (checked against the sha256 in their name).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import wire
from ..blobs import check_blob_name
from ..errors import StoreError
from ..lineage import Node
from ..naming import RunRef, parse_run_ref
from ..statuses import STATUSES
from ..steps import STEP_MAX, STEP_MIN
from ..store.base import ForkRequest, NewRun, Store, WriterSpec
from .deps import RefDep, StoreDep
from .errors import ApiError
from .records import blobs_named, decode_batch
from .responses import WireJSONResponse
from .schemas import INTEGER, OK, items, obj, ok, ref

BOOLEAN = {"type": "boolean"}

router = APIRouter(prefix="/api/v1")
reads = APIRouter(prefix="/api/v1")  # the reads only the HTTP store needs (a read-only key may use them)

Id = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=10_000)]
Offset = Annotated[int, Query(ge=0, le=STEP_MAX)]
WriterId = Annotated[str, PathParam(min_length=1, max_length=200)]


class WriterBody(BaseModel):
    """``runlane.store.base.WriterSpec``: a process about to write to a run, and its journal."""

    id: Id
    host: Annotated[str, Field(max_length=1000)]
    pid: Annotated[int, Field(ge=0, le=2**63 - 1)]
    pid_started: float | None = None
    journal: Annotated[str, Field(max_length=4096)]
    pid_namespace: Annotated[str | None, Field(max_length=1000)] = None

    def spec(self) -> WriterSpec:
        return WriterSpec(self.id, self.host, self.pid, self.pid_started, self.journal, self.pid_namespace)


class ForkBody(BaseModel):
    ref: Id
    step: Annotated[int, Field(ge=STEP_MIN, le=STEP_MAX)]
    inherit_config: bool = True
    inherit_tags: bool = False
    keep_project: bool = False


class NewRunBody(BaseModel):
    """``runlane.store.base.NewRun``: what a run starts with; ``uid`` is minted by the client."""

    uid: Id
    project: Annotated[str, Field(max_length=400)]
    name: Text | None = None
    alias: Text | None = None
    notes: Annotated[str | None, Field(max_length=1_000_000)] = None
    config: dict[str, Any] = Field(default_factory=dict)
    tags: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(default_factory=list)
    status: str = "running"
    parent_run_id: Annotated[int | None, Field(ge=1, le=STEP_MAX)] = None
    fork_run_id: Annotated[int | None, Field(ge=1, le=STEP_MAX)] = None  # an already resolved fork (a sync)
    fork_step: Annotated[int | None, Field(ge=STEP_MIN, le=STEP_MAX)] = None
    fork: ForkBody | None = None
    # When the run began on the client (a run created once its server is back, a copy made by sync).
    created_at: Annotated[float | None, Field(ge=0, le=1e11)] = None
    started_at: Annotated[float | None, Field(ge=0, le=1e11)] = None

    def new_run(self) -> NewRun:
        if self.status not in STATUSES:
            raise ApiError(
                400, f"status {self.status!r} is not a run status; use one of {', '.join(STATUSES)}", "status"
            )
        fork = None
        if self.fork is not None:
            fork = ForkRequest(
                _ref(self.fork.ref, "fork.ref"),
                self.fork.step,
                self.fork.inherit_config,
                self.fork.inherit_tags,
                self.fork.keep_project,
            )
        return NewRun(
            uid=self.uid,
            project=self.project,
            name=self.name,
            alias=self.alias,
            notes=self.notes,
            config=wire.from_jsonable(self.config),
            tags=tuple(self.tags),
            status=self.status,
            parent_run_id=self.parent_run_id,
            fork_run_id=self.fork_run_id,
            fork_step=self.fork_step,
            fork=fork,
            created_at=self.created_at,
            started_at=self.started_at,
        )


class CreateRunBody(BaseModel):
    run: NewRunBody
    writer: WriterBody


class AttachBody(BaseModel):
    writer: WriterBody
    project: Annotated[str | None, Field(max_length=400)] = None


class CloseBody(BaseModel):
    status: str | None = None
    reason: Annotated[str | None, Field(max_length=100_000)] = None


class HeartbeatBody(BaseModel):
    writer_ids: Annotated[list[Id], Field(max_length=10_000)]
    at: float


class ProjectBody(BaseModel):
    name: Annotated[str, Field(max_length=400)]
    key: Annotated[str | None, Field(max_length=10)] = None
    exist_ok: bool = False


class ProjectUpdateBody(BaseModel):
    name: Annotated[str, Field(max_length=400)]
    rename: Annotated[str | None, Field(max_length=400)] = None
    meta: dict[Annotated[str, Field(max_length=1000)], Annotated[str, Field(max_length=1_000_000)] | None] = Field(
        default_factory=dict
    )


class AbandonedBody(BaseModel):
    run_ids: Annotated[list[Annotated[int, Field(ge=1, le=STEP_MAX)]], Field(max_length=100_000)]
    reasons: dict[str, Annotated[str, Field(max_length=100_000)]] = Field(default_factory=dict)
    ended_at: dict[str, float] = Field(default_factory=dict)


def _ref(text: str, field: str) -> RunRef:
    try:
        return parse_run_ref(text)
    except ValueError as exc:
        raise ApiError(400, str(exc), field) from None


def _int_keys(values: dict[str, Any], field: str) -> dict[int, Any]:
    out = {}
    for key, value in values.items():
        if not key.isdigit() or not key.isascii():
            raise ApiError(400, f"{field} is keyed by run ids; {key!r} is not one", field)
        out[int(key)] = value
    return out


def _ok() -> Response:
    return WireJSONResponse({"ok": True})


@router.post("/runs", responses=ok(ref("RunInfo")))
def create_run(store: StoreDep, body: CreateRunBody) -> Response:
    """Create a run (idempotent by its uid and writer); a fork's parent is resolved by the store."""
    return WireJSONResponse(wire.to_wire(store.create_run(body.run.new_run(), body.writer.spec())))


@router.post("/runs/{ref}/attach", responses=ok(obj(info=ref("RunInfo"), next_step=INTEGER, owner=BOOLEAN)))
def attach(store: StoreDep, ref: RefDep, body: AttachBody) -> Response:
    found = store.attach(ref, body.writer.spec(), project=body.project)
    return WireJSONResponse({"info": wire.to_wire(found.info), "next_step": found.next_step, "owner": found.owner})


@router.post("/runs/{ref}/writers", responses=OK)
def add_writer(store: StoreDep, ref: RefDep, body: WriterBody) -> Response:
    store.add_writer(store.resolve(ref), body.spec())
    return _ok()


@router.delete("/runs/{ref}", responses=OK)
def delete_run(store: StoreDep, ref: RefDep) -> Response:
    store.delete_run(ref)
    return _ok()


@router.post("/runs/abandoned", responses=ok(obj(failed={"type": "array", "items": INTEGER})))
def fail_abandoned(store: StoreDep, body: AbandonedBody) -> Response:
    """Fail the running runs among ``run_ids`` that no open owner writer keeps alive; answers their ids."""
    failed = store.fail_abandoned(
        body.run_ids, _int_keys(body.reasons, "reasons"), _int_keys(body.ended_at, "ended_at")
    )
    return WireJSONResponse({"failed": failed})


@router.post("/projects", responses=ok(ref("ProjectInfo")))
def create_project(store: StoreDep, body: ProjectBody) -> Response:
    return WireJSONResponse(wire.to_wire(store.create_project(body.name, key=body.key, exist_ok=body.exist_ok)))


@router.post("/projects/update", responses=ok(ref("ProjectInfo")))
def update_project(store: StoreDep, body: ProjectUpdateBody) -> Response:
    """Rename a project and/or set its metadata keys (null deletes one)."""
    return WireJSONResponse(wire.to_wire(store.update_project(body.name, rename=body.rename, meta=body.meta)))


@reads.get("/projects/meta", responses=ok(obj(meta={"type": "object", "additionalProperties": {"type": "string"}})))
def project_meta(store: StoreDep, name: Annotated[str, Query(max_length=400)]) -> Response:
    return WireJSONResponse({"meta": store.project_meta(name)})


@reads.get("/writers", responses=ok(items(ref("OpenWriter"))))
def open_writers(store: StoreDep) -> Response:
    return WireJSONResponse({"items": [writer._asdict() for writer in store.open_writers()]})


@router.post(
    "/writers/{writer_id}/batches",
    responses=ok(obj(applied=BOOLEAN)),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/msgpack": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def ingest(
    request: Request, store: StoreDep, writer_id: WriterId, run_id: Annotated[int, Query(ge=1, le=STEP_MAX)],
    start: Offset, end: Offset,
) -> Response:  # fmt: skip
    """Apply journal bytes ``[start, end)`` of a writer (a msgpack array of records) exactly once.

    ``applied`` is false when the store held them already (a retry); a batch that does not start where
    the store's copy ends is 409 with ``committed``, the offset to continue from.
    """
    if end <= start:
        raise ApiError(400, f"end ({end}) must be after start ({start})", "end")
    body = await request.body()
    records = await run_in_threadpool(decode_batch, body)
    applied = await run_in_threadpool(_ingest, store, writer_id, run_id, records, start, end)
    return WireJSONResponse({"applied": applied})


def _ingest(store: Store, writer_id: str, run_id: int, records: list[list[Any]], start: int, end: int) -> bool:
    for name in sorted(blobs_named(records)):
        try:
            store.open_blob(name).close()
        except StoreError:
            raise ApiError(
                409, f"a record names blob {name}, which the server does not hold; upload it first", "body"
            ) from None
    return store.ingest(writer_id, run_id, records, start, end)


@router.post("/writers/{writer_id}/close", responses=OK)
def close_writer(store: StoreDep, writer_id: WriterId, body: CloseBody) -> Response:
    """Close a writer; with ``status``, end its run with it too."""
    if body.status is not None and body.status not in STATUSES:
        raise ApiError(400, f"status {body.status!r} is not a run status; use one of {', '.join(STATUSES)}", "status")
    store.close_writer(writer_id, body.status, body.reason)
    return _ok()


@router.post("/heartbeat", responses=OK)
def heartbeat(store: StoreDep, body: HeartbeatBody) -> Response:
    store.heartbeat(body.writer_ids, body.at)
    return _ok()


@router.put(
    "/blobs/{name}",
    responses=ok(obj(name={"type": "string"})),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_blob(request: Request, store: StoreDep, name: Annotated[str, PathParam(max_length=100)]) -> Response:
    """Store a blob under its name ``<sha256>.<ext>`` (idempotent); bytes with another hash are refused."""
    try:
        check_blob_name(name)
    except ValueError as exc:
        raise ApiError(400, str(exc), "name") from None
    data = await request.body()
    digest, _, ext = name.partition(".")
    if hashlib.sha256(data).hexdigest() != digest:
        raise ApiError(400, f"the body's sha256 is not {digest}: the blob was damaged or misnamed", "body")
    stored = await run_in_threadpool(store.put_blob, data, ext)
    return WireJSONResponse({"name": stored})


# -- reads the HTTP store needs beyond the UI's --------------------------------------------------


@reads.get("/runs/{ref}/id", responses=ok(obj(id=INTEGER)))
def resolve(store: StoreDep, ref: RefDep) -> Response:
    """The numeric id of the run ``ref`` names (cheaper than the run itself)."""
    return WireJSONResponse({"id": store.resolve(ref)})


@reads.get("/runs/{ref}/ancestry", responses=ok(items(ref("Node"))))
def ancestry(store: StoreDep, ref: RefDep) -> Response:
    """The run and its fork ancestors, root first, each with its own user-metric step range."""
    nodes: list[Node] = store.ancestry(store.resolve(ref))
    return WireJSONResponse({"items": [node._asdict() for node in nodes]})


@reads.get("/runs/{ref}/forks", responses=ok(items(ref("RunInfo"))))
def forks(store: StoreDep, ref: RefDep) -> Response:
    return WireJSONResponse({"items": [wire.to_wire(run) for run in store.forks(store.resolve(ref))]})
