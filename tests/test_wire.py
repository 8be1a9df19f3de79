"""The wire format: strict JSON values, an escape for user data shaped like a tag, and entity shapes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runlane
from runlane import wire
from runlane.entities import RunFile

# User data that looks like the wire's own tags; each must come back exactly as it went in.
TAG_SHAPED: list[Any] = [
    {"$float": "NaN"},
    {"$float": "Infinity"},
    {"$float": "-Infinity"},
    {"$esc": 1},
    {"$esc": ["$float", "NaN"]},
    {"$esc": {"$float": "NaN"}},
    {"$anything": [1, 2]},
    {"$float": {"$float": "NaN"}},
    {"outer": {"$float": "NaN"}, "n": 1},
    [{"$float": "Infinity"}, {"$esc": None}],
    {"$float": "NaN", "other": 1},  # two keys: not a tag either way
]


def _strict(text: str) -> Any:
    """Parse as strict JSON: NaN/Infinity literals are refused."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", TAG_SHAPED, ids=[json.dumps(v) for v in TAG_SHAPED])
def test_user_data_shaped_like_a_tag_round_trips_unchanged(value: Any) -> None:
    text = wire.dumps(value)
    _strict(text)
    assert wire.loads(text) == value
    assert wire.from_jsonable(_strict(text)) == value


def test_non_finite_floats_round_trip_also_inside_escaped_objects() -> None:
    value = {"$peak": math.inf, "x": [math.nan, -math.inf, 1.5], "deep": {"$float": -math.inf}}
    back = wire.loads(wire.dumps(value))
    assert back["$peak"] == math.inf
    assert math.isnan(back["x"][0])
    assert back["x"][1:] == [-math.inf, 1.5]
    assert back["deep"] == {"$float": -math.inf}
    assert wire.loads('{"$float":"NaN"}') != wire.loads('{"$esc":["$float","NaN"]}')


def test_config_and_summary_shaped_like_a_tag_come_back_unchanged_from_the_store(store_dir: Path) -> None:
    config = {"nan_like": {"$float": "NaN"}, "esc_like": {"$esc": ["$float", "Infinity"]}, "real": math.inf}
    with runlane.init(project="wire", config=config, dir=store_dir, system_metrics_interval=None) as run:
        run.update_config({"later": {"$float": "-Infinity"}, "ref": {"$ref": "x"}})
        run.summary({"best": {"$float": "Infinity"}, "note": {"$esc": 1}})
    with runlane.Api(store_dir) as api:
        stored = api.run(run.id)
    assert stored.config == {
        "nan_like": {"$float": "NaN"},
        "esc_like": {"$esc": ["$float", "Infinity"]},
        "real": math.inf,
        "later": {"$float": "-Infinity"},
        "ref": {"$ref": "x"},
    }
    assert stored.summary["best"] == {"$float": "Infinity"}
    assert stored.summary["note"] == {"$esc": 1}


def _same(a: Any, b: Any) -> bool:
    """Equal entities (or lists of them), counting NaN equal to NaN (the wire restores NaN; NaN != NaN)."""

    def shape(x: Any) -> Any:
        return [shape(item) for item in x] if isinstance(x, list) else wire.to_wire(x)

    return wire.dumps(shape(a)) == wire.dumps(shape(b))


def _entities(store_dir: Path) -> list[Any]:
    """One of each entity, most read from a real store: a run with a fork, NaN and Inf, logs, images."""
    with runlane.init(
        project="wire/entities",
        config={"lr": 0.1, "odd": {"$float": "NaN"}},
        tags=["a", "b"],
        dir=store_dir,
        system_metrics_interval=None,
    ) as parent:
        parent.set_primary_metric("acc")
        for acc in [0.5, math.nan, 0.9, math.inf]:
            parent.log({"acc": acc, "loss": 1.0}, stage="train")
        parent.log_text("hello\nworld")
        parent.log_image("sample", np.zeros((2, 3), dtype=np.uint8), caption="zeros")
        parent.summary({"peak": -math.inf})
    with runlane.init(fork_run_id=parent.id, fork_step=1, dir=store_dir, system_metrics_interval=None) as child:
        child.log({"acc": 0.7})
    with runlane.Api(store_dir) as api:
        run = api.run(parent.id)
        return [
            run,
            run.metrics["acc"],
            run.writers[0],
            api.project("wire/entities"),
            api.lineage(child.id),
            api.history(child.id, "acc", stitched=True),
            api.history(parent.id, "acc")[1],
            *api.history(parent.id, "acc", buckets=2),
            *api.logs(parent.id),
            runlane.SystemSample("sys/cpu_percent", 1.5, math.nan, 12),  # system samples: test_system_metrics.py
            runlane.SystemPoint(1.5, math.inf),
            *api.images(parent.id),
            RunFile("environment", "0" * 64 + ".json", 1.5, {"bytes": 10, "$k": math.nan}),
        ]


def test_every_entity_round_trips_through_its_wire_shape(store_dir: Path) -> None:
    entities = _entities(store_dir)
    kinds = {type(entity).__name__ for entity in entities}
    assert kinds == {
        "Bucket", "History", "ImageInfo", "Lineage", "LogLine", "MetricPoint", "MetricSummary", "ProjectInfo",
        "RunFile", "RunInfo", "SystemPoint", "SystemSample", "WriterInfo",
    }  # fmt: skip
    for entity in entities:
        text = wire.dumps(wire.to_wire(entity))
        _strict(text)
        back = wire.from_wire(type(entity), wire.loads(text))
        assert type(back) is type(entity)
        assert _same(back, entity), type(entity).__name__
    run = entities[0]
    back_run = wire.from_wire(runlane.RunInfo, wire.loads(wire.dumps(wire.to_wire(run))))
    assert back_run.tags == ("a", "b")  # a tuple again, as the store returns it
    assert back_run.config["odd"] == {"$float": "NaN"}
    assert back_run.summary["peak"] == -math.inf
    assert back_run.metrics["acc"].last_value == back_run.metrics["acc"].max == math.inf


def test_a_history_travels_as_columns() -> None:
    history = runlane.History([1, 2], [0.5, math.nan], [10.0, 11.0], ["a", None], [7, 7])
    shape = wire.to_wire(history)
    assert list(shape) == ["steps", "values", "times", "stages", "run_ids"]
    assert shape["steps"] == [1, 2]
    back = wire.from_wire(runlane.History, wire.loads(wire.dumps(shape)))
    assert back.steps == [1, 2]
    assert math.isnan(back.values[1])
    with pytest.raises(ValueError, match="columns of one length"):
        wire.from_wire(runlane.History, {**shape, "steps": [1]})


def test_decoding_names_what_is_missing_or_malformed_and_ignores_unknown_members() -> None:
    point = {"step": 1, "value": 0.5, "time": 2.0, "stage": None, "run_id": 3}
    assert wire.from_wire(runlane.MetricPoint, {**point, "added_later": True}) == runlane.MetricPoint(
        1, 0.5, 2.0, None, 3
    )
    missing = {k: v for k, v in point.items() if k != "value"}
    with pytest.raises(ValueError, match="a MetricPoint on the wire needs the member 'value'"):
        wire.from_wire(runlane.MetricPoint, missing)
    with pytest.raises(ValueError, match="a LogLine on the wire is a JSON object, got list"):
        wire.from_wire(runlane.LogLine, [1.0, "log", "x", 1])
    with pytest.raises(TypeError, match="dict is not a runlane entity"):
        wire.to_wire({"a": 1})
    with pytest.raises(TypeError, match="str is not a runlane entity"):
        wire.from_wire(str, {})


def test_the_api_version_is_one() -> None:
    assert wire.API_VERSION == 1


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "runlane", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def test_cli_json_is_the_wire_shape_of_the_runs(store_dir: Path) -> None:
    with runlane.init(project="cli", config={"$x": 1}, dir=store_dir, system_metrics_interval=None) as run:
        run.set_primary_metric("acc", "max")
        run.log({"loss": math.nan, "acc": 0.5})
        run.summary({"best": {"$float": "NaN"}})
    with runlane.init(fork_run_id=run.id, fork_step=0, dir=store_dir, system_metrics_interval=None) as child:
        child.log({"loss": 0.1})
    with runlane.Api(store_dir) as api:
        runs = api.runs(metrics="primary")  # what `ls` reads: the primary metric's aggregates only
        shown = api.run(run.id)
    listed = [
        wire.from_wire(runlane.RunInfo, item) for item in wire.loads(_cli("ls", "--dir", str(store_dir), "--json"))
    ]
    assert _same(listed, runs)
    assert {item.id: sorted(item.metrics) for item in listed} == {run.id: ["acc"], child.id: []}  # no "loss"
    detail = wire.loads(_cli("show", str(run.id), "--dir", str(store_dir), "--json"))
    assert _same(wire.from_wire(runlane.RunInfo, detail), shown)
    assert detail["config"] == {"$x": 1}
    assert detail["summary"]["best"] == {"$float": "NaN"}  # beside the best_metric_* fields of "acc"
    assert detail["lineage"] == {
        "root": shown.display_id,
        "ancestors": [],
        "children": [{"id": child.id, "display_id": child.display_id, "fork_step": 0}],
    }
