"""runlane: experiment tracking that never loses a point and never slows the training loop.

>>> import runlane
>>> run = runlane.init(project="mnist", config={"lr": 1e-3})
>>> run.log({"loss": 0.25})
>>> run.finish()

Importing runlane stays light: the store, its database driver and the drain are loaded by
the first ``init()`` or ``Api()``, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .entities import (
    Bucket,
    History,
    ImageInfo,
    Lineage,
    LogLine,
    MetricPoint,
    MetricSummary,
    ProjectInfo,
    RunInfo,
    SystemPoint,
    SystemSample,
)
from .errors import (
    ConsoleBusyError,
    DeletionRefusedError,
    JournalWriteError,
    ProjectNotFoundError,
    RunClosedError,
    RunlaneError,
    RunNotFoundError,
    SnapshotTooLargeError,
    StoreError,
    StoreNotFoundError,
)

if TYPE_CHECKING:
    from .api import Api
    from .sdk.noop import NoOpRun
    from .sdk.run import Run
    from .sdk.start import init, is_enabled, set_enabled

__version__ = "0.1.0"

__all__ = [
    "Api",
    "Bucket",
    "ConsoleBusyError",
    "DeletionRefusedError",
    "History",
    "ImageInfo",
    "JournalWriteError",
    "Lineage",
    "LogLine",
    "MetricPoint",
    "MetricSummary",
    "NoOpRun",
    "ProjectInfo",
    "ProjectNotFoundError",
    "Run",
    "RunClosedError",
    "RunInfo",
    "RunNotFoundError",
    "RunlaneError",
    "SnapshotTooLargeError",
    "StoreError",
    "StoreNotFoundError",
    "SystemPoint",
    "SystemSample",
    "__version__",
    "init",
    "is_enabled",
    "set_enabled",
]

_LAZY = {
    "Api": ("api", "Api"),
    "NoOpRun": ("sdk.noop", "NoOpRun"),
    "Run": ("sdk.run", "Run"),
    "init": ("sdk.start", "init"),
    "is_enabled": ("sdk.start", "is_enabled"),
    "set_enabled": ("sdk.start", "set_enabled"),
}


def __getattr__(name: str) -> Any:
    # PEP 562: the SDK and store modules load on first use, keeping `import runlane` cheap.
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'runlane' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{target[0]}", __name__), target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
