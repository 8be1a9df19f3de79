"""The read API (SPEC.md 6.4; the route map is docs/http-api.md): what the UI, ``Api(url=)`` and scripts use.

Each route is one or two ``Store`` reads whose entities go out as ``wire.to_wire`` shapes; the
argument checks are the ones the local ``runlane.Api`` makes (``runlane.store.runs_query`` for the runs
page), so a request means the same thing over HTTP as in-process.
"""

from __future__ import annotations

import bisect
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from starlette.responses import Response, StreamingResponse

from .. import wire
from ..blobs import check_blob_name
from ..entities import Bucket, History
from ..errors import StoreError
from ..naming import RunRef, normalize_project
from ..steps import STEP_MAX, STEP_MIN
from ..store.base import Store
from ..store.runs_query import MAX_LIMIT, MAX_SEARCH, RunsQuery
from ..wire import API_VERSION
from .deps import RefDep, StoreDep
from .errors import ApiError
from .responses import WireJSONResponse
from .schemas import CURSOR, FLOAT, INTEGER, items, obj, ok, ref

router = APIRouter(prefix="/api/v1")
health_router = APIRouter(prefix="/api/v1")  # the one route that needs no API key

#: Most log lines or system samples one request returns (the ``next`` cursor pages on).
MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
#: Most buckets one history request asks for (a chart is a few thousand pixels wide).
MAX_BUCKETS = 100_000
MAX_KEY = 256

CONTENT_TYPES = {"png": "image/png", "json": "application/json", "zip": "application/zip"}
IMMUTABLE = "public, max-age=31536000, immutable"

SUMMARY = ref("MetricSummary")
#: Raw columns, or buckets (with ``time`` when ``x=time``).
HISTORY = {
    "anyOf": [
        ref("History"),
        obj(
            buckets={
                "type": "array",
                "items": {"allOf": [ref("Bucket"), {"properties": {"time": {"anyOf": [FLOAT, {"type": "null"}]}}}]},
            }
        ),
    ]
}

Step = Annotated[int | None, Query(ge=STEP_MIN, le=STEP_MAX)]
Cursor = Annotated[int | None, Query(ge=0, le=STEP_MAX, description="the id of the last item you have")]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Key = Annotated[str, Query(min_length=1, max_length=MAX_KEY)]
OptionalKey = Annotated[str | None, Query(min_length=1, max_length=MAX_KEY)]


@health_router.get("/health", responses=ok(obj(ok={"const": True}, api_version=INTEGER)))
def health() -> Response:
    return WireJSONResponse({"ok": True, "api_version": API_VERSION})


@router.get("/projects", responses=ok(items(ref("ProjectInfo"))))
def projects(store: StoreDep) -> Response:
    return WireJSONResponse({"items": [wire.to_wire(project) for project in store.projects()]})


def _query_field(message: str) -> str:
    # RunsQuery.check() starts each message with the argument it is about.
    for name in ("sort", "descending", "status", "tag", "search", "limit", "cursor"):
        if message.startswith(name):
            return name
    return "query"


@router.get("/runs", responses=ok(items(ref("RunInfo"), next={"type": ["string", "null"]}, total=INTEGER)))
def runs(
    store: StoreDep,
    project: Annotated[str | None, Query(max_length=400)] = None,
    sort: Annotated[str, Query(max_length=300)] = "created_at",
    descending: bool = True,
    status: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    search: Annotated[str | None, Query(max_length=MAX_SEARCH)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    try:
        name = normalize_project(project) if project is not None else None
    except ValueError as exc:
        raise ApiError(400, str(exc), "project") from None
    query = RunsQuery(
        project=name,
        sort=sort,
        descending=descending,
        statuses=tuple(status or ()),
        tags=tuple(tag or ()),
        search=search or None,
        limit=limit,
        cursor=cursor or None,
    )
    try:
        query.check()
    except ValueError as exc:
        raise ApiError(400, str(exc), _query_field(str(exc))) from None
    page = store.runs_page(query)
    out: dict[str, Any] = {"items": [wire.to_wire(run) for run in page.runs], "next": page.next_cursor}
    out["total"] = page.total
    return WireJSONResponse(out)


@router.get("/run-list", responses=ok(items(ref("RunInfo"))))
def run_list(
    store: StoreDep,
    project: Annotated[str | None, Query(max_length=400)] = None,
    status: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    metrics: Literal["all", "primary"] = "all",
) -> Response:
    """Every matching run, newest first (``Store.runs``; the runs page is the paged, sorted one)."""
    try:
        name = normalize_project(project) if project is not None else None
        RunsQuery(statuses=tuple(status or ()), tags=tuple(tag or ())).check()
    except ValueError as exc:
        raise ApiError(400, str(exc), "project" if str(exc).startswith("project") else _query_field(str(exc))) from None
    found = store.runs(name, status or None, tag or None, metrics=metrics)
    return WireJSONResponse({"items": [wire.to_wire(run) for run in found]})


@router.get("/runs/{ref}", responses=ok(ref("RunInfo")))
def run(store: StoreDep, ref: RefDep) -> Response:
    return WireJSONResponse(wire.to_wire(store.run(ref)))


@router.get("/runs/{ref}/lineage", responses=ok(ref("Lineage")))
def lineage(store: StoreDep, ref: RefDep) -> Response:
    from ..entities import Lineage

    info = store.run(ref)
    chain = [store.run(RunRef("id", node.run_id)) for node in store.ancestry(info.id)[:-1]]
    found = Lineage(
        run=info, root=chain[0] if chain else info, ancestors=tuple(chain), children=tuple(store.forks(info.id))
    )
    return WireJSONResponse(wire.to_wire(found))


@router.get(
    "/runs/{ref}/metrics", responses=ok(obj(items={"type": "object", "additionalProperties": ref("MetricSummary")}))
)
def metrics(store: StoreDep, ref: RefDep) -> Response:
    return WireJSONResponse({"items": {key: wire.to_wire(summary) for key, summary in store.run(ref).metrics.items()}})


@router.get("/runs/{ref}/history", responses=ok(HISTORY))
def history(
    store: StoreDep,
    ref: RefDep,
    key: Key,
    start: Step = None,
    end: Step = None,
    stitched: bool = False,
    buckets: Annotated[int | None, Query(ge=1, le=MAX_BUCKETS)] = None,
    x: Literal["step", "time"] = "step",
) -> Response:
    """Raw points as columns, or ``buckets`` step buckets; ``x=time`` adds each bucket's wall time (that
    of its last step; raw columns always carry ``times``)."""
    if start is not None and end is not None and start > end:
        raise ApiError(400, f"start ({start}) is after end ({end})", "start")
    run_id = store.resolve(ref)
    if buckets is None:
        found = store.stitched_history(run_id, key, start, end) if stitched else store.history(run_id, key, start, end)
        return WireJSONResponse(wire.to_wire(found))
    cut = store.downsampled(run_id, key, buckets, stitched=stitched, start=start, end=end)
    items = [wire.to_wire(bucket) for bucket in cut]
    if x == "time" and cut:
        points = store.stitched_history(run_id, key, start, end) if stitched else store.history(run_id, key, start, end)
        for item, bucket in zip(items, cut, strict=True):
            item["time"] = _time_at(points, bucket)
    return WireJSONResponse({"buckets": items})


def _time_at(points: History, bucket: Bucket) -> float | None:
    at = bisect.bisect_left(points.steps, bucket.end)
    return points.times[at] if at < len(points.steps) and points.steps[at] == bucket.end else None


@router.get("/runs/{ref}/logs", responses=ok(items(ref("LogLine"), next=CURSOR)))
def logs(
    store: StoreDep,
    ref: RefDep,
    after: Cursor = None,
    limit: PageLimit = DEFAULT_PAGE,
    search: Annotated[str | None, Query(max_length=1000)] = None,
    stream: Annotated[list[Literal["stdout", "stderr", "log"]] | None, Query()] = None,
) -> Response:
    lines = store.logs(store.resolve(ref), after=after, limit=limit, search=search or None, streams=stream or None)
    return WireJSONResponse({"items": [wire.to_wire(line) for line in lines], "next": lines[-1].id if lines else after})


@router.get("/runs/{ref}/images", responses=ok(items(ref("ImageInfo"))))
def images(store: StoreDep, ref: RefDep, key: OptionalKey = None) -> Response:
    return WireJSONResponse({"items": [wire.to_wire(image) for image in store.images(store.resolve(ref), key)]})


@router.get("/runs/{ref}/system", responses=ok(items(ref("SystemSample"), next=CURSOR)))
def system(
    store: StoreDep, ref: RefDep, key: OptionalKey = None, after: Cursor = None, limit: PageLimit = DEFAULT_PAGE
) -> Response:
    samples = store.system_samples(store.resolve(ref), key, after=after, limit=limit)
    return WireJSONResponse(
        {"items": [wire.to_wire(sample) for sample in samples], "next": samples[-1].id if samples else after}
    )


@router.get("/runs/{ref}/files/{kind}", responses=ok(ref("RunFile")))
def run_file(store: StoreDep, ref: RefDep, kind: Literal["environment", "code"]) -> Response:
    found = store.run_file(store.resolve(ref), kind)
    if found is None:
        raise ApiError(404, f"run {ref} has no {kind} file", "kind")
    return WireJSONResponse(wire.to_wire(found))


@router.get(
    "/blobs/{name}",
    response_class=Response,
    responses={200: {"content": {kind: {} for kind in CONTENT_TYPES.values()}, "description": "the blob's bytes"}},
)
def blob(store: StoreDep, name: Annotated[str, PathParam(max_length=100)]) -> Response:
    try:
        check_blob_name(name)
    except ValueError as exc:
        raise ApiError(400, str(exc), "name") from None
    return _blob_response(store, name)


def _blob_response(store: Store, name: str) -> Response:
    try:
        handle = store.open_blob(name)
    except StoreError:
        raise ApiError(404, f"no blob {name} in this store", "name") from None

    def chunks() -> Any:
        with handle:
            while chunk := handle.read(256 * 1024):
                yield chunk

    headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{name}"'}
    return StreamingResponse(chunks(), media_type=CONTENT_TYPES[name.rpartition(".")[2]], headers=headers)
