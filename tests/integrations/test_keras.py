"""runlane.integrations.keras: a real Keras 3 fit (torch backend) logs to runlane through RunlaneCallback."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

import runlane
from runlane.integrations.keras import RunlaneCallback

from ..conftest import run_script, script_env
from .models import regression_data, tiny_keras_model

REPO = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = 4  # 32 samples in batches of 8


def steps(api: runlane.Api, ref: int | str, key: str) -> list[int]:
    return [point.step for point in api.history(ref, key)]


def test_the_backend_is_torch() -> None:
    assert keras.backend.backend() == "torch"


def test_fit_records_optimizer_and_fit_arguments_epoch_and_batch_metrics(store_dir: Path) -> None:
    callback = RunlaneCallback(
        project="keras", name="mlp", config={"data": "random"}, log_batches=True, dir=store_dir,
        system_metrics_interval=None,
    )  # fmt: skip
    x, y = regression_data(32, seed=0)
    history = tiny_keras_model().fit(
        x, y, batch_size=8, epochs=3, validation_data=regression_data(16, seed=1), verbose=0, callbacks=[callback]
    )
    assert isinstance(callback.run, runlane.Run)

    api = runlane.Api(dir=store_dir)
    info = api.run(callback.run.id)
    assert (info.project, info.name, info.status) == ("keras", "mlp", "finished")
    assert info.config["data"] == "random"
    assert info.config["fit"] == {"epochs": 3, "steps": STEPS_PER_EPOCH, "verbose": 0}
    optimizer = info.config["optimizer"]
    assert (optimizer["name"], optimizer["beta_1"], optimizer["amsgrad"]) == ("adam", 0.9, False)
    assert optimizer["learning_rate"] == pytest.approx(1e-2)

    # One axis, the optimizer's steps: each epoch's metrics where it ended, each batch after it ran.
    epoch_ends = [STEPS_PER_EPOCH * n for n in (1, 2, 3)]
    for key in ("loss", "mae", "val_loss", "val_mae", "epoch", "learning_rate"):
        assert steps(api, info.id, key) == epoch_ends, key
    val_losses = [float(value) for value in history.history["val_loss"]]  # torch tensors on this backend
    assert [p.value for p in api.history(info.id, "val_loss")] == pytest.approx(val_losses)
    assert [p.value for p in api.history(info.id, "epoch")] == [1.0, 2.0, 3.0]
    assert steps(api, info.id, "batch/loss") == list(range(1, 3 * STEPS_PER_EPOCH + 1))

    summary = info.summary
    assert (summary["epochs"], summary["global_step"]) == (3, 12)
    assert summary["val_loss"] == pytest.approx(val_losses[-1])


def test_every_nth_batch_and_an_evaluation_after_fit(store_dir: Path) -> None:
    callback = RunlaneCallback(project="keras", log_batches=3, dir=store_dir, system_metrics_interval=None)
    model = tiny_keras_model()
    x, y = regression_data(32, seed=0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    result = model.evaluate(*regression_data(16, seed=1), verbose=0, callbacks=[callback], return_dict=True)

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="keras")
    assert info.status == "finished"
    assert steps(api, info.id, "batch/loss") == [3, 6]
    assert steps(api, info.id, "eval/loss") == [8]
    assert info.summary["eval/loss"] == pytest.approx(float(result["loss"]))
    assert "val_loss" not in info.metrics


def test_a_second_fit_with_the_same_callback_continues_its_run(store_dir: Path) -> None:
    callback = RunlaneCallback(project="keras", dir=store_dir, system_metrics_interval=None)
    model = tiny_keras_model()
    x, y = regression_data(32, seed=0)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="keras")
    assert info.status == "finished"
    assert steps(api, info.id, "loss") == [4, 6, 8]  # the optimizer's steps carry on: 4, then 2 per epoch
    assert info.config["fit"]["steps"] == 2  # the latest fit's arguments


FAILING = """
import sys
sys.path.insert(0, {repo!r})
import keras
from runlane.integrations.keras import RunlaneCallback
from tests.integrations.models import regression_data, tiny_keras_model


class Explode(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("loss exploded")


x, y = regression_data(32, seed=0)
callbacks = [RunlaneCallback(project="keras", system_metrics_interval=None), Explode()]
tiny_keras_model().fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=callbacks)
"""


def test_a_fit_that_raises_ends_the_run_failed(store_dir: Path) -> None:
    env = script_env(store_dir, KERAS_BACKEND="torch", OMP_NUM_THREADS="1")
    result = run_script(FAILING.format(repo=str(REPO)), store_dir, timeout=180, env=env)
    assert result.returncode == 1, result.stderr[-3000:]

    api = runlane.Api(dir=store_dir)
    (info,) = api.runs(project="keras")
    assert info.status == "failed"
    assert "RuntimeError: loss exploded" in (info.status_reason or "")
    assert steps(api, info.id, "loss") == [4, 8]  # the epoch that raised was logged first
