"""Keras 3 logs to runlane: ``model.fit(x, y, callbacks=[RunlaneCallback(project="mnist")])``.

Install with ``pip install 'runlane[keras]'`` and the backend you use (``KERAS_BACKEND=torch``, ``jax`` or
``tensorflow``); the callback itself works on any of them.

- Train begin starts the run, with the optimizer's hyperparameters (``optimizer.get_config()``: name,
  learning rate, betas, weight decay, ...) under ``optimizer`` and what ``fit`` tells its callbacks
  (``epochs``, ``steps`` per epoch, ``verbose``) under ``fit`` in its config.
- One step axis, the optimizer's step count (``optimizer.iterations``, which carries on across ``fit``
  calls and restored optimizers): each epoch's metrics as Keras names them (``loss``, ``val_loss``, ...),
  with ``epoch`` (epochs completed) and ``learning_rate``, at the step the epoch ended; with
  ``log_batches=True`` (or every N batches: ``log_batches=N``) also ``batch/<metric>`` (Keras' running
  mean over the epoch) after each of those batches.
- Train end writes the last epoch's metrics, ``epochs`` and ``global_step`` into the summary and finishes
  the run; a later ``model.evaluate(..., callbacks=[callback])`` reopens it for ``eval/<metric>`` at the
  current step and finishes it again. Fitting again with the same callback reopens the same run.
- A training that raises leaves the run to runlane's process-ending rules: ``failed`` with the error when
  the exception ends the script (``killed`` for Ctrl-C or SIGTERM).
- ``run=`` logs into a run you started (you finish it); ``run_id=`` resumes a stored run, ``fork_run_id=``
  with ``fork_step=`` branches from one; other keyword arguments go to ``runlane.init``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from ._common import NumberFilter, RunHandle, config_value, raise_if_framework_missing

try:
    import keras
except ImportError as error:
    raise_if_framework_missing(error, "keras", "keras", "Keras 3")
    raise

import runlane

__all__ = ["RunlaneCallback"]


class RunlaneCallback(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no type information
    """A Keras callback that records the training as one runlane run; see the module's docstring."""

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        config: Mapping[str, Any] | None = None,
        run_id: int | str | None = None,
        fork_run_id: int | str | None = None,
        fork_step: int | None = None,
        *,
        log_batches: bool | int = False,
        run: runlane.Run | runlane.NoOpRun | None = None,
        dir: str | os.PathLike[str] | None = None,
        **init_options: Any,
    ) -> None:
        super().__init__()
        every = int(log_batches)
        if every < 0:
            raise ValueError(f"log_batches must be True, False or a number of batches >= 1, got {log_batches!r}")
        self._every = every
        self._handle = RunHandle(
            project=project,
            name=name,
            tags=tags,
            config=config,
            run_id=run_id,
            fork_run_id=fork_run_id,
            fork_step=fork_step,
            run=run,
            dir=dir,
            init_options=init_options,
        )
        self._numbers = NumberFilter()
        self._training = False
        self._batches = 0  # batches seen in this fit, for log_batches=N
        self._epochs = 0
        self._last: dict[str, Any] = {}

    @property
    def run(self) -> runlane.Run | runlane.NoOpRun | None:
        """The run being recorded (None before the first fit)."""
        return self._handle.run

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        config: dict[str, Any] = {"fit": config_value(self.params or {})}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            with warnings.catch_warnings():
                # Keras reads its variables through numpy's pre-2.0 __array__ protocol there: numpy's
                # DeprecationWarning is Keras' to fix, and not worth the user's attention on every fit.
                warnings.simplefilter("ignore", DeprecationWarning)
                config["optimizer"] = config_value(optimizer.get_config())
        self._handle.get(config)
        self._training = True
        self._batches = 0
        self._epochs = 0

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._batches += 1
        if not self._every or not logs or self._batches % self._every:
            return
        values = self._numbers({f"batch/{key}": value for key, value in logs.items()})
        if values:
            self._handle.get().log(values, step=self._step())

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epochs = epoch + 1
        values = self._numbers({**(logs or {}), "epoch": epoch + 1})
        learning_rate = self._learning_rate()
        if learning_rate is not None:
            values["learning_rate"] = learning_rate
        self._handle.get().log(values, step=self._step())
        self._last = values

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._training = False
        run = self._handle.get()
        run.summary(config_value({**self._last, "epochs": self._epochs, "global_step": self._step()}))
        self._handle.end()

    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._training or not logs:  # validation during fit arrives with the epoch's metrics
            return
        values = self._numbers({f"eval/{key}": value for key, value in logs.items()})
        run = self._handle.get()
        if values:
            run.log(values, step=self._step())
            run.summary(config_value(values))
        self._handle.end()

    def _step(self) -> int:
        """Optimizer steps taken so far, the step every point is logged at."""
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        if iterations is None:
            return self._batches
        return int(_scalar(iterations))

    def _learning_rate(self) -> float | None:
        optimizer: Any = getattr(self.model, "optimizer", None)
        try:
            # The current rate: Keras evaluates a schedule at the optimizer's step here.
            return _scalar(optimizer.learning_rate)
        except (AttributeError, TypeError, ValueError):
            return None


def _scalar(value: Any) -> float:
    """A Keras variable's (or a backend tensor's) single value, on any backend.

    Through the variable's backend tensor (``.value``): numpy's conversion of the variable itself goes
    through a pre-2.0 ``__array__`` and warns on every call."""
    return float(getattr(value, "value", value))
