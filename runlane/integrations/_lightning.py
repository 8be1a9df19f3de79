"""The runlane logger for Lightning, written once for both of its packages.

``lightning.pytorch`` and the standalone ``pytorch_lightning`` each have their own ``Logger`` base class,
so ``runlane.integrations.lightning`` and ``runlane.integrations.pytorch_lightning`` each combine this
class with theirs. Both packages share ``lightning_utilities``' rank-zero flag, which every strategy sets
to the process's global rank before the first hook runs.
"""

from __future__ import annotations

import copy
import os
import sys
from argparse import Namespace
from collections.abc import Iterable, Mapping
from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only

import runlane

from ._common import NumberFilter, RunHandle, config_value

# Lightning's statuses for finalize(): "success" at the end of fit/validate/test, "failed" when one of them
# raised (a KeyboardInterrupt included), "finished" before a SLURM requeue saves and stops the job.
_STATUSES = {"success": "finished", "finished": "finished", "failed": "failed"}


class RunlaneLoggerMixin:
    """Lightning's ``Logger`` methods on a runlane run (see ``runlane.integrations.lightning``)."""

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
        run: runlane.Run | runlane.NoOpRun | None = None,
        dir: str | os.PathLike[str] | None = None,
        **init_options: Any,
    ) -> None:
        super().__init__()
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

    # -- what Lightning reads ------------------------------------------------------------------------

    @property
    def experiment(self) -> runlane.Run | runlane.NoOpRun:
        """The runlane run, started on first use; on ranks other than zero a ``runlane.NoOpRun``."""
        if _global_rank() != 0:
            return runlane.NoOpRun(self._handle.project)
        # After finalize(), a trainer.test() following trainer.fit() reopens the same run.
        return self._handle.get()

    @property
    def name(self) -> str | None:
        """The run's project (Lightning puts checkpoints under ``<root>/<name>/<version>/``)."""
        if _global_rank() != 0:
            return self._handle.project or "default"
        return (self._handle.run or self.experiment).project  # reading it never reopens an ended run

    @property
    def version(self) -> int | str | None:
        """The run's display id, like ``MNIST-3``: pass it as ``run_id=`` (or ``fork_run_id=``) to continue."""
        if _global_rank() != 0:
            resumed = self._handle.resume_ref
            return str(resumed) if resumed is not None else None
        return (self._handle.run or self.experiment).display_id

    # -- what Lightning calls ------------------------------------------------------------------------

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Merge hyperparameters (a dict, ``Namespace``, ``AttributeDict`` or OmegaConf config) into the config."""
        values = config_value(params)
        if not isinstance(values, dict):
            values = {"hparams": values}
        if values:
            self.experiment.update_config(values)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log at Lightning's step (the number of optimizer steps taken, the same for train and val)."""
        values = self._numbers(metrics)
        if values:
            self.experiment.log(values, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record the checkpoint just written (path, step, monitored score) and the best one so far."""
        callback = checkpoint_callback
        # ModelCheckpoint says which file it just wrote and at which step only in these two attributes.
        path = getattr(callback, "_last_checkpoint_saved", None) or getattr(callback, "last_model_path", None)
        step = getattr(callback, "_last_global_step_saved", None)
        monitor = getattr(callback, "monitor", None)
        score = _number(getattr(callback, "current_score", None)) if monitor else None
        record = {
            "path": path or None,
            # Lightning logs the batch after a checkpoint saved at global step G at step G: a fork that
            # continues from this checkpoint branches at G - 1.
            "global_step": int(step) if step is not None else None,
            "fork_step": int(step) - 1 if step else None,
            "monitor": monitor,
            "score": score,
            "best_path": getattr(callback, "best_model_path", None) or None,
            "best_score": _number(getattr(callback, "best_model_score", None)),
        }
        run = self.experiment
        run.summary({"checkpoint": record})
        scored = f", {monitor}={score}" if monitor else ""
        run.log_text(f"checkpoint saved: {record['path']} (global step {record['global_step']}{scored})")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``success`` -> finished, ``failed`` -> failed (killed for a Ctrl-C)."""
        run = self._handle.run
        if run is None or self._handle.ended:
            return
        ending = _STATUSES.get(status, "failed")
        error = sys.exc_info()[1]  # Lightning finalizes inside its `except` block: the error is at hand
        if ending == "failed" and error is not None:
            if isinstance(error, KeyboardInterrupt):
                ending = "killed"
            run.log_text(f"training stopped by {type(error).__name__}: {error}")
        self._handle.end(ending)

    def __getstate__(self) -> dict[str, Any]:
        # A logger handed to spawned workers (strategy="ddp_spawn") starts its own run there, on rank zero:
        # a run object holds files and threads of this process and cannot travel.
        state = self.__dict__.copy()
        if self._handle.owned:
            state["_handle"] = copy.copy(self._handle)
            state["_handle"].run = None
        return state


def _global_rank() -> int:
    # Set by Lightning's strategies (and from the launcher's environment at import) on the shared flag.
    return int(getattr(rank_zero_only, "rank", 0))


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
