"""Hugging Face's ``Trainer`` logs to runlane: ``Trainer(..., callbacks=[RunlaneCallback(project="nlp")])``.

Install with ``pip install 'runlane[transformers]'``; set ``report_to="none"`` (or leave out other trackers)
in ``TrainingArguments`` if runlane should be the only one.

- Train begin starts the run, with the ``TrainingArguments`` (``to_dict()``, so hub tokens stay masked)
  under ``training_args`` and the model's config under ``model_config`` in its config, and the run name
  from ``run_name``. With ``run=`` (a run you started) it logs there instead, and leaves ending it to you.
- Each ``on_log`` is logged at the trainer's global step, so training and evaluation share one step axis:
  ``loss`` becomes ``train/loss``, ``eval_loss`` ``eval/loss``, ``test_*`` ``test/*`` (as W&B names them).
  The end-of-training figures (``train_runtime``, ``train_loss``, ``total_flos``, ...) go to the summary.
- Each checkpoint saved is a line in the run's log and the summary's ``checkpoint``; at train end the
  summary gets the best checkpoint (``best_checkpoint``, ``best_metric``, ``metric_for_best_model``),
  ``global_step``, ``epoch`` and the last value of every metric, and the run is finished. An evaluation
  after that (``trainer.evaluate()``) reopens the run for its metrics and finishes it again.
- A training that raises leaves the run to runlane's process-ending rules: ``failed`` with the error when
  the exception ends the script (``killed`` for Ctrl-C or SIGTERM).
- Only the main process (world process zero) records; the others do nothing.
- ``run_id=`` resumes a stored run (``trainer.train(resume_from_checkpoint=...)`` of a restarted job),
  ``fork_run_id=`` with ``fork_step=`` branches from one; other keyword arguments go to ``runlane.init``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ._common import NumberFilter, RunHandle, config_value, raise_if_framework_missing

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as error:
    raise_if_framework_missing(error, "transformers", "transformers", "Hugging Face Transformers")
    raise

import runlane

__all__ = ["RunlaneCallback"]

# What Trainer logs once, at the end of training: summary fields, not series.
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos")


class RunlaneCallback(TrainerCallback):
    """A ``TrainerCallback`` that records the training as one runlane run; see the module's docstring."""

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
        self._last: dict[str, Any] = {}  # the last value of each metric, for the summary at train end

    @property
    def run(self) -> runlane.Run | runlane.NoOpRun | None:
        """The run being recorded (None before training began, and in processes other than the main one)."""
        return self._handle.run

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        config = {"training_args": config_value(args)}
        model_config = getattr(kwargs.get("model"), "config", None)
        if model_config is not None:
            config["model_config"] = config_value(model_config)
        self._handle.get(config, name=args.run_name)
        self._training = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        # Without a training (trainer.evaluate() alone) the first log starts the run.
        run = self._handle.get({"training_args": config_value(args)} if self._handle.run is None else None)
        final = {key: value for key, value in logs.items() if key in SUMMARY_KEYS}
        metrics = self._numbers(_rename({k: v for k, v in logs.items() if k not in SUMMARY_KEYS}))
        if metrics:
            run.log(metrics, step=state.global_step)
            self._last.update(metrics)
        if final:
            run.summary(config_value(final))
        if not self._training:
            self._handle.end()

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self._handle.run is None:
            return
        # Trainer writes checkpoint-<global step> under output_dir (its PREFIX_CHECKPOINT_DIR).
        path = os.path.join(args.output_dir or "", f"checkpoint-{state.global_step}")
        run = self._handle.get()
        run.summary({"checkpoint": {"path": path, "global_step": state.global_step}})
        run.log_text(f"checkpoint saved: {path} (global step {state.global_step})")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or self._handle.run is None:
            return
        self._training = False
        run = self._handle.get()
        run.summary(
            config_value(
                {
                    **self._last,
                    "global_step": state.global_step,
                    "epoch": state.epoch,
                    "best_checkpoint": state.best_model_checkpoint,
                    "best_metric": state.best_metric,
                    "metric_for_best_model": args.metric_for_best_model,
                }
            )
        )
        self._handle.end()


def _rename(logs: Mapping[str, Any]) -> dict[str, Any]:
    """Trainer's flat names on one step axis: ``eval_loss`` -> ``eval/loss``, ``loss`` -> ``train/loss``."""
    renamed = {}
    for key, value in logs.items():
        for prefix in ("eval", "test"):
            if key.startswith(prefix + "_"):
                renamed[f"{prefix}/{key[len(prefix) + 1 :]}"] = value
                break
        else:
            renamed[f"train/{key}"] = value
    return renamed
