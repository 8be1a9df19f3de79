"""runlane.compat.runicorn: the Runicorn page's examples run with only the import line changed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runlane
import runlane.compat.runicorn as rn

from .conftest import script_env

IMPORT = "import runlane.compat.runicorn as rn"


def _run(code: str, store: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=script_env(store),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_init_example_with_storage_and_alias(store_dir: Path, tmp_path: Path) -> None:
    _run(
        f"""
        {IMPORT}
        run = rn.init(
        path="cv/resnet50/baseline",
        storage="E:\\\\RunicornData",
        alias="trial-01",
        capture_env=False,
        snapshot_code=False,
        workspace_root=None,
        snapshot_format="zip",
        force_snapshot=False,
        capture_console=False,
        tqdm_mode="smart",
        )
        """,
        store_dir,
        tmp_path,
    )
    storage = tmp_path / "E:\\RunicornData"  # on Linux, a directory with that name in the working directory
    with runlane.Api(storage) as api:
        [run] = api.runs()
    assert (run.project, run.alias, run.status) == ("cv/resnet50/baseline", "trial-01", "finished")
    assert not store_dir.exists()  # storage chose the store for this run


def test_path_rules(store_dir: Path, tmp_path: Path) -> None:
    _run(
        f"""
        {IMPORT}
        rn.init(path="cv/detection/yolo")
        rn.init(path="research/ablation/seed-42")
        rn.init(path="/") # root-level runs
        rn.init()
        rn.init(path="win\\\\style\\\\path")
        """,
        store_dir,
        tmp_path,
    )
    with runlane.Api(store_dir) as api:
        projects = {p.name for p in api.projects()}
    assert projects == {"cv/detection/yolo", "research/ablation/seed-42", "root", "default", "win/style/path"}
    for bad in ("../escape", "a/../b", "bad\tpath", "a//b"):
        with pytest.raises(ValueError, match="project name"):
            rn.init(path=bad, storage=str(store_dir))


def test_log_examples_with_explicit_steps_and_stages(store_dir: Path, tmp_path: Path) -> None:
    _run(
        f"""
        {IMPORT}
        run = rn.init(path="logging")
        run.log({{"loss": 0.42, "acc": 0.88}}, step=1, stage="epoch_1")
        run.log(val_loss=0.39, val_acc=0.90, step=2, stage="epoch_2")
        run.log({{"loss": 0.8}}, step=50, stage="epoch_1")
        run.log({{"loss": 0.4}}, step=100, stage="epoch_2")
        run.log({{"val_loss": 0.35}}, step=150, stage="epoch_3")
        run.finish()
        """,
        store_dir,
        tmp_path,
    )
    with runlane.Api(store_dir) as api:
        run = api.runs(project="logging")[0]
        loss = api.history(run.id, "loss")
        val_loss = api.history(run.id, "val_loss")
    assert [(p.step, p.value, p.stage) for p in loss] == [
        (1, 0.42, "epoch_1"),
        (50, 0.8, "epoch_1"),
        (100, 0.4, "epoch_2"),
    ]
    assert [(p.step, p.value, p.stage) for p in val_loss] == [(2, 0.39, "epoch_2"), (150, 0.35, "epoch_3")]
    assert run.metrics["val_acc"].last_value == 0.90


def test_steps_count_from_one_and_explicit_steps_move_the_counter(store_dir: Path) -> None:
    run = rn.init(path="steps", storage=str(store_dir))
    run.log({"x": 1.0})
    run.log({"x": 2.0})
    run.log({"x": 3.0}, step=10)
    run.log({"x": 4.0})
    run.finish()
    with runlane.Api(store_dir) as api:
        assert api.history(run.id, "x").steps == [1, 2, 10, 11]


def test_train_eval_alignment_pattern(store_dir: Path, tmp_path: Path) -> None:
    _run(
        f"""
        {IMPORT}
        run = rn.init(path="aligned")
        total_steps, current_epoch = 30000, 1
        def train_step():
            return 0.5, 0.8
        def evaluate():
            return 0.9

        last_val_acc = 0.0
        for step in range(1, total_steps + 1):
            train_loss, train_acc = train_step()
            if step % 10000 == 0:
                last_val_acc = evaluate()
            run.log({{
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_acc": last_val_acc,
            }}, step=step, stage=f"epoch_{{current_epoch}}")
        run.finish()
        """,
        store_dir,
        tmp_path,
    )
    with runlane.Api(store_dir) as api:
        run = api.runs(project="aligned")[0]
        val = api.history(run.id, "val_acc")
        assert val.steps == list(range(1, 30001))
        assert val.values[9998:10000] == [0.0, 0.9]
        assert set(api.history(run.id, "train_loss").stages) == {"epoch_1"}


def test_primary_metric_log_text_summary_and_finish_statuses(store_dir: Path) -> None:
    run = rn.init(path="scores", storage=str(store_dir))
    run.set_primary_metric("val_loss", mode="min")
    for value in (0.9, 0.3, 0.5):
        run.log(val_loss=value)
    run.log_text("checkpoint saved\n\nsecond note")
    run.summary({"best_ckpt": "ckpt-2.pt"})
    run.summary({"final_acc": 0.93})
    run.finish()
    assert run.status == "finished"
    interrupted = rn.init(path="scores", storage=str(store_dir))
    interrupted.finish("interrupted")
    assert interrupted.status == "interrupted"
    failed = rn.init(path="scores", storage=str(store_dir))
    failed.finish("failed")
    with runlane.Api(store_dir) as api:
        info = api.run(run.id)
        logs = [(line.stream, line.text) for line in api.logs(run.id)]
        assert api.run(interrupted.id).status == "killed"
        assert api.run(failed.id).status == "failed"
    assert (info.best_value, info.best_step) == (0.3, 2)
    assert info.summary == {
        "best_ckpt": "ckpt-2.pt",
        "final_acc": 0.93,
        "best_metric_name": "val_loss",
        "best_metric_mode": "min",
        "best_metric_value": 0.3,
        "best_metric_step": 2,
    }
    assert logs == [("log", "checkpoint saved"), ("log", ""), ("log", "second note")]


def test_with_block_and_post_finish_writes(store_dir: Path) -> None:
    with rn.init(path="blocks", storage=str(store_dir)) as ok:
        ok.log(loss=1.0)
    with pytest.raises(RuntimeError), rn.init(path="blocks", storage=str(store_dir)) as bad:
        raise RuntimeError("boom")
    assert (ok.status, bad.status) == ("finished", "failed")
    with pytest.raises(runlane.RunClosedError):
        ok.log(loss=2.0)


def test_run_id_names_a_new_run_and_a_taken_id_is_an_error(store_dir: Path) -> None:
    first = rn.init(path="ids", run_id="import_2025_01", storage=str(store_dir))
    first.finish()
    assert first.id == "import_2025_01"
    with pytest.raises(ValueError, match="already exists"):
        rn.init(path="ids", run_id="import_2025_01", storage=str(store_dir))
    with runlane.Api(store_dir) as api:
        assert len(api.runs(project="ids")) == 1


def test_disabled_tracking_example(store_dir: Path, tmp_path: Path) -> None:
    result = _run(
        f"""
        {IMPORT}
        rn.set_enabled(False)
        run = rn.init(path="debug")
        run.log({{"loss": 0.1}}) # no-op
        run.finish() # no-op
        print(type(run).__name__)
        """,
        store_dir,
        tmp_path,
    )
    assert result.stdout.strip() == "NoOpRun"
    assert not store_dir.exists()


FULL_EXAMPLE = """
import math
import torch
import torch.nn as nn
import torch.optim as optim
from PIL import Image, ImageDraw
import runlane.compat.runicorn as rn
run = rn.init(
path="cv/resnet50/baseline",
alias="seed-42",
capture_console=True,
)
model = nn.Sequential(
nn.Linear(128, 64),
nn.ReLU(),
nn.Linear(64, 10),
)
optimizer = optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()
run.set_primary_metric("val_acc", mode="max")
run.log_config(extra={"optimizer": "adam", "lr": 1e-3, "epochs": 3})
latest_val_acc = 0.0
for epoch in range(1, 4):
    model.train()
    epoch_acc_sum = 0.0
    epoch_steps = 0
    dataloader = [
    (torch.randn(32, 128), torch.randint(0, 10, (32,)))
    for _ in range(5)
    ]
    for batch_idx, (inputs, targets) in enumerate(dataloader, start=1):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        curve_step = (epoch - 1) * len(dataloader) + batch_idx
        simulated_train_loss = 1.6 * math.exp(-0.18 * curve_step) + 0.04 * torch.rand(1).item()
        batch_acc = min(0.95, 0.35 + 0.08 * math.log1p(curve_step) + 0.02 * torch.rand(1).item())
        epoch_acc_sum += batch_acc
        epoch_steps += 1
        print(f"train_loss: {simulated_train_loss:.4f}")
        run.log({
        "train_loss": simulated_train_loss,
        "train_acc": batch_acc,
        "val_acc": latest_val_acc,
        }, stage=f"epoch_{epoch}")
    train_acc = epoch_acc_sum / epoch_steps
    latest_val_acc = 0.70 + 0.05 * epoch
    preview = Image.new("RGB", (320, 160), "white")
    draw = ImageDraw.Draw(preview)
    draw.rounded_rectangle((10, 10, 310, 150), radius=12, outline="navy", width=3)
    draw.text((24, 28), f"Epoch {epoch}", fill="black")
    draw.text((24, 68), f"train_acc={train_acc:.3f}", fill="green")
    draw.text((24, 102), f"val_acc={latest_val_acc:.3f}", fill="purple")
    run.log_image(
    "epoch_preview",
    preview,
    caption=f"Metrics snapshot for epoch {epoch}",
    )
run.summary({
"epochs": 3,
"final_train_acc": train_acc,
"final_val_acc": latest_val_acc,
"final_note": "baseline complete",
})
run.finish()
"""


def test_full_lifecycle_example(store_dir: Path, tmp_path: Path) -> None:
    # The page's example, indented as Python needs it (the page lost its indentation), import changed.
    result = _run(FULL_EXAMPLE, store_dir, tmp_path)
    printed = [line for line in result.stdout.splitlines() if line.startswith("train_loss: ")]
    assert len(printed) == 15  # still shown in the terminal
    with runlane.Api(store_dir) as api:
        [run] = api.runs(project="cv/resnet50/baseline")
        train_loss = api.history(run.id, "train_loss")
        val_acc = api.history(run.id, "val_acc")
        logs = [line.text for line in api.logs(run.id) if line.stream == "stdout"]
        images = api.images(run.id, "epoch_preview")
        sizes = [api.open_image(image).size for image in images]
    assert (run.status, run.alias) == ("finished", "seed-42")
    assert train_loss.steps == list(range(1, 16))  # Runicorn counts steps from 1
    assert train_loss.stages == [f"epoch_{e}" for e in (1, 2, 3) for _ in range(5)]
    assert val_acc.values == [0.0] * 5 + [0.70 + 0.05 * 1] * 5 + [0.70 + 0.05 * 2] * 5
    assert (run.best_value, run.best_step) == (0.70 + 0.05 * 2, 11)
    assert run.config == {"extra": {"optimizer": "adam", "lr": 1e-3, "epochs": 3}}
    assert run.summary["final_note"] == "baseline complete"
    assert run.summary["final_val_acc"] == pytest.approx(0.85)
    assert run.summary["best_metric_value"] == run.best_value
    assert logs == printed  # captured console lines, in order
    assert [(i.step, i.caption) for i in images] == [
        (5, "Metrics snapshot for epoch 1"),
        (10, "Metrics snapshot for epoch 2"),
        (15, "Metrics snapshot for epoch 3"),
    ]
    assert sizes == [(320, 160)] * 3


def test_log_config_with_args_and_files(store_dir: Path) -> None:
    import argparse

    run = rn.init(path="configs", storage=str(store_dir))
    run.log_config(args=argparse.Namespace(lr=0.1, depth=4), config_files=[Path("conf/base.yaml")])
    run.finish()
    with runlane.Api(store_dir) as api:
        assert api.run(run.native.id).config == {"args": {"lr": 0.1, "depth": 4}, "config_files": ["conf/base.yaml"]}
