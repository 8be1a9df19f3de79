"""runlane.integrations.lightning: a real Lightning Trainer logs to runlane through RunlaneLogger."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import runlane
from runlane.integrations.lightning import RunlaneLogger

from ..conftest import script_env

pytestmark = [
    # Lightning's own code trips a deprecation warning of the torch it runs on; not ours to fix.
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
    # The tiny loaders have no worker processes, on purpose.
    pytest.mark.filterwarnings("ignore:The '\\w+_dataloader' does not have many workers"),
]

BATCHES_PER_EPOCH = 4  # 32 samples in batches of 8


class Regressor(LightningModule):
    def __init__(self, cfg: Any, fail_at_step: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(cfg)
        self.net = nn.Sequential(nn.Linear(4, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1))
        self.fail_at_step = fail_at_step

    def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
        if self.fail_at_step is not None and self.global_step == self.fail_at_step:
            raise RuntimeError("loss exploded")
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: list[torch.Tensor], index: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch: list[torch.Tensor], index: int) -> None:
        x, y = batch
        self.log("test/loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["optim"]["lr"])


def loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 4, generator=generator), torch.randn(32, 1, generator=generator))
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=16)


def config() -> Any:
    # What Hydra hands a training script: an OmegaConf config, with an interpolation.
    return OmegaConf.create({"hidden": 8, "optim": {"lr": 0.05, "name": "sgd"}, "width": "${hidden}"})


def fit(
    logger: RunlaneLogger, root: Path, epochs: int, *, ckpt_path: str | None = None, fail_at_step: int | None = None
) -> Trainer:
    trainer = Trainer(
        max_epochs=epochs,
        logger=logger,
        log_every_n_steps=1,
        accelerator="cpu",
        devices=1,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ModelCheckpoint(monitor="val/loss", save_last=True, save_top_k=-1)],  # keep every epoch's
    )
    train, val = loaders()
    # Our own checkpoints, holding an OmegaConf config: trusted, so not limited to plain tensors.
    trainer.fit(Regressor(config(), fail_at_step), train, val, ckpt_path=ckpt_path, weights_only=False)
    return trainer


def steps(api: runlane.Api, ref: int | str, key: str) -> list[int]:
    return [point.step for point in api.history(ref, key)]


def test_two_epochs_record_config_metrics_checkpoints_and_the_end(store_dir: Path, tmp_path: Path) -> None:
    logger = RunlaneLogger(project="lit", name="baseline", tags=["cpu"], dir=str(store_dir), config={"seed": 0})
    assert isinstance(logger, Logger)
    fit(logger, tmp_path, epochs=2)

    api = runlane.Api(dir=store_dir)
    info = api.run(str(logger.version))
    assert (info.project, info.name, info.tags, info.status) == ("lit", "baseline", ("cpu",), "finished")
    assert logger.name == "lit"
    assert info.config == {"seed": 0, "hidden": 8, "optim": {"lr": 0.05, "name": "sgd"}, "width": 8}
    # Lightning's global step: one per optimizer step, validation at the last step of each epoch.
    assert steps(api, info.id, "train/loss") == list(range(2 * BATCHES_PER_EPOCH))
    assert steps(api, info.id, "val/loss") == [3, 7]
    assert [p.value for p in api.history(info.id, "epoch")] == [0.0] * 4 + [1.0] * 4

    checkpoint = info.summary["checkpoint"]
    ckpt_dir = tmp_path / "lit" / info.display_id / "checkpoints"
    assert checkpoint["path"] == str(ckpt_dir / "last.ckpt")
    assert (checkpoint["global_step"], checkpoint["fork_step"], checkpoint["monitor"]) == (8, 7, "val/loss")
    val_losses = [p.value for p in api.history(info.id, "val/loss")]
    best_epoch = val_losses.index(min(val_losses))
    assert checkpoint["best_path"] == str(ckpt_dir / f"epoch={best_epoch}-step={4 * (best_epoch + 1)}.ckpt")
    assert checkpoint["best_score"] == pytest.approx(min(val_losses))
    saved = [line.text for line in api.logs(info.id) if line.text.startswith("checkpoint saved")]
    assert saved[0].startswith(f"checkpoint saved: {ckpt_dir / 'epoch=0-step=4.ckpt'} (global step 4, val/loss=")
    assert len(saved) == 4  # the best-k file and last.ckpt, after each epoch


# The resumed run keeps its checkpoints where the first job left them, as Lightning points out.
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_a_fit_resumed_from_a_checkpoint_continues_its_run(store_dir: Path, tmp_path: Path) -> None:
    first = RunlaneLogger(project="lit", dir=str(store_dir))
    fit(first, tmp_path, epochs=2)
    run_ref = str(first.version)
    last = runlane.Api(dir=store_dir).run(run_ref).summary["checkpoint"]["path"]

    # The restarted job: a new process would build the logger the same way.
    again = RunlaneLogger(run_id=run_ref, dir=str(store_dir))
    fit(again, tmp_path, epochs=3, ckpt_path=last)

    api = runlane.Api(dir=store_dir)
    assert again.version == run_ref
    assert [run.display_id for run in api.runs(project="lit")] == [run_ref]
    info = api.run(run_ref)
    assert info.status == "finished"
    assert steps(api, run_ref, "train/loss") == list(range(3 * BATCHES_PER_EPOCH))
    assert steps(api, run_ref, "val/loss") == [3, 7, 11]


# A fork is a new run with its own checkpoint directory, as Lightning points out.
@pytest.mark.filterwarnings("ignore:The dirpath has changed from")
def test_a_fit_from_a_checkpoint_can_fork_the_run_at_it(store_dir: Path, tmp_path: Path) -> None:
    parent = RunlaneLogger(project="lit", dir=str(store_dir))
    fit(parent, tmp_path / "parent", epochs=2)
    api = runlane.Api(dir=store_dir)
    first_ckpt = tmp_path / "parent" / "lit" / str(parent.version) / "checkpoints" / "epoch=0-step=4.ckpt"
    fork_step = 3  # the checkpoint at global step 4 holds what the parent had logged up to step 3

    child = RunlaneLogger(fork_run_id=parent.version, fork_step=fork_step, name="branch", dir=str(store_dir))
    fit(child, tmp_path / "child", epochs=3, ckpt_path=str(first_ckpt))

    api = runlane.Api(dir=store_dir)
    info = api.run(str(child.version))
    assert (info.fork_run_id, info.fork_step, info.status, info.project) == (
        api.run(str(parent.version)).id,
        fork_step,
        "finished",
        "lit",
    )
    assert info.config["optim"] == {"lr": 0.05, "name": "sgd"}  # inherited, then logged again
    assert steps(api, info.id, "train/loss") == list(range(4, 3 * BATCHES_PER_EPOCH))  # its own points only
    stitched = api.history(info.id, "train/loss", stitched=True)
    assert [p.step for p in stitched] == list(range(3 * BATCHES_PER_EPOCH))
    assert {p.run_id for p in stitched if p.step <= fork_step} == {info.fork_run_id}


def test_a_test_after_fit_reopens_the_run_and_ends_it_again(store_dir: Path, tmp_path: Path) -> None:
    logger = RunlaneLogger(project="lit", dir=store_dir)
    trainer = fit(logger, tmp_path, epochs=1)
    trainer.test(ckpt_path="last", dataloaders=loaders()[1], weights_only=False, verbose=False)

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="lit")
    assert info.status == "finished"
    assert steps(api, info.id, "test/loss") == [BATCHES_PER_EPOCH]
    assert steps(api, info.id, "train/loss") == list(range(BATCHES_PER_EPOCH))


def test_a_training_that_raises_ends_the_run_failed_with_the_error(store_dir: Path, tmp_path: Path) -> None:
    logger = RunlaneLogger(project="lit", dir=str(store_dir))
    with pytest.raises(RuntimeError, match="loss exploded"):
        fit(logger, tmp_path, epochs=2, fail_at_step=5)

    api = runlane.Api(dir=store_dir)
    info = api.run(str(logger.version))
    assert info.status == "failed"
    assert steps(api, info.id, "train/loss") == [0, 1, 2, 3, 4]
    assert "training stopped by RuntimeError: loss exploded" in [line.text for line in api.logs(info.id)]


def test_hyperparameters_from_a_namespace_or_a_dict_of_any_objects(store_dir: Path) -> None:
    logger = RunlaneLogger(project="lit", dir=str(store_dir))
    logger.log_hyperparams(argparse.Namespace(lr=0.1, layers=(64, 32), dtype=torch.float16, act=nn.GELU))
    logger.log_hyperparams({"data": {"path": Path("/data/x"), "sizes": torch.tensor([1, 2])}, "seed": 7})
    logger.log_metrics({"loss": 0.5, "note": "not a number"}, step=3)  # type: ignore[dict-item]
    logger.finalize("success")

    api = runlane.Api(dir=store_dir)
    info = api.run(str(logger.version))
    assert info.config == {
        "lr": 0.1,
        "layers": [64, 32],
        "dtype": "torch.float16",
        "act": "torch.nn.modules.activation.GELU",
        "data": {"path": "/data/x", "sizes": [1, 2]},
        "seed": 7,
    }
    assert [(p.step, p.value) for p in api.history(info.id, "loss")] == [(3, 0.5)]
    assert set(info.metrics) == {"loss"}
    assert info.status == "finished"


def test_a_run_you_started_is_logged_to_and_left_for_you_to_finish(store_dir: Path, tmp_path: Path) -> None:
    run = runlane.init(project="lit", name="mine", dir=store_dir, system_metrics_interval=None)
    assert isinstance(run, runlane.Run)
    logger = RunlaneLogger(run=run)
    fit(logger, tmp_path, epochs=1)
    assert logger.experiment is run
    run.log({"test/score": 1.0}, step=100)  # still open after fit
    run.finish()

    api = runlane.Api(dir=store_dir)
    assert [r.display_id for r in api.runs(project="lit")] == [run.display_id]
    assert steps(api, run.id, "train/loss") == [0, 1, 2, 3]


DDP_SCRIPT = """
import os, sys
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from runlane.integrations.lightning import RunlaneLogger


class Regressor(LightningModule):
    def __init__(self, lr):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch, index):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def on_train_start(self):
        kind = type(self.logger.experiment).__name__
        with open(os.path.join(sys.argv[2], f"rank{self.global_rank}.txt"), "w") as out:
            out.write(f"{os.getpid()} {kind}")


generator = torch.Generator().manual_seed(0)
data = TensorDataset(torch.randn(32, 4, generator=generator), torch.randn(32, 1, generator=generator))
logger = RunlaneLogger(project="ddp", dir=sys.argv[1], system_metrics_interval=None)
trainer = Trainer(
    max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=logger, log_every_n_steps=1,
    enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
    default_root_dir=sys.argv[2],
)
trainer.fit(Regressor(lr=0.05), DataLoader(data, batch_size=8))
"""


def test_under_ddp_only_rank_zero_records_the_run(store_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    (tmp_path / "root").mkdir()
    env = script_env(store_dir, PL_DISABLE_FORK="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(script), str(store_dir), str(tmp_path / "root")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # What each rank's logger handed its LightningModule as `experiment`.
    rank0_pid, rank0_sees = (tmp_path / "root" / "rank0.txt").read_text().split()
    rank1_pid, rank1_sees = (tmp_path / "root" / "rank1.txt").read_text().split()
    assert (rank0_sees, rank1_sees) == ("Run", "NoOpRun")
    assert rank0_pid != rank1_pid

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="ddp")
    assert info.status == "finished"
    assert info.config == {"lr": 0.05}
    assert [writer.pid for writer in api.run(info.id).writers] == [int(rank0_pid)]
    # Each rank trains on half of the 4 batches per epoch: 2 optimizer steps per epoch, logged once.
    assert steps(api, info.id, "train/loss") == [0, 1, 2, 3]


def test_the_pytorch_lightning_spelling_has_its_own_logger(store_dir: Path, tmp_path: Path) -> None:
    import pytorch_lightning
    from pytorch_lightning.loggers import Logger as StandaloneLogger

    from runlane.integrations.pytorch_lightning import RunlaneLogger as StandaloneRunlaneLogger

    class Standalone(pytorch_lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train/loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    logger = StandaloneRunlaneLogger(project="pl", dir=str(store_dir))
    assert isinstance(logger, StandaloneLogger)
    trainer = pytorch_lightning.Trainer(
        max_epochs=1,
        logger=logger,
        log_every_n_steps=1,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(Standalone(), loaders()[0])

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="pl")
    assert info.status == "finished"
    assert steps(api, info.id, "train/loss") == [0, 1, 2, 3]
