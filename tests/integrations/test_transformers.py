"""runlane.integrations.transformers: a real Hugging Face Trainer logs to runlane through RunlaneCallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import Trainer, TrainerCallback

import runlane
from runlane.integrations.transformers import RunlaneCallback

from ..conftest import run_script, script_env
from .models import TokenDataset, tiny_bert, training_args

REPO = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = 4  # 32 samples in batches of 8


def train(callback: TrainerCallback, output_dir: Path, *extra: TrainerCallback, **overrides: object) -> Trainer:
    trainer = Trainer(
        model=tiny_bert(),
        args=training_args(str(output_dir), **overrides),
        train_dataset=TokenDataset(32, seed=0),
        eval_dataset=TokenDataset(16, seed=1),
        callbacks=[callback, *extra],
    )
    trainer.train()
    return trainer


def steps(api: runlane.Api, ref: int | str, key: str) -> list[int]:
    return [point.step for point in api.history(ref, key)]


def test_trainer_with_evaluation_records_config_metrics_best_checkpoint_and_the_end(
    store_dir: Path, tmp_path: Path
) -> None:
    callback = RunlaneCallback(project="nlp/bert", tags=["tiny"], dir=store_dir, system_metrics_interval=None)
    train(callback, tmp_path / "out")
    assert isinstance(callback.run, runlane.Run)

    api = runlane.Api(dir=store_dir)
    info = api.run(callback.run.id)
    assert (info.project, info.name, info.tags, info.status) == ("nlp/bert", "tiny-bert", ("tiny",), "finished")
    args = info.config["training_args"]
    assert (args["learning_rate"], args["num_train_epochs"], args["per_device_train_batch_size"]) == (1e-3, 2, 8)
    model = info.config["model_config"]
    assert (model["num_hidden_layers"], model["hidden_size"], model["vocab_size"]) == (2, 16, 64)
    # One step axis, the trainer's global step: a training log every 2 steps, an evaluation per epoch.
    assert steps(api, info.id, "train/loss") == [2, 4, 6, 8]
    assert steps(api, info.id, "train/learning_rate") == [2, 4, 6, 8]
    assert steps(api, info.id, "eval/loss") == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert "eval/runtime" in info.metrics

    summary = info.summary
    assert {"train_runtime", "train_samples_per_second", "train_loss", "total_flos"} <= set(summary)
    assert (summary["global_step"], summary["epoch"], summary["metric_for_best_model"]) == (8, 2.0, "eval_loss")
    eval_losses = [p.value for p in api.history(info.id, "eval/loss")]
    best = eval_losses.index(min(eval_losses))
    assert summary["best_checkpoint"] == str(tmp_path / "out" / f"checkpoint-{STEPS_PER_EPOCH * (best + 1)}")
    assert summary["best_metric"] == pytest.approx(min(eval_losses))
    assert summary["eval/loss"] == pytest.approx(eval_losses[-1])  # final metrics
    assert summary["checkpoint"] == {"path": str(tmp_path / "out" / "checkpoint-8"), "global_step": 8}
    saved = [line.text for line in api.logs(info.id) if line.text.startswith("checkpoint saved")]
    assert saved == [f"checkpoint saved: {tmp_path / 'out' / f'checkpoint-{s}'} (global step {s})" for s in (4, 8)]


def test_an_evaluation_after_training_reopens_the_run_at_the_last_step(store_dir: Path, tmp_path: Path) -> None:
    callback = RunlaneCallback(project="nlp", dir=store_dir, system_metrics_interval=None)
    trainer = train(callback, tmp_path / "out", save_strategy="no", eval_strategy="no", metric_for_best_model=None)
    trainer.evaluate(metric_key_prefix="test")
    assert isinstance(callback.run, runlane.Run)

    api = runlane.Api(dir=store_dir)
    info = api.run(callback.run.id)
    assert info.status == "finished"
    assert steps(api, info.id, "test/loss") == [8]
    assert [r.id for r in api.runs(project="nlp")] == [info.id]


def test_a_run_already_started_is_attached_to_and_left_running(store_dir: Path, tmp_path: Path) -> None:
    run = runlane.init(project="nlp", name="mine", config={"sweep": 3}, dir=store_dir, system_metrics_interval=None)
    assert isinstance(run, runlane.Run)
    train(RunlaneCallback(run=run), tmp_path / "out", save_strategy="no", load_best_model_at_end=False)
    run.log({"after/score": 1.0}, step=9)  # still the user's to write to and to end
    run.finish()

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="nlp")
    assert (info.id, info.name, info.status) == (run.id, "mine", "finished")
    assert info.config["sweep"] == 3
    assert info.config["model_config"]["num_hidden_layers"] == 2
    assert steps(api, info.id, "eval/loss") == [4, 8]


def test_a_resumed_training_continues_its_run_on_the_same_steps(store_dir: Path, tmp_path: Path) -> None:
    first = RunlaneCallback(project="nlp", dir=store_dir, system_metrics_interval=None)
    train(first, tmp_path / "out", num_train_epochs=1)
    assert isinstance(first.run, runlane.Run)

    again = RunlaneCallback(run_id=first.run.display_id, dir=store_dir, system_metrics_interval=None)
    trainer = Trainer(
        model=tiny_bert(),
        args=training_args(str(tmp_path / "out")),
        train_dataset=TokenDataset(32, seed=0),
        eval_dataset=TokenDataset(16, seed=1),
        callbacks=[again],
    )
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="nlp")
    assert info.status == "finished"
    assert steps(api, info.id, "train/loss") == [2, 4, 6, 8]
    assert steps(api, info.id, "eval/loss") == [4, 8]
    assert info.summary["global_step"] == 8


FAILING = """
import sys
sys.path.insert(0, {repo!r})
from transformers import Trainer, TrainerCallback
from runlane.integrations.transformers import RunlaneCallback
from tests.integrations.models import TokenDataset, tiny_bert, training_args


class Explode(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise RuntimeError("loss exploded")


callback = RunlaneCallback(project="nlp", system_metrics_interval=None)
trainer = Trainer(
    model=tiny_bert(),
    args=training_args({out!r}, logging_steps=1, eval_strategy="no", save_strategy="no", metric_for_best_model=None),
    train_dataset=TokenDataset(32, seed=0),
    callbacks=[callback, Explode()],
)
trainer.train()
"""


def test_a_training_that_raises_ends_the_run_failed(store_dir: Path, tmp_path: Path) -> None:
    env = script_env(store_dir, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = run_script(FAILING.format(repo=str(REPO), out=str(tmp_path / "out")), store_dir, timeout=180, env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "RuntimeError: loss exploded" in result.stderr

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="nlp")
    assert info.status == "failed"
    assert "RuntimeError: loss exploded" in (info.status_reason or "")
    assert steps(api, info.id, "train/loss") == [1, 2]  # step 3 raised before the trainer logged it
