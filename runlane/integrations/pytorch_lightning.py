"""``runlane.integrations.lightning`` for the standalone ``pytorch_lightning`` package.

``RunlaneLogger`` here is a ``pytorch_lightning.loggers.Logger``, for code that imports
``pytorch_lightning`` rather than ``lightning.pytorch`` (the two packages' classes are distinct, so a
trainer of one checks its loggers against its own base class). It behaves exactly as
``runlane.integrations.lightning.RunlaneLogger``. Install with ``pip install 'runlane[lightning]'``.
"""

from __future__ import annotations

from ._common import raise_if_framework_missing

try:
    from pytorch_lightning.loggers import Logger
except ImportError as error:
    raise_if_framework_missing(error, "pytorch_lightning", "lightning", "PyTorch Lightning")
    raise

from ._lightning import RunlaneLoggerMixin

__all__ = ["RunlaneLogger"]


class RunlaneLogger(RunlaneLoggerMixin, Logger):
    """A PyTorch Lightning logger that records one runlane run; see ``runlane.integrations.lightning``."""
