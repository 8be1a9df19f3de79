"""Issue 14's native rules: project names are free text split into segments by ``/``, and any int64 is a
step, negative ones included. Everything is read back through ``runlane.Api`` from a real SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import runlane
from runlane.naming import normalize_project, project_key_candidates, project_segments
from runlane.steps import STEP_MAX, STEP_MIN

# -- project names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Social NLP Experiments",  # MLflow's docs
        "/Users/me/exp",  # a Databricks workspace path: the leading '/' is part of the name
        "实验/基线",
        "Эксперименты/версия 2",
        "cv/résumé (v2), take #3!",
        "emoji 🚀/ok",
        "a.b/c-d/e_f",
    ],
)
def test_free_text_project_names_round_trip_exactly(store_dir: Path, name: str) -> None:
    with runlane.init(project=name, dir=store_dir) as run:
        run.log({"x": 1.0})
    assert run.project == name
    api = runlane.Api(dir=store_dir)
    assert [p.name for p in api.projects()] == [name]
    project = api.project(name)
    assert re.fullmatch(r"[A-Z]{2,4}", project.key)
    assert [r.project for r in api.runs(project=name)] == [name]
    assert api.run(run.display_id).id == run.id


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/../b", "traversal"),
        ("..", "traversal"),
        ("./a", "traversal"),
        ("a//b", "empty segment"),
        ("//a", "empty segment"),
        ("", "empty"),
        ("/", "empty"),
        ("   ", "leading or trailing spaces"),
        ("cv/ resnet", "leading or trailing spaces"),
        ("cv /resnet", "leading or trailing spaces"),
        ("tab\there", "control character"),
        ("new\nline", "control character"),
        ("nul\x00", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "control character"),
        ("line\u2028sep", "control character"),
        ("rlo\u202etxt", "control character"),
        ("x" * 201, "at most 200"),
    ],
)
def test_names_with_control_characters_or_bad_segments_are_refused(store_dir: Path, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        runlane.init(project=name, dir=store_dir)
    assert not store_dir.exists()


def test_backslashes_become_slashes_and_trailing_slashes_go(store_dir: Path) -> None:
    assert normalize_project("cv\\resnet50\\") == "cv/resnet50"
    assert normalize_project("\\Users\\me\\exp") == "/Users/me/exp"
    run = runlane.init(project="cv\\resnet50\\", dir=store_dir)
    run.finish()
    assert run.project == "cv/resnet50"


def test_a_leading_slash_names_a_different_project_with_the_same_segments(store_dir: Path) -> None:
    # Kept verbatim so that an MLflow name comes back exactly; the tree shows both under the same folders.
    for name in ("/Users/me/exp", "Users/me/exp"):
        runlane.init(project=name, dir=store_dir).finish()
    names = sorted(p.name for p in runlane.Api(dir=store_dir).projects())
    assert names == ["/Users/me/exp", "Users/me/exp"]
    assert project_segments("/Users/me/exp") == project_segments("Users/me/exp") == ["Users", "me", "exp"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("my-ml-project", "MMP"),
        ("Social NLP Experiments", "SNE"),
        ("Эксперименты/версия", "EV"),  # Cyrillic: the Latin letter each letter's Unicode name gives
        ("résumé", "RES"),
        ("αβγ", "ABG"),
    ],
)
def test_display_keys_are_capital_letters_for_any_script(name: str, key: str) -> None:
    assert project_key_candidates(name)[0] == key


def test_a_name_without_any_latin_reading_still_gets_a_key(store_dir: Path) -> None:
    first = runlane.init(project="实验", dir=store_dir)
    second = runlane.init(project="基线", dir=store_dir)
    for run in (first, second):
        run.finish()
        assert re.fullmatch(r"[A-Z]{2,4}-1", run.display_id)
    assert first.display_id != second.display_id


# -- steps --------------------------------------------------------------------------------------------


def test_negative_steps_are_stored_and_read_back_in_step_order(store_dir: Path) -> None:
    with runlane.init(project="steps", dir=store_dir) as run:
        for step in (-3, 5, -10, 0, -1):
            run.log({"loss": float(step)}, step=step)
        run.log({"loss": 99.0})  # the counter follows the last explicit step: -1 + 1 = 0 (replaces step 0)
        run.log_image("img", np.zeros((2, 2), dtype=np.uint8), step=-7)
    api = runlane.Api(dir=store_dir)
    points = api.history(run.id, "loss")
    assert [p.step for p in points] == [-10, -3, -1, 0, 5]
    assert [p.value for p in points] == [-10.0, -3.0, -1.0, 99.0, 5.0]
    assert [p.step for p in api.history(run.id, "loss", start=-5, end=-1)] == [-3, -1]
    assert [i.step for i in api.images(run.id)] == [-7]
    buckets = api.history(run.id, "loss", buckets=2)
    assert sum(b.count for b in buckets) == 5
    assert buckets[0].start == -10
    summary = api.run(run.id).metrics["loss"]
    assert (summary.first_step, summary.last_step, summary.min_step, summary.last_value) == (-10, 5, -10, 5.0)


def test_negative_steps_across_many_chunks_stay_in_order(store_dir: Path) -> None:
    with runlane.init(project="steps", dir=store_dir) as run:
        for i in range(3000):
            run.log({"x": float(i)}, step=-5000 + 3 * i)
    api = runlane.Api(dir=store_dir)
    points = api.history(run.id, "x")
    assert [p.step for p in points] == list(range(-5000, 4000, 3))
    assert [p.step for p in api.history(run.id, "x", start=-10, end=10)] == [-8, -5, -2, 1, 4, 7, 10]
    first = api.history(run.id, "x", buckets=4)[0]
    assert (first.start, first.count) == (-5000, 750)


def test_the_whole_int64_range_is_stored_and_downsampled(store_dir: Path) -> None:
    with runlane.init(project="steps", dir=store_dir) as run:
        run.log({"x": 1.0}, step=STEP_MIN)
        run.log({"x": 2.0}, step=-1)
        run.log({"x": 3.0}, step=STEP_MAX)
    api = runlane.Api(dir=store_dir)
    assert [p.step for p in api.history(run.id, "x")] == [STEP_MIN, -1, STEP_MAX]
    one = api.history(run.id, "x", buckets=1)
    assert [(b.start, b.end, b.count, b.last) for b in one] == [(STEP_MIN, STEP_MAX, 3, 3.0)]
    two = api.history(run.id, "x", buckets=2)
    assert [(b.start, b.end, b.count) for b in two] == [(STEP_MIN, -1, 2), (STEP_MAX, STEP_MAX, 1)]


def test_steps_beyond_int64_are_still_refused(store_dir: Path) -> None:
    run = runlane.init(project="steps", dir=store_dir)
    with pytest.raises(ValueError, match="smallest step"):
        run.log({"x": 1.0}, step=STEP_MIN - 1)
    with pytest.raises(ValueError, match="largest step"):
        run.log({"x": 1.0}, step=STEP_MAX + 1)
    run.finish()
    assert runlane.Api(dir=store_dir).history(run.id, "x") == []


def test_a_resumed_run_continues_after_its_highest_negative_step(store_dir: Path) -> None:
    with runlane.init(project="steps", dir=store_dir) as run:
        run.log({"x": 1.0}, step=-5)
        run.log({"x": 2.0}, step=-8)
    resumed = runlane.init(project="steps", run_id=run.id, resume=True, dir=store_dir)
    assert resumed.step == -4
    resumed.log({"x": 3.0})
    resumed.finish()
    assert [p.step for p in runlane.Api(dir=store_dir).history(run.id, "x")] == [-8, -5, -4]


def test_a_fork_at_a_negative_step_stitches_the_parent_up_to_it(store_dir: Path) -> None:
    with runlane.init(project="steps", dir=store_dir) as parent:
        for step in range(-10, 0):
            parent.log({"x": float(step)}, step=step)
    with runlane.init(project="steps", fork_run_id=parent.id, fork_step=-6, dir=store_dir) as child:
        assert child.fork_step == -6
        assert child.step == -5
        child.log({"x": 100.0})
    stitched = runlane.Api(dir=store_dir).history(child.id, "x", stitched=True)
    assert [(p.step, p.run_id) for p in stitched][-2:] == [(-6, parent.id), (-5, child.id)]
    assert stitched[0].step == -10
    with pytest.raises(ValueError, match="choose a step from -10 to -1"):
        runlane.init(project="steps", fork_run_id=parent.id, fork_step=-11, dir=store_dir)


# -- images from files ---------------------------------------------------------------------------------


def test_log_image_takes_an_image_file_as_bytes_or_a_path(store_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    picture = tmp_path / "sample.jpg"
    Image.new("RGB", (6, 4), (200, 10, 10)).save(picture, format="JPEG")
    png = tmp_path / "sample.png"
    Image.new("LA", (3, 5), (90, 255)).save(png, format="PNG")
    with runlane.init(project="files", dir=store_dir) as run:
        run.log_image("jpeg", str(picture), caption="from a path")
        run.log_image("png", png.read_bytes(), step=3)
        run.log_image("pathlike", png)
        with pytest.raises(ValueError, match="not an image file"):
            run.log_image("bad", b"not an image")
        with pytest.raises(FileNotFoundError, match="no image file at"):
            run.log_image("bad", str(tmp_path / "missing.png"))
    api = runlane.Api(dir=store_dir)
    stored = {image.key: image for image in api.images(run.id)}
    assert sorted(stored) == ["jpeg", "pathlike", "png"]
    assert (stored["jpeg"].width, stored["jpeg"].height, stored["jpeg"].caption) == (6, 4, "from a path")
    assert (stored["png"].step, stored["png"].width, stored["png"].height) == (3, 3, 5)
    assert api.open_image(stored["png"]).mode == "LA"
    red = api.open_image(stored["jpeg"]).convert("RGB").getpixel((2, 2))
    assert isinstance(red, tuple)
    assert red[0] > 150
