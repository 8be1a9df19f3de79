"""Lightning logs to runlane: ``Trainer(logger=RunlaneLogger(project="mnist"))``.

``RunlaneLogger`` is a ``lightning.pytorch.loggers.Logger`` (for the standalone ``pytorch_lightning``
package, import it from ``runlane.integrations.pytorch_lightning``). Install with
``pip install 'runlane[lightning]'``.

- ``log_hyperparams`` (``save_hyperparameters()``: a dict, ``Namespace``, ``AttributeDict`` or OmegaConf
  config) merges into the run's config; ``log_metrics`` logs at Lightning's global step, so training and
  validation metrics share one step axis.
- ``experiment`` is the ``runlane.Run`` (started on first use), ``name`` its project and ``version`` its
  display id; Lightning keeps checkpoints under ``<default_root_dir>/<name>/<version>/checkpoints``.
- ``finalize`` ends the run when ``fit``/``validate``/``test`` returns (``finished``) or raises
  (``failed``; ``killed`` for Ctrl-C), with the error in the run's log. Using the logger again (a
  ``trainer.test()`` after ``trainer.fit()``) reopens the same run.
- Each checkpoint ``ModelCheckpoint`` saves is a line in the run's log and the summary's ``checkpoint``
  (path, step, monitored score, best path and score).
- Under DDP only global rank zero records; other ranks see a ``runlane.NoOpRun`` as ``experiment``.
- A job restarted from a checkpoint continues its run with ``run_id=`` (the old ``version``) or branches
  from it with ``fork_run_id=`` and ``fork_step=``; ``run=`` logs into a run you started yourself (you
  finish it). Other keyword arguments go to ``runlane.init`` (``dir=``, ``capture_console=``, ...).
"""

from __future__ import annotations

from ._common import raise_if_framework_missing

try:
    from lightning.pytorch.loggers import Logger
except ImportError as error:
    raise_if_framework_missing(error, "lightning", "lightning", "Lightning")
    raise

from ._lightning import RunlaneLoggerMixin

__all__ = ["RunlaneLogger"]


class RunlaneLogger(RunlaneLoggerMixin, Logger):
    """A Lightning logger that records one runlane run; see the module's docstring."""
