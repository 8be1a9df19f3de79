"""Everything ``runlane.Api`` reads of a store, keyed by run uid, to compare two stores holding the same runs.

Numeric ids, display-id sequence numbers and row ids (cursors) are the target store's own, so runs and
parents are named by uid; the writers of a run are who wrote to that store, so they are left out.
"""

from __future__ import annotations

import math
from typing import Any

from runlane import Api
from runlane.entities import RunInfo


def _same_nan(value: Any) -> Any:
    # NaN != NaN: compare floats by their repr, which keeps NaN and +/-Inf apart from any number.
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _same_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_same_nan(v) for v in value]
    return value


def run_view(api: Api, run: RunInfo, uids: dict[int, str]) -> dict[str, Any]:
    """One run as a plain dict: its fields (ids as uids), its metrics' points, logs, samples, images, files."""
    metrics = {}
    for key, series in run.metrics.items():
        history = api.history(run.id, key)
        metrics[key] = {
            "summary": _same_nan(vars(series)),
            "points": _same_nan(list(zip(history.steps, history.values, history.times, history.stages, strict=True))),
        }
    images = [(*image, api.image_bytes(image)) for image in api.images(run.id)]
    return {
        "project": run.project,
        "name": run.name,
        "alias": run.alias,
        "notes": run.notes,
        "status": run.status,
        "status_reason": run.status_reason,
        "times": (run.created_at, run.started_at, run.ended_at),
        "config": _same_nan(run.config),
        "tags": run.tags,
        "summary": _same_nan(run.summary),
        "primary": (run.primary_metric, run.primary_mode, _same_nan(run.best_value), run.best_step),
        "parent": uids.get(run.parent_run_id) if run.parent_run_id is not None else None,
        "fork": (uids.get(run.fork_run_id) if run.fork_run_id is not None else None, run.fork_step),
        "metrics": metrics,
        "stitched": _same_nan({key: list(api.history(run.id, key, stitched=True).values) for key in run.metrics}),
        "logs": [(line.time, line.stream, line.text) for line in api.logs(run.id)],
        "system": _same_nan({key: list(points) for key, points in api.system_metrics(run.id).items()}),
        "images": images,
        "environment": api.environment(run.id),
        "code": api.code_snapshot(run.id),
        "lineage": [uids[r.id] for r in api.lineage(run.id).ancestors],
    }


def store_view(api: Api) -> dict[str, dict[str, Any]]:
    """Every run of the store by uid (see ``run_view``), plus its project's display key."""
    runs = api.runs()
    uids = {run.id: run.uid for run in runs}
    keys = {project.name: project.key for project in api.projects()}
    return {run.uid: {**run_view(api, run, uids), "project_key": keys[run.project]} for run in runs}
