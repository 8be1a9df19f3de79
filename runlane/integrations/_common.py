"""What the framework integrations share: an import error that names the extra to install, hyperparameter
objects turned into a config runlane can store, and the numbers of a framework's metrics dict.

Training must never fail because of what it logs: a hyperparameter runlane cannot store as JSON (a class,
a dtype, a device) is stored as its name, and a metric that is not a number is left out with a warning.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

import runlane

_log = logging.getLogger("runlane")

MAX_DEPTH = 32  # deeper structures (or cycles) are stored as their description
MAX_ARRAY_ITEMS = 1000  # a larger array in a config is described (shape, dtype), not copied
MAX_DESCRIPTION = 1000  # characters of an object's str() kept in a config
_INT64 = 2**63


def raise_if_framework_missing(error: ImportError, root: str, extra: str, framework: str) -> None:
    """Turn "framework not installed" into an error that says which extra to install.

    Only when the missing module is the framework itself: a framework that is installed but fails to import
    (Keras without its backend, a broken CUDA build) keeps its own error, which says what is wrong.
    """
    missing = error.name or ""
    if missing == root or missing.startswith(root + "."):
        raise ImportError(
            f"runlane.integrations.{extra} needs {framework}, which is not installed: pip install 'runlane[{extra}]'",
            name=root,
        ) from error


def config_value(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that runlane stores as config: dicts, lists, strings, numbers, booleans, None.

    ``argparse.Namespace``, dataclasses, objects with ``to_dict()`` (Hugging Face configs and training
    arguments, which mask their tokens there), OmegaConf containers (resolved) and any mapping or sequence
    are walked; numpy/torch scalars and small arrays become numbers; anything else becomes its name or text.
    """
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, enum.Enum):
        return config_value(value.value, depth + 1)
    if isinstance(value, int):
        return int(value) if -_INT64 <= value < _INT64 else str(value)
    if depth >= MAX_DEPTH:
        return describe(value)
    container = _as_container(value)
    if isinstance(container, Mapping):
        return {str(key): config_value(item, depth + 1) for key, item in container.items()}
    if isinstance(container, Set):
        return [config_value(item, depth + 1) for item in sorted(container, key=repr)]
    if isinstance(container, Sequence) and not isinstance(container, (bytes, bytearray, memoryview)):
        return [config_value(item, depth + 1) for item in container]
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    if callable(getattr(value, "tolist", None)):  # numpy arrays and scalars, torch tensors
        shape = getattr(value, "shape", ())
        if isinstance(shape, tuple) and math.prod(int(n) for n in shape) <= MAX_ARRAY_ITEMS:
            return config_value(value.tolist(), depth + 1)
        return f"<{type(value).__name__} shape={tuple(shape)} dtype={getattr(value, 'dtype', '?')}>"
    if not isinstance(value, type) and not isinstance(value, complex) and hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    return describe(value)


def _as_container(value: Any) -> Any:
    """The mapping or sequence behind a hyperparameter object, or ``value`` itself."""
    if isinstance(value, argparse.Namespace):
        return vars(value)
    omegaconf = sys.modules.get("omegaconf")  # loaded whenever such an object exists; never imported here
    if omegaconf is not None and type(value).__module__.startswith("omegaconf"):
        try:
            return omegaconf.OmegaConf.to_container(value, resolve=True)
        except Exception:  # an interpolation that cannot be resolved: keep the raw values
            return omegaconf.OmegaConf.to_container(value, resolve=False)
    if isinstance(value, (Mapping, Sequence, Set, type)):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return to_dict()
        except Exception:  # a to_dict() that needs arguments or fails: fall back to the fields
            pass
    if dataclasses.is_dataclass(value):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    return value


def describe(value: Any) -> str:
    """A stable text for an object a config cannot hold: a class or function by its qualified name."""
    qualname = getattr(value, "__qualname__", None)
    if isinstance(qualname, str) and (isinstance(value, type) or callable(value)):
        module = getattr(value, "__module__", None)
        return f"{module}.{qualname}" if module else qualname
    text = str(value)
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION] + "..."


class NumberFilter:
    """Keeps the numbers of a framework's metrics dict; warns once per key about anything else."""

    def __init__(self) -> None:
        self._warned: set[str] = set()

    def __call__(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, value in metrics.items():
            if _is_number(value):
                kept[key] = value
            elif key not in self._warned:
                self._warned.add(key)
                _log.warning("runlane: not logging %r: %s is not a number", key, type(value).__name__)
        return kept


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, (str, bytes, complex)) or not hasattr(value, "__float__"):
        return False
    size = getattr(value, "size", 1)  # numpy and torch: only a single element is a metric value
    size = size() if callable(size) and not isinstance(size, int) else size
    try:
        return math.prod(size) == 1 if isinstance(size, tuple) else int(size) == 1
    except (TypeError, ValueError):
        return False


class RunHandle:
    """The run an integration records into: the user's own (``run=``), or one it starts on first use with
    ``runlane.init`` (a new run, a resumed ``run_id``, or a fork) and ends when the training ends. A write
    after that end (an evaluation after training) reopens the same run."""

    def __init__(
        self,
        *,
        project: str | None,
        name: str | None,
        tags: Iterable[str] | None,
        config: Mapping[str, Any] | None,
        run_id: int | str | None,
        fork_run_id: int | str | None,
        fork_step: int | None,
        run: runlane.Run | runlane.NoOpRun | None,
        dir: str | os.PathLike[str] | None,
        init_options: Mapping[str, Any],
    ) -> None:
        if run is not None and (run_id is not None or fork_run_id is not None or fork_step is not None):
            raise ValueError("pass run= (a run you started) or run_id=/fork_run_id= (a stored run), not both")
        if run_id is not None and (fork_run_id is not None or fork_step is not None):
            raise ValueError("pass run_id= to resume a run or fork_run_id= with fork_step= to fork one, not both")
        if isinstance(tags, str):
            raise TypeError(f"tags must be a list of strings, got one string {tags!r}; use tags=[{tags!r}]")
        self.project = project
        self.dir = dir
        self._options = dict(init_options)  # runlane.init's other options, for reopening the run too
        self._config = config_value(config) if config is not None else {}
        self._init_args: dict[str, Any] = {
            "project": project,
            "name": name,
            "tags": list(tags) if tags is not None else None,
            "dir": dir,
            **init_options,
        }
        if run_id is not None:
            self._init_args.update(run_id=run_id, resume=True)
        elif fork_run_id is not None or fork_step is not None:
            self._init_args.update(fork_run_id=fork_run_id, fork_step=fork_step)
        self.run = run
        self.owned = run is None  # a run the user started is the user's to finish
        self.ended = False

    @property
    def resume_ref(self) -> int | str | None:
        """The stored run this handle was told to resume, if any."""
        ref: int | str | None = self._init_args.get("run_id")
        return ref

    def get(self, config: Mapping[str, Any] | None = None, name: str | None = None) -> runlane.Run | runlane.NoOpRun:
        """The run, started (with the framework's ``config`` under the user's) or reopened as needed."""
        if self.run is None:
            merged = {**(config or {}), **self._config}  # what the user passed wins over what the framework says
            args = {**self._init_args, "config": merged}
            if args["name"] is None:
                args["name"] = name
            self.run = runlane.init(**args)
        elif self.ended:  # a second training, or an evaluation after the training: the same run again
            self.run = runlane.init(run_id=self.run.uid, resume=True, dir=self.dir, config=config, **self._options)
            self.ended = False
        elif config:
            self.run.update_config(config)  # a run the user started, or a second training into the open run
        return self.run

    def end(self, status: str = "finished") -> None:
        """Finish the run if this handle started it (a run the user passed in is left running)."""
        if self.run is None or self.ended or not self.owned or not isinstance(self.run, runlane.Run):
            return
        self.run.finish(status)
        self.ended = True
