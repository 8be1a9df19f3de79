"""Bad input gets a clear error naming what was wrong, and changes nothing else."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import runlane
from runlane.errors import RunNotFoundError


@pytest.fixture
def run(store_dir: Path):  # type: ignore[no-untyped-def]
    run = runlane.init(project="inputs", dir=store_dir)
    yield run
    run.finish()


def _history(store: Path, run_id: int, key: str) -> list[tuple[int, float]]:
    with runlane.Api(store) as api:
        return [(p.step, p.value) for p in api.history(run_id, key)]


@pytest.mark.parametrize(
    "bad", ["0.5", None, [1.0, 2.0], {1, 2}, object(), 1 + 2j, b"1", np.array([1.0, 2.0]), torch.ones(3)]
)
def test_a_value_that_is_not_a_number_is_refused_naming_the_key(run, store_dir: Path, bad: object) -> None:  # type: ignore[no-untyped-def]
    run.log({"good": 1.0})
    with pytest.raises(TypeError, match="'bad_metric'"):
        run.log({"other": 2.0, "bad_metric": bad, "third": 3.0})
    assert run.step == 1  # the refused call did not use a step
    run.log({"good": 4.0})
    run.finish()
    assert _history(store_dir, run.id, "good") == [(0, 1.0), (1, 4.0)]
    assert _history(store_dir, run.id, "other") == []
    assert _history(store_dir, run.id, "third") == []


def test_a_bad_value_in_keywords_or_nested_dicts_is_named_by_its_full_key(run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="'lr'"):
        run.log(loss=1.0, lr="fast")
    with pytest.raises(TypeError, match="'train/acc'"):
        run.log({"train": {"loss": 1.0, "acc": "high"}})


def test_non_finite_values_round_trip_exactly(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    values = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, 5e-324]
    for value in values:
        run.log({"v": value})
    run.summary({"final": math.nan, "peak": math.inf, "floor": -math.inf})
    run.update_config({"eps": -math.inf})
    run.finish()
    stored = [v for _, v in _history(store_dir, run.id, "v")]
    assert math.isnan(stored[0])
    assert stored[1:] == values[1:]
    assert math.copysign(1.0, stored[4]) == -1.0
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
    assert math.isnan(info.summary["final"])
    assert info.summary["peak"] == math.inf
    assert info.summary["floor"] == -math.inf
    assert info.config["eps"] == -math.inf
    series = info.metrics["v"]
    assert series.count == 7
    assert series.max == math.inf
    assert series.min == -math.inf
    assert series.last_value == 5e-324


def test_last_value_nan_is_reported_as_nan(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run.log({"loss": 1.0})
    run.log({"loss": math.nan})
    run.finish()
    with runlane.Api(store_dir) as api:
        series = api.run(run.id).metrics["loss"]
    assert math.isnan(series.last_value)
    assert series.min == series.max == 1.0


def test_numpy_and_torch_scalars_and_0d_arrays_are_numbers(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run.log(
        {
            "np_f32": np.float32(0.5),
            "np_f64": np.float64(0.25),
            "np_i64": np.int64(7),
            "np_bool": np.bool_(True),
            "np_0d": np.array(1.5),
            "torch_0d": torch.tensor(2.5),
            "torch_int": torch.tensor(3),
            "torch_bool": torch.tensor(False),
            "py_bool": True,
            "decimal": Decimal("0.125"),
            "fraction": Fraction(1, 4),
            "big_int": 2**70,
        }
    )
    run.finish()
    with runlane.Api(store_dir) as api:
        last = {k: s.last_value for k, s in api.run(run.id).metrics.items()}
    assert last == {
        "np_f32": 0.5,
        "np_f64": 0.25,
        "np_i64": 7.0,
        "np_bool": 1.0,
        "np_0d": 1.5,
        "torch_0d": 2.5,
        "torch_int": 3.0,
        "torch_bool": 0.0,
        "py_bool": 1.0,
        "decimal": 0.125,
        "fraction": 0.25,
        "big_int": float(2**70),
    }


@pytest.mark.parametrize(
    ("project", "message"),
    [
        ("a/../b", "traversal"),
        ("..", "traversal"),
        ("a//b", "empty segment"),
        ("", "empty"),
        ("cv/ res net", "leading or trailing spaces"),
        ("cv/r\x00sum", "control character"),
        ("x" * 201, "at most 200"),
    ],
)
def test_invalid_project_paths_are_refused(store_dir: Path, project: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        runlane.init(project=project, dir=store_dir)
    assert not store_dir.exists()


def test_backslashes_and_trailing_slashes_are_normalized(store_dir: Path) -> None:
    run = runlane.init(project="cv\\resnet50\\", dir=store_dir)
    run.finish()
    assert run.project == "cv/resnet50"


def test_unknown_status_is_refused_and_the_run_stays_open(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        run.finish("done")
    assert run.status == "running"
    run.log({"still": 1.0})
    with runlane.Api(store_dir) as api:
        assert api.run(run.id).status == "running"
    run.finish()
    with runlane.Api(store_dir) as api:
        assert api.run(run.id).status == "finished"


def test_resume_of_a_run_that_does_not_exist_names_the_id(store_dir: Path) -> None:
    runlane.init(project="p", dir=store_dir).finish()
    for ref in (999, "PP-999", "0" * 32):
        with pytest.raises(RunNotFoundError, match=repr(ref)):
            runlane.init(run_id=ref, resume=True, dir=store_dir)
    with pytest.raises(ValueError, match="neither a numeric id"):
        runlane.init(run_id="not an id", resume=True, dir=store_dir)


def test_run_id_and_resume_must_come_together(store_dir: Path) -> None:
    with pytest.raises(ValueError, match="resume=True needs run_id="):
        runlane.init(project="p", resume=True, dir=store_dir)
    with pytest.raises(ValueError, match="without resume=True"):
        runlane.init(project="p", run_id=1, dir=store_dir)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"step": -(2**63) - 1}, ValueError, "smallest step"),
        ({"step": 1.5}, TypeError, "step must be"),
        ({"step": True}, TypeError, "step must be"),
        ({"stage": 3}, TypeError, "stage must be a string"),
    ],
)
def test_bad_step_or_stage(run, kwargs: dict[str, object], error: type[Exception], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        run.log({"x": 1.0}, **kwargs)
    assert run.step == 0


def test_bad_metric_names(run) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="metric names must be strings"):
        run.log({1: 1.0})
    with pytest.raises(ValueError, match="empty"):
        run.log({"": 1.0})
    with pytest.raises(ValueError, match="control character"):
        run.log({"a\nb": 1.0})
    with pytest.raises(ValueError, match="at most 256"):
        run.log({"k" * 300: 1.0})
    with pytest.raises(TypeError, match="takes a dict"):
        run.log([("a", 1.0)])


def test_config_and_summary_values_that_cannot_be_stored(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=r"config\.model\.layer"):
        run.update_config({"model": {"layer": object()}})
    with pytest.raises(TypeError, match="summary takes a dict"):
        run.summary(["a"])
    with pytest.raises(TypeError, match="keys must be strings"):
        run.summary({1: "a"})
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        run.set_primary_metric("acc", mode="best")
    with pytest.raises(TypeError, match="tags must be strings"):
        run.add_tags([1])
    with pytest.raises(ValueError, match="must not be empty"):
        run.add_tags(" ")
    run.update_config({"arr": np.arange(3), "path": Path("/data"), "t": (1, 2), "s": {"b", "a"}})
    run.finish()
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
    assert info.config == {"arr": [0, 1, 2], "path": "/data", "t": [1, 2], "s": ["a", "b"]}
    assert info.summary == {}
    assert info.primary_metric is None
    assert info.tags == ()


def test_unicode_and_huge_text(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    huge = "\n".join(f"línea {i} — 日本語 🚀" for i in range(200_000))  # ~5 MB, split into records
    run.log({"損失/学習": 0.5})
    run.log_text(huge)
    run.log_text("x" * 3_000_000)  # one line longer than a record
    run.finish()
    with runlane.Api(store_dir) as api:
        lines = [line.text for line in api.logs(run.id)]
        assert api.history(run.id, "損失/学習")[0].value == 0.5
    assert lines[:200_000] == huge.split("\n")
    assert "".join(lines[200_000:]) == "x" * 3_000_000


def test_tags_passed_as_one_string_are_refused(store_dir: Path) -> None:
    with pytest.raises(TypeError, match="tags=\\['baseline'\\]"):
        runlane.init(project="p", tags="baseline", dir=store_dir)
