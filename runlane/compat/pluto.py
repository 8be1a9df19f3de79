"""Pluto's run lifecycle on runlane: ``import runlane.compat.pluto as pluto``.

``init``, ``run.log`` (numbers and ``pluto.Image``), ``finish`` vs ``close``, module-level ``pluto.log``
and ``pluto.finish``, resume by numeric or display id, multi-node runs shared through an external
``run_id``, and forks with lineage resolution and config/tag inheritance work as Pluto (``pluto/init.py``
and ``pluto/op.py`` upstream) does them. Statuses use Pluto's names:

=============  ==========
runlane        Pluto
=============  ==========
``running``    RUNNING
``finished``   COMPLETED
``failed``     FAILED
``killed``     TERMINATED
``scheduled``  QUEUED
=============  ==========

As upstream:

- ``tags`` is one tag or a list; inside a Konduktor job (``$KONDUKTOR_JOB_NAME``) ``konduktor`` is added.
- Steps: ``log()`` without ``step`` logs at the previous step + 1, so a new run's first automatic step
  is 1 (upstream's ``Op._step`` starts at 0 and is incremented before use); ``step=S`` logs at S and
  the next automatic step is S + 1. Images in a call go with that call's step.
- ``run_id``: an int or digit string resumes that numeric id, a display id (``MMP-42``) resumes that
  run, with or without ``resume=True``; any other string is an external id, the multi-node pattern:
  the first process to pass it creates the run, later ones attach (``run.resumed`` is True). Attaching
  needs ``resume=True`` or ``$PLUTO_RUN_ID`` set (upstream's collision check); otherwise
  ``RunExistsError``. ``$PLUTO_RUN_ID`` is the ``run_id`` when none is passed. An attaching process
  keeps the run's name, config and tags (upstream ignores them too), and its automatic steps start at 1
  like every rank's, so ranks logging in lockstep log the same steps (a job restarted under the same id
  therefore logs its steps again: pass ``step=`` to continue instead).
- Fork arguments are checked with upstream's messages (``fork_run_id and fork_step must be provided
  together``; ``fork_run_id must be a numeric run ID or display ID``).
- ``pluto.log``/``pluto.finish`` act on the runs this process started: ``log`` on the latest one still
  open, ``finish()`` on all of them (or the one passed); ``pluto.ops`` lists them.
- ``pluto.Image(data, caption=None)`` takes a file path, the bytes of an image file, a PIL image, a
  matplotlib figure (or ``pyplot``), a numpy array (squeezed; values below 0 min-max scaled, values up to
  1 scaled by 255, as upstream) or a torch tensor (C, H, W), min-max scaled as upstream's
  ``make_grid(normalize=True)``; a list of them logs each. Stored as runlane images (``Api.images``).

Where runlane differs, and why:

- Runs live in runlane's store (``dir=``, else ``$RUNLANE_DIR``, else ``./.runlane``), not on a Pluto
  server; ``settings`` is read only for ``mode`` (``"noop"`` returns a no-op run, ``"offline"`` logs
  locally for a later ``runlane sync``), other keys have nothing to configure here.
- A resumed run continues after its highest logged step and a fork at ``fork_step + 1`` (upstream
  restarts at 1 in both cases, which overwrites or leaves a gap; SPEC section 3).
- ``log`` stores numbers and images; other values (strings, which upstream keeps as a string series,
  and Pluto's Audio, Video, Text, Histogram, Table, Graph, which this module does not offer) raise
  ``TypeError`` naming the key and nothing of the call is recorded, where upstream drops the item with
  a warning: runlane never loses data silently. Nested dicts are flattened with ``/`` (runlane's rule;
  upstream drops them). ``timestamp=`` is not taken (runlane stamps each record when it is logged).
- ``watch``, ``alert``, ``sweep``/``agent``, ``login`` and ``query`` have no counterpart: they talk to a
  Pluto server.
- ``config`` must be plain data with string keys: upstream converts OmegaConf configs and turns other
  keys and values into strings, runlane refuses what it cannot store exactly (pass
  ``OmegaConf.to_container(cfg, resolve=True)``); this module may import only the standard library.
- ``pluto.log`` with no open run raises ``RuntimeError`` saying to call ``pluto.init()`` (upstream's
  ``pluto.log`` is ``None`` then, a ``TypeError``), and after that run finishes it fails the same way
  rather than writing into a finished run.
- ``Image`` has no ``boxes``, ``masks`` or ``annotations``: runlane images carry a caption only. A
  torch batch (N, C, H, W) is refused rather than tiled into a grid.
- An external id must be 1-64 letters, digits, ``.``, ``_`` or ``-`` (it becomes the run's uid, so any
  run reference finds it); upstream takes any string.
- A script killed by SIGTERM or Ctrl-C leaves its run TERMINATED rather than FAILED, and a run whose
  process was killed outright is marked FAILED by the next process that opens the store.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import runlane

__all__ = ["Image", "Run", "RunExistsError", "Status", "finish", "init", "log", "ops"]

# Upstream's pattern for display ids (pluto/sets.py ``_is_display_id``).
_DISPLAY_ID = re.compile(r"[A-Z0-9]{1,4}-\d+")

ops: list[Run] | None = None
"""The runs this process started and has not ended, oldest first (None before the first ``init``)."""


class RunExistsError(RuntimeError):
    """A run with this external ``run_id`` exists already, and neither ``resume=True`` nor
    ``$PLUTO_RUN_ID`` said to attach to it."""


class Status:
    """Pluto's names for run statuses."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    QUEUED = "QUEUED"

    FROM_RUNLANE: Mapping[str, str] = {
        "running": RUNNING,
        "finished": COMPLETED,
        "failed": FAILED,
        "killed": TERMINATED,
        "scheduled": QUEUED,
    }


class Image:
    """An image to log: ``run.log({"samples": pluto.Image(array, caption="epoch 3")})``."""

    def __init__(self, data: Any, caption: str | None = None) -> None:
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"caption must be a string, got {type(caption).__name__}")
        self._caption = caption
        self._image = _image_source(data)  # converted now, as upstream does: a bad image fails here

    @property
    def caption(self) -> str | None:
        return self._caption


def _image_source(data: Any) -> Any:
    """What ``runlane.Run.log_image`` takes for ``data``: files and PIL images as they are, a matplotlib
    figure rendered to PNG bytes, arrays and tensors scaled to uint8 by upstream's rules."""
    if isinstance(data, (bytes, bytearray, str, os.PathLike)):
        return bytes(data) if isinstance(data, bytearray) else data
    kind = f"{type(data).__module__}.{type(data).__qualname__}"
    if kind.startswith("PIL."):
        return data
    if kind.startswith("matplotlib") or getattr(data, "__name__", "") == "matplotlib.pyplot":
        figure = data.gcf() if hasattr(data, "gcf") else getattr(data, "figure", data)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    if kind.startswith("torch."):
        array = data.detach().cpu().double().numpy()
        if array.ndim == 4:
            raise ValueError(f"pluto.Image takes one image (C, H, W), not a batch of shape {tuple(array.shape)}")
        if array.ndim == 3:
            array = array.transpose(1, 2, 0)
        low, high = float(array.min()), float(array.max())
        # make_grid(normalize=True): min-max scaled to [0, 1], then * 255.
        array = (array - low) / (high - low) if high > low else array * 0.0
        return (array * 255).clip(0, 255).astype("uint8")
    if hasattr(data, "__array__") and hasattr(data, "ndim"):
        array = data.squeeze() if data.ndim > 2 else data
        if array.min() < 0:
            array = (array - array.min()) / (array.max() - array.min())
        if array.max() <= 1:
            array = (array * 255).astype("int32")
        return array.clip(0, 255).astype("uint8")
    raise TypeError(
        "pluto.Image takes a file path, image bytes, a PIL image, a matplotlib figure, a numpy array or a "
        f"torch tensor, got {type(data).__name__}"
    )


class Run:
    """A Pluto run: log metrics and images, edit config and tags, then ``finish()`` or ``close()``."""

    def __init__(
        self, native: runlane.Run | runlane.NoOpRun, *, run_id: str | None = None, resumed: bool, peer: bool = False
    ) -> None:
        self._native = native
        self._run_id = run_id
        self._resumed = resumed
        # The step of the latest log(): a new run's first automatic step is 1, as upstream's, and so is a
        # peer's (a rank attaching through an external id counts its own steps in step with the others).
        # A resumed run or a fork continues where runlane's counter is (after its highest step / the fork).
        self._step = native.step - 1 if native.step != 0 and not peer else 0

    @property
    def id(self) -> int | None:
        """Numeric run id."""
        return self._native.id

    @property
    def display_id(self) -> str | None:
        """Sequential display id like ``MMP-42``."""
        return self._native.display_id

    @property
    def run_id(self) -> str | None:
        """The external id this run was started or attached with (multi-node jobs), else None."""
        return self._run_id

    @property
    def resumed(self) -> bool:
        """True when ``init`` attached to a run that existed already rather than creating one."""
        return self._resumed

    @property
    def name(self) -> str | None:
        return self._native.name

    @property
    def project(self) -> str | None:
        return self._native.project

    @property
    def config(self) -> dict[str, Any]:
        return self._native.config

    @property
    def tags(self) -> list[str]:
        return list(self._native.tags)

    @property
    def status(self) -> str:
        """RUNNING until this process ends the run; then COMPLETED, FAILED or TERMINATED."""
        return Status.FROM_RUNLANE.get(self._native.status, self._native.status.upper())

    @property
    def fork_run_id(self) -> int | None:
        """The resolved parent of a fork (the ancestor that owns ``fork_step``), or None."""
        return self._native.fork_run_id

    @property
    def fork_step(self) -> int | None:
        return self._native.fork_step

    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
        """Record metrics and ``pluto.Image`` values (or lists of them) at ``step``, else at the previous
        step + 1. ``commit`` is accepted and has no effect, as upstream."""
        if not isinstance(data, Mapping):
            raise TypeError(f"log() takes a dict of values, got {type(data).__name__}")
        chosen = self._step + 1 if step is None else step
        numbers: dict[str, Any] = {}
        images: list[tuple[str, Image]] = []
        for key, value in data.items():
            items = value if isinstance(value, list) else None
            if isinstance(value, Image):
                images.append((key, value))
            elif items and all(isinstance(item, Image) for item in items):
                images.extend((key, item) for item in items)
            else:
                numbers[key] = value
        self._native.log(numbers, step=chosen)  # validates the step and every number before storing any
        self._step = chosen
        for key, image in images:
            self._native.log_image(key, image._image, caption=image.caption, step=chosen)

    def update_config(self, config: Mapping[str, Any]) -> None:
        """Deep-merge edits into the config."""
        self._native.update_config(config)

    def add_tags(self, tags: str | Iterable[str]) -> None:
        self._native.add_tags(tags)

    def remove_tags(self, tags: str | Iterable[str]) -> None:
        self._native.remove_tags(tags)

    def finish(self) -> None:
        """Drain, release local resources and mark the run COMPLETED."""
        self._native.finish()
        _forget(self)

    def close(self) -> None:
        """Release local resources without changing the run's status; unregisters the exit hook."""
        self._native.close()
        _forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._native.__exit__(kind, exc, tb)
        _forget(self)

    def __repr__(self) -> str:
        return f"<pluto.Run {self.display_id} {self.status}>"


def _forget(run: Run) -> None:
    global ops
    if ops is not None:
        ops = [op for op in ops if op is not run]


def init(
    dir: str | os.PathLike[str] | None = None,
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    tags: str | Iterable[str] | None = None,
    run_id: int | str | None = None,
    resume: bool = False,
    fork_run_id: int | str | None = None,
    fork_step: int | None = None,
    inherit_config: bool | None = None,
    inherit_tags: bool | None = None,
) -> Run:
    """Start a run, resume one (``run_id``: numeric or display id), share one between processes
    (``run_id``: any other string), or fork one (``fork_run_id`` with ``fork_step``). The project is
    created on first use. The arguments are upstream's, in upstream's order."""
    global ops
    if (fork_run_id is not None) ^ (fork_step is not None):
        raise ValueError("fork_run_id and fork_step must be provided together")
    if fork_run_id is not None:
        fork_run_id = _fork_parent(fork_run_id)
    tag_list = [tags] if isinstance(tags, str) else list(tags or [])
    if os.environ.get("KONDUKTOR_JOB_NAME") and "konduktor" not in tag_list:
        tag_list.append("konduktor")
    mode = _mode(settings)
    env_run_id = os.environ.get("PLUTO_RUN_ID")
    if run_id is None and env_run_id:
        run_id = env_run_id
    common: dict[str, Any] = {"project": project, "dir": dir, "mode": mode}
    fresh: dict[str, Any] = {
        "name": name,
        "config": config,
        "tags": tag_list or None,
        "fork_run_id": fork_run_id,
        "fork_step": fork_step,
        "inherit_config": True if inherit_config is None else inherit_config,
        "inherit_tags": False if inherit_tags is None else inherit_tags,
    }
    if run_id is None:
        run = Run(runlane.init(**common, **fresh), resumed=False)
    elif isinstance(run_id, int) or (isinstance(run_id, str) and (run_id.isdigit() or _DISPLAY_ID.fullmatch(run_id))):
        # Upstream resumes a numeric or display id whether or not resume=True was passed.
        native = runlane.init(**common, run_id=run_id, resume=True, config=config, tags=tag_list or None)
        run = Run(native, resumed=True)
    elif isinstance(run_id, str):
        run = _create_or_attach(run_id, common, fresh, attach=resume or env_run_id is not None)
    else:
        raise TypeError(f"run_id must be a numeric id, a display id or an external id string, got {run_id!r}")
    if ops is None:
        ops = []
    ops.append(run)
    return run


def _fork_parent(fork_run_id: object) -> int | str:
    """Upstream's accepted forms (pluto/init.py ``_resolve_fork_run_id``): an int, a digit string or a
    display id."""
    if isinstance(fork_run_id, int) and not isinstance(fork_run_id, bool):
        return fork_run_id
    if isinstance(fork_run_id, str) and (fork_run_id.isdigit() or _DISPLAY_ID.fullmatch(fork_run_id)):
        return fork_run_id
    raise ValueError(f'fork_run_id must be a numeric run ID or display ID (e.g. "T0-123"), got: {fork_run_id!r}')


def _mode(settings: Mapping[str, Any] | None) -> str | None:
    if settings is None:
        return None
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict like {{'mode': 'noop'}}, got {type(settings).__name__}")
    mode = settings.get("mode")
    modes = {None: None, "noop": "disabled", "offline": "offline", "perf": None}
    if mode not in modes:
        raise ValueError(f"settings['mode'] must be 'noop', 'offline' or 'perf', got {mode!r}")
    return modes[mode]


def _create_or_attach(external_id: str, common: dict[str, Any], fresh: dict[str, Any], *, attach: bool) -> Run:
    """The multi-node pattern: every process passes the same external id; the first creates the run
    (its uid is the id), the others attach to it. Creation is the store's atomic uid insert, so two
    processes racing to create agree on one run: the loser sees the uid taken and attaches."""
    try:
        return Run(runlane.init(**common, **fresh, uid=external_id), run_id=external_id, resumed=False)
    except ValueError as refused:
        if not _exists(external_id, common["dir"]):
            raise  # refused for another reason (a bad id, a bad argument): say that one
        if not attach:
            raise RunExistsError(
                f"Run with externalId '{external_id}' already exists. Pass resume=True to pluto.init() to "
                "intentionally reattach, or use a unique run_id."
            ) from refused
    native = runlane.init(**common, run_id=external_id, resume=True)
    return Run(native, run_id=external_id, resumed=True, peer=True)


def _exists(uid: str, dir: str | os.PathLike[str] | None) -> bool:
    try:
        with runlane.Api(dir) as api:
            api.run(uid)
    except (runlane.RunNotFoundError, runlane.StoreNotFoundError, ValueError):
        return False
    return True


def log(data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """``run.log`` on the latest run this process started that is still open."""
    if not ops:
        raise RuntimeError("pluto.log() needs a run: call pluto.init() first")
    ops[-1].log(data, step=step, commit=commit)


def finish(op: Run | None = None) -> None:
    """Finish ``op``, or every run this process started that is still open."""
    if op is not None:
        op.finish()
        return
    for run in list(ops or []):
        run.finish()
