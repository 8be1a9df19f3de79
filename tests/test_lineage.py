"""Forks: lineage resolution, inheritance, stitched and downsampled reads, deletion rules."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import runlane
from runlane import Run

from .remote import store_dir as _local_and_remote

store_dir = _local_and_remote  # every test here runs on a local store and on a server


def _log_range(run: Run, steps: range, offset: float = 0.0, key: str = "loss") -> None:
    for step in steps:
        run.log({key: offset + step}, step=step)


@pytest.fixture
def abc(store_dir: Path) -> tuple[int, int, int]:
    """The documented lineage: A logs 0-100; B forks A at 50 and logs 51-200; C forks B at 150."""
    a = runlane.init(project="lineage", name="A", config={"lr": 0.1}, tags=["a"], dir=store_dir)
    _log_range(a, range(101), offset=1000)
    a.finish()
    b = runlane.init(name="B", fork_run_id=a.display_id, fork_step=50, dir=store_dir)
    assert b.step == 51
    _log_range(b, range(51, 201), offset=2000)
    b.finish()
    c = runlane.init(name="C", fork_run_id=b.uid, fork_step=150, dir=store_dir)  # by uid; B by display id
    _log_range(c, range(151, 251), offset=3000)
    c.finish()
    return a.id, b.id, c.id


@pytest.mark.parametrize(("step", "parent"), [(75, "B"), (30, "A"), (175, "C"), (150, "B"), (50, "A"), (51, "B")])
def test_forking_c_resolves_the_parent_that_owns_the_step(
    store_dir: Path, abc: tuple[int, int, int], step: int, parent: str
) -> None:
    ids = dict(zip("ABC", abc, strict=True))
    fork = runlane.init(fork_run_id=ids["C"], fork_step=step, dir=store_dir)
    fork.finish()
    assert fork.fork_run_id == ids[parent]
    assert fork.fork_step == step
    assert fork.project == "lineage"
    with runlane.Api(store_dir) as api:
        info = api.run(fork.id)
    assert (info.fork_run_id, info.fork_step) == (ids[parent], step)


def test_stitched_series_of_c_comes_from_a_then_b_then_c(store_dir: Path, abc: tuple[int, int, int]) -> None:
    a, b, c = abc
    with runlane.Api(store_dir) as api:
        stitched = api.history(c, "loss", stitched=True)
        own = api.history(c, "loss")
    assert [(p.step, p.value, p.run_id) for p in stitched] == (
        [(s, 1000.0 + s, a) for s in range(51)]
        + [(s, 2000.0 + s, b) for s in range(51, 151)]
        + [(s, 3000.0 + s, c) for s in range(151, 251)]
    )
    assert [p.step for p in own] == list(range(151, 251))
    assert set(own.run_ids) == {c}


def test_stitched_ranges_cut_across_runs(store_dir: Path, abc: tuple[int, int, int]) -> None:
    a, b, c = abc
    with runlane.Api(store_dir) as api:
        middle = api.history(c, "loss", stitched=True, start=40, end=160)
        plain = api.history(b, "loss", start=190, end=1000)
        empty = api.history(c, "loss", stitched=True, start=1000)
    assert [(p.step, p.run_id) for p in middle] == (
        [(s, a) for s in range(40, 51)] + [(s, b) for s in range(51, 151)] + [(s, c) for s in range(151, 161)]
    )
    assert [p.step for p in plain] == list(range(190, 201))
    assert list(empty) == []


def test_lineage_lists_ancestors_children_and_root(store_dir: Path, abc: tuple[int, int, int]) -> None:
    a, b, c = abc
    extra = runlane.init(name="B2", fork_run_id=b, fork_step=100, dir=store_dir)
    extra.finish()
    with runlane.Api(store_dir) as api:
        of_c = api.lineage(c)
        of_b = api.lineage(b)
        of_a = api.lineage(a)
    assert [r.id for r in of_c.ancestors] == [a, b]
    assert of_c.root.id == a
    assert of_c.children == ()
    assert [(r.id, r.fork_step) for r in of_b.children] == [(c, 150), (extra.id, 100)]
    assert of_a.ancestors == ()
    assert of_a.root.id == a
    assert [(r.name, r.fork_step) for r in of_a.children] == [("B", 50)]


def test_config_deep_merge_three_levels_and_tags(store_dir: Path) -> None:
    parent_config = {
        "model": {"encoder": {"layers": 12, "act": "gelu", "dims": [256, 512]}, "dropout": 0.1},
        "lr": 0.1,
    }
    parent = runlane.init(project="merge", config=parent_config, tags=["base", "shared"], dir=store_dir)
    parent.log({"loss": 1.0}, step=10)
    parent.finish()
    child_config = {"model": {"encoder": {"layers": 24, "dims": [1024]}}, "batch": 64}
    merged = runlane.init(
        fork_run_id=parent.id, fork_step=10, config=child_config, tags=["shared", "new"], dir=store_dir
    )
    merged.finish()
    assert merged.config == {
        "model": {"encoder": {"layers": 24, "act": "gelu", "dims": [1024]}, "dropout": 0.1},
        "lr": 0.1,
        "batch": 64,
    }
    assert merged.tags == ("shared", "new")  # inherit_tags defaults to False

    alone = runlane.init(
        fork_run_id=parent.id,
        fork_step=10,
        config=child_config,
        tags=["shared", "new"],
        inherit_config=False,
        inherit_tags=True,
        dir=store_dir,
    )
    alone.finish()
    assert alone.config == child_config
    assert alone.tags == ("base", "shared", "new")
    inherited = runlane.init(fork_run_id=parent.id, fork_step=10, dir=store_dir)
    inherited.finish()
    assert inherited.config == parent_config
    with runlane.Api(store_dir) as api:
        assert api.run(alone.id).tags == ("base", "shared", "new")
        assert api.run(merged.id).config == merged.config


def test_config_and_tags_come_from_the_resolved_parent(store_dir: Path, abc: tuple[int, int, int]) -> None:
    _a, b, c = abc
    with runlane.Api(store_dir) as api:
        assert api.run(b).config == {"lr": 0.1}  # B inherited from A
    updated = runlane.init(run_id=b, resume=True, dir=store_dir)
    updated.update_config({"lr": 0.5})
    updated.finish()
    from_a = runlane.init(fork_run_id=c, fork_step=20, inherit_tags=True, dir=store_dir)
    from_b = runlane.init(fork_run_id=c, fork_step=120, dir=store_dir)
    from_a.finish()
    from_b.finish()
    assert from_a.config == {"lr": 0.1}
    assert from_a.tags == ("a",)
    assert from_b.config == {"lr": 0.5}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fork_run_id": "LIN-1"}, ValueError, "fork_run_id needs fork_step"),
        ({"fork_step": 10}, ValueError, "fork_step needs fork_run_id"),
        ({"fork_run_id": "LIN-1", "fork_step": 101}, ValueError, "choose a step from 0 to 100"),
        ({"fork_run_id": "LIN-1", "fork_step": -1}, ValueError, "choose a step from 0 to 100"),
        ({"fork_run_id": "LIN-1", "fork_step": 5.0}, ValueError, "fork_step must be an integer"),
        ({"fork_run_id": "LIN-1", "fork_step": True}, ValueError, "fork_step must be an integer"),
        ({"fork_run_id": "LIN-99", "fork_step": 5}, runlane.RunNotFoundError, "'LIN-99'"),
        ({"fork_run_id": 12345, "fork_step": 5}, runlane.RunNotFoundError, "12345"),
        ({"fork_run_id": "LIN-1", "fork_step": 5, "run_id": 1, "resume": True}, ValueError, "not both"),
        ({"fork_run_id": "LIN-1", "fork_step": 5, "inherit_tags": "yes"}, TypeError, "inherit_tags"),
    ],
)
def test_bad_fork_requests_are_refused_and_create_nothing(
    store_dir: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    parent = runlane.init(project="lin", dir=store_dir)
    _log_range(parent, range(101))
    parent.finish()
    with pytest.raises(error, match=message):
        runlane.init(dir=store_dir, **kwargs)  # type: ignore[arg-type]
    with runlane.Api(store_dir) as api:
        assert [r.id for r in api.runs()] == [parent.id]


def test_a_run_without_metrics_cannot_be_forked(store_dir: Path) -> None:
    empty = runlane.init(project="lin", dir=store_dir)
    empty.finish()
    with pytest.raises(ValueError, match="has no logged metrics"):
        runlane.init(fork_run_id=empty.id, fork_step=0, dir=store_dir)


def test_the_documented_example_continues_at_fork_step_plus_one(store_dir: Path) -> None:
    parent = runlane.init(project="my-project", name="MMP-42-like", config={"lr": 0.01}, dir=store_dir)
    for step in range(1000):
        parent.log({"loss": 1.0, "lr": 0.01}, step=step)
    parent.finish()
    # The example from the Pluto forking page, with only the import changed.
    run = runlane.init(
        project="my-project",
        name="lr-sweep-v2",
        fork_run_id=parent.display_id,
        fork_step=500,
        inherit_config=True,
        inherit_tags=False,
        config={"lr": 0.001},
        dir=store_dir,
    )
    print(f"Forked from run {run.fork_run_id} at step {run.fork_step}")
    for _step in range(500, 1000):
        run.log({"loss": 0.4, "lr": 0.001})
    run.finish()
    with runlane.Api(store_dir) as api:
        own = api.history(run.id, "loss")
        stitched = api.history(run.id, "loss", stitched=True)
    assert own.steps == list(range(501, 1001))
    assert stitched.steps == list(range(1001))
    assert stitched.values == [1.0] * 501 + [0.4] * 500
    assert run.config == {"lr": 0.001}


def test_resuming_a_fork_that_logged_nothing_continues_after_its_fork_step(store_dir: Path) -> None:
    parent = runlane.init(project="p", dir=store_dir)
    _log_range(parent, range(20))
    parent.finish()
    fork = runlane.init(fork_run_id=parent.id, fork_step=10, dir=store_dir)
    fork.close()
    again = runlane.init(run_id=fork.id, resume=True, dir=store_dir)
    assert again.step == 11
    again.finish()


def test_downsampling_keeps_a_single_spike_and_counts_every_point(store_dir: Path) -> None:
    run = runlane.init(project="spiky", dir=store_dir)
    for step in range(100_000):
        run.log({"loss": 1000.0 if step == 53_217 else 1.0 + (step % 7) * 0.01})
    run.finish()
    with runlane.Api(store_dir) as api:
        buckets = api.history(run.id, "loss", buckets=1000)
    assert len(buckets) == 1000
    assert sum(b.count for b in buckets) == 100_000
    spiked = [b for b in buckets if b.start <= 53_217 <= b.end]
    assert len(spiked) == 1
    assert spiked[0].max == 1000.0
    assert max(b.max for b in buckets if b is not spiked[0]) < 2  # type: ignore[type-var]
    assert [b.start for b in buckets] == sorted(b.start for b in buckets)
    assert buckets[0].start == 0
    assert buckets[-1].end == 99_999


def _expected_buckets(points: list[tuple[int, float, int]], count: int, low: int, high: int) -> list[tuple]:
    """Buckets computed the slow, obvious way from raw points."""
    width = max(1, -(-(high - low + 1) // count))
    groups: dict[int, list[tuple[int, float, int]]] = {}
    for step, value, run_id in points:
        groups.setdefault((step - low) // width, []).append((step, value, run_id))
    out = []
    for _, members in sorted(groups.items()):
        finite = [v for _, v, _ in members if not math.isnan(v)]
        out.append(
            (
                members[0][0],
                members[-1][0],
                min(finite) if finite else None,
                max(finite) if finite else None,
                members[-1][1],
                len(members),
                members[-1][2],
            )
        )
    return out


def _as_tuples(buckets: list[runlane.Bucket]) -> list[tuple]:
    return [(b.start, b.end, b.min, b.max, b.last, b.count, b.run_id) for b in buckets]


def test_range_buckets_and_stitching_together_match_the_raw_points(store_dir: Path, abc: tuple[int, int, int]) -> None:
    _a, b, c = abc
    with runlane.Api(store_dir) as api:
        raw = api.history(c, "loss", stitched=True)
        points = list(zip(raw.steps, raw.values, raw.run_ids, strict=True))
        for start, end, count in [(20, 230, 7), (0, 250, 1000), (45, 155, 3), (None, None, 10), (151, None, 4)]:
            got = api.history(c, "loss", stitched=True, start=start, end=end, buckets=count)
            low = 0 if start is None else start
            high = 250 if end is None else end
            inside = [p for p in points if low <= p[0] <= high]
            assert _as_tuples(got) == _expected_buckets(inside, count, low, high), (start, end, count)
        plain = api.history(b, "loss", start=60, end=80, buckets=5)
        full_b = api.history(b, "loss")
        inside_b = [(s, v, b) for s, v in zip(full_b.steps, full_b.values, strict=True) if 60 <= s <= 80]
        assert _as_tuples(plain) == _expected_buckets(inside_b, 5, 60, 80)


def test_non_finite_values_never_poison_a_bucket_or_become_zero(store_dir: Path) -> None:
    run = runlane.init(project="nan", dir=store_dir)
    values = [1.0, math.nan, 3.0, math.inf, -2.0, math.nan, math.nan, math.nan, 5.0, -math.inf]
    for step, value in enumerate(values):
        run.log({"x": value}, step=step)
    run.finish()
    with runlane.Api(store_dir) as api:
        buckets = api.history(run.id, "x", buckets=5)  # two steps per bucket
    assert [(b.min, b.max, b.count) for b in buckets] == [
        (1.0, 1.0, 2),
        (3.0, math.inf, 2),
        (-2.0, -2.0, 2),
        (None, None, 2),
        (-math.inf, 5.0, 2),
    ]
    assert math.isnan(buckets[0].last)
    assert buckets[1].last == math.inf
    assert math.isnan(buckets[3].last)


def test_bad_history_arguments(store_dir: Path) -> None:
    run = runlane.init(project="p", dir=store_dir)
    run.log({"x": 1.0})
    run.finish()
    with runlane.Api(store_dir) as api:
        for kwargs, message in [
            ({"buckets": 0}, "buckets must be a positive integer"),
            ({"buckets": 2.5}, "buckets must be a positive integer"),
            ({"start": 10, "end": 5}, "start \\(10\\) is after end \\(5\\)"),
            ({"start": "0"}, "start must be an integer"),
            ({"end": 2**70}, "outside the range"),
        ]:
            with pytest.raises(ValueError, match=message):
                api.history(run.id, "x", **kwargs)  # type: ignore[call-overload]
        assert api.history(run.id, "missing", buckets=10) == []


def test_a_parent_with_forks_cannot_be_deleted(store_dir: Path, abc: tuple[int, int, int]) -> None:
    a, b, c = abc
    with runlane.Api(store_dir) as api:
        with pytest.raises(runlane.DeletionRefusedError, match="has forks \\(LIN-2 at step 50\\)"):
            api.delete_run(a)
        with pytest.raises(runlane.DeletionRefusedError, match="LIN-3 at step 150"):
            api.delete_run(b)
        api.delete_run(c)
        with pytest.raises(runlane.RunNotFoundError):
            api.run(c)
        api.delete_run(b)
        api.delete_run(a)
        assert api.runs() == []


def test_a_run_being_written_or_with_nested_runs_cannot_be_deleted(store_dir: Path) -> None:
    outer = runlane.init(project="p", dir=store_dir)
    inner = runlane.init(project="p", parent_run_id=outer.id, dir=store_dir)
    with runlane.Api(store_dir) as api:
        with pytest.raises(runlane.DeletionRefusedError, match="nested runs"):
            api.delete_run(outer.id)
        with pytest.raises(runlane.DeletionRefusedError, match="still writing to it"):
            api.delete_run(inner.id)
    inner.finish()
    outer.finish()


def test_cli_show_prints_lineage_and_delete_refuses_parents(store_dir: Path, abc: tuple[int, int, int]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runlane", *args, "--dir", str(store_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    shown = cli("show", "LIN-3").stdout
    assert "lineage   LIN-1 -> LIN-2 @50 -> [LIN-3 @150]" in shown
    assert "fork      LIN-2 at step 50" in cli("show", "LIN-1").stdout
    refused = cli("delete", "LIN-1", "--yes")
    assert refused.returncode == 1
    assert "has forks (LIN-2 at step 50)" in refused.stderr
    unconfirmed = cli("delete", "LIN-3")
    assert unconfirmed.returncode == 1
    assert "pass --yes" in unconfirmed.stderr
    assert cli("delete", "LIN-3", "--yes").stdout.strip() == "deleted LIN-3"


def test_a_fork_inherits_no_system_metrics_and_they_never_count_as_steps(store_dir: Path) -> None:
    import time

    only_system = runlane.init(project="sys", system_metrics_interval=0.05, dir=store_dir)
    parent = runlane.init(project="sys", system_metrics_interval=0.05, dir=store_dir)
    _log_range(parent, range(10))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with runlane.Api(store_dir) as api:
            if api.system_metrics(parent.id) and api.system_metrics(only_system.id):
                break
        time.sleep(0.1)
    only_system.finish()
    parent.finish()
    with pytest.raises(ValueError, match="has no logged metrics"):
        runlane.init(fork_run_id=only_system.id, fork_step=0, dir=store_dir)
    with pytest.raises(ValueError, match="choose a step from 0 to 9"):
        runlane.init(fork_run_id=parent.id, fork_step=10, dir=store_dir)
    fork = runlane.init(fork_run_id=parent.id, fork_step=5, system_metrics_interval=None, dir=store_dir)
    fork.finish()
    with runlane.Api(store_dir) as api:
        assert "sys/cpu_percent" in api.system_metrics(parent.id)
        assert api.system_metrics(fork.id) == {}
        assert api.logs(fork.id) == []
