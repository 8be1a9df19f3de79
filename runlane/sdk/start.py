"""``runlane.init()``: create or resume a run and hand back the object that writes to it."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .. import pending
from ..config import Settings
from ..entities import RunInfo
from ..errors import StoreUnavailableError
from ..journal import JournalFile
from ..liveness import current_pid_namespace, host_name, process_start_time
from ..naming import RunRef, check_uid, normalize_project, parse_run_ref
from ..recovery import close_dead_writers
from ..statuses import FAILED, RUNNING
from ..steps import as_integer
from ..store.base import Attached, ForkRequest, NewRun, Store, WriterSpec
from . import hooks
from . import writer as writers
from .capture.context import RunCapture, check_options
from .noop import NoOpRun
from .run import Run, _tag_list
from .values import plain_mapping

if TYPE_CHECKING:
    from ..blobs import BlobSink

_enabled = True


def set_enabled(enabled: bool) -> None:
    """Switch tracking on or off for this process; while off, ``init()`` returns a ``NoOpRun``."""
    global _enabled
    _enabled = bool(enabled)


def is_enabled() -> bool:
    return _enabled


def _optional_text(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{what} must be a string, got {type(value).__name__}")


@hooks.deferring_signals  # a SIGTERM or Ctrl-C during init() takes effect once the run exists
def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    run_id: int | str | None = None,
    resume: bool = False,
    *,
    alias: str | None = None,
    notes: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    storage: str | os.PathLike[str] | None = None,
    url: str | None = None,
    api_key: str | None = None,
    mode: str | None = None,
    parent_run_id: int | str | None = None,
    fork_run_id: int | str | None = None,
    fork_step: int | None = None,
    inherit_config: bool = True,
    inherit_tags: bool = False,
    uid: str | None = None,
    capture_console: bool = False,
    tqdm_mode: str = "smart",
    system_metrics_interval: float | Literal["auto"] | None = "auto",
    capture_env: bool = False,
    snapshot_code: bool = False,
    workspace_root: str | os.PathLike[str] | None = None,
    snapshot_format: str = "zip",
    force_snapshot: bool = False,
) -> Run | NoOpRun:
    """Start a run (or resume or fork one) and return it.

    ``project`` is a path like ``"cv/resnet50"`` (default ``"default"``; a fork defaults to its parent's).
    The store lives in ``dir`` (alias ``storage``), else ``$RUNLANE_DIR``, else ``./.runlane``.

    To append to an existing run pass ``run_id`` (numeric id, display id like ``"MMP-42"``, or uid)
    together with ``resume=True``. What dead processes left of the run in their journals is stored first,
    so the step counter continues after it. A process that resumes a run while its owner (the process that
    created it, or the last one to resume it with no owner left) still writes is a side process: its
    automatic end only closes its writer, never sets the run's status, and its first ``log()`` without
    ``step=`` warns that its counter may repeat the owner's steps.

    To fork one pass ``fork_run_id`` and ``fork_step`` together: the new run's parent is the ancestor that
    owns that step, its config is the parent's deep-merged with ``config`` (``inherit_config``), its tags
    optionally the union with the parent's (``inherit_tags``), and its steps continue at ``fork_step + 1``.

    ``uid`` names a new run (default: 32 random hex digits); a uid that is already taken is a
    ``ValueError``, never a merge into the existing run.

    Run context, all captured off the calling thread and stopped by ``finish()``/``close()``:

    - ``capture_console``: store what the process writes to stdout and stderr (also C extensions and
      child processes) as log lines, still showing it; ``tqdm_mode`` says what happens to progress bars:
      ``"smart"`` keeps each bar's final state, ``"all"`` every update, ``"none"`` drops them. One run per
      process at a time (``ConsoleBusyError`` otherwise).
    - ``system_metrics_interval``: seconds between samples of CPU, memory, disk and network I/O, this
      process's memory and NVIDIA GPUs, stored under ``sys/`` keys; ``None`` or ``0`` turns it off.
      ``"auto"`` (the default) samples every 10 s, except in a side process: one that attaches
      (``resume=True``) while the run's owner is still writing; the owner's samples are the run's.
    - ``capture_env``: record Python, platform, host, GPUs, installed packages, git state, the command line
      and environment variables, with secrets redacted.
    - ``snapshot_code``: record a zip of the workspace (``workspace_root``, default: the git work tree or
      the current directory); over 5,000 files or 50 MiB ``init()`` raises ``SnapshotTooLargeError``
      unless ``force_snapshot=True``. ``snapshot_format`` must be ``"zip"``.
    """
    dir, storage = dir or None, storage or None  # empty means not given (see Settings.resolve)
    if dir is not None and storage is not None and os.fspath(dir) != os.fspath(storage):
        raise ValueError("pass the store directory as dir= or storage=, not both")
    settings = Settings.resolve(dir if dir is not None else storage, mode, url=url, api_key=api_key)
    project_name = normalize_project(project) if (project is not None or run_id is None) else None
    _optional_text(name, "name")
    _optional_text(alias, "alias")
    _optional_text(notes, "notes")
    config_values = plain_mapping(config, "config") if config is not None else {}
    if isinstance(tags, str):
        raise TypeError(f"tags must be a list of strings, got one string {tags!r}; use tags=[{tags!r}]")
    tag_values = tuple(dict.fromkeys(_tag_list((tags,), "tags"))) if tags is not None else ()
    if resume and run_id is None:
        raise ValueError("resume=True needs run_id=: the numeric id, display id (like 'ABC-12') or uid to resume")
    if run_id is not None and not resume:
        raise ValueError(
            f"run_id={run_id!r} without resume=True: pass resume=True to append to that run, "
            "or leave run_id out to start a new one"
        )
    if uid is not None:
        check_uid(uid)
        if run_id is not None:
            raise ValueError("uid names a new run; to resume one pass run_id= and resume=True instead")
    ref = parse_run_ref(run_id) if run_id is not None else None
    parent_ref = parse_run_ref(parent_run_id) if parent_run_id is not None else None
    fork = _fork_request(fork_run_id, fork_step, inherit_config, inherit_tags, resuming=ref is not None)
    options = check_options(
        capture_console=capture_console,
        tqdm_mode=tqdm_mode,
        system_metrics_interval=system_metrics_interval,
        capture_env=capture_env,
        snapshot_code=snapshot_code,
        workspace_root=workspace_root,
        snapshot_format=snapshot_format,
        force_snapshot=force_snapshot,
    )

    if not _enabled or settings.mode == "disabled":
        return NoOpRun(project_name, name, config_values, tag_values)

    hooks.install()  # before anything exists, so that a signal from here on finds the run once it does
    # Claims the console and checks the snapshot's limits: may refuse the run before it exists.
    capture = RunCapture(options, settings.dir if settings.dir is not None else settings.spool)
    capture.prepare()
    try:
        store_writer = writers.acquire(settings)
    except BaseException:
        capture.stop()
        raise
    blobs = blob_sink(settings, store_writer)
    writer_id = os.urandom(16).hex()
    journal_name = store_writer.spool.journal_name(os.getpid(), writer_id)
    journal_path = store_writer.journal_path(journal_name)
    journal_file = None
    try:
        journal_file = JournalFile(journal_path)
        pid = os.getpid()
        spec = WriterSpec(writer_id, host_name(), pid, process_start_time(pid), journal_name, current_pid_namespace())
        registered = True
        if ref is not None:

            def attach(store: Store) -> Attached:
                run_id = store.resolve(ref)
                # A long-lived process (a notebook, a service, a sweep driver) ran recovery when it first
                # opened the store, long before: replay what writers that died since left of this run, so the
                # step counter continues after everything the store will ever hold of it.
                close_dead_writers(store, store_writer.spool.store_dir, store_writer.tunables, [run_id])
                return store.attach(RunRef("id", run_id), spec, project=project_name)

            attached = store_writer.call(functools.partial(_patiently, attach, settings.dir is None))
        else:
            remote = settings.dir is None
            wanted = NewRun(
                uid=uid if uid is not None else os.urandom(16).hex(),
                project=project_name or "default",
                name=name,
                alias=alias,
                notes=notes,
                config=config_values,
                tags=tag_values,
                # A remote run may reach its server late (an outage): it keeps the time it began here.
                created_at=time.time() if remote else None,
                started_at=None,
            )
            wanted = dataclasses.replace(wanted, started_at=wanted.created_at)

            def create(store: Store) -> Attached:
                new = dataclasses.replace(
                    wanted, parent_run_id=store.resolve(parent_ref) if parent_ref is not None else None
                )
                if fork is None:
                    return Attached(store.create_run(new, spec), 0, True)
                # Replay what dead writers left of the chain first: the range a run may be forked at is what
                # the store will hold of it, not what a long-lived process saw when it first opened the store.
                chain = [node.run_id for node in store.ancestry(store.resolve(fork.ref))]
                close_dead_writers(store, store_writer.spool.store_dir, store_writer.tunables, chain)
                forked = dataclasses.replace(new, fork=dataclasses.replace(fork, keep_project=project is not None))
                info = store.create_run(forked, spec)
                assert info.fork_step is not None
                return Attached(info, info.fork_step + 1, True)

            try:
                attached = store_writer.call(functools.partial(_patiently, create, remote))
            except StoreUnavailableError:
                if not remote or fork is not None:
                    raise
                # SPEC.md 6.2: init() does not fail while the server is down. The run is registered by its uid
                # once the server answers (runlane.pending); until then its id and display id are unknown.
                pending.defer_create(journal_path, wanted, spec, parent_ref)
                attached = Attached(_provisional(wanted), 0, True)
                registered = False
        info = attached.info
        store_writer.ring()  # the drain process finds the new writer in the store
    except BaseException:
        capture.stop()
        if journal_file is not None:
            journal_file.close()
            journal_path.unlink(missing_ok=True)
        writers.release(store_writer)
        raise
    run = Run(
        info,
        store_writer=store_writer,
        writer_id=writer_id,
        journal_file=journal_file,
        next_step=attached.next_step,
        store=settings.store,
        finish_timeout_s=settings.finish_timeout_s,
        blobs=blobs,
        capture=capture,
        owner=attached.owner,
        registered=registered,
    )
    # "auto": a side process (one that attached beside the run's live owner: an eval job, an uploader)
    # leaves the system metrics to the owner, so a run's samples come from one machine.
    capture.sample_system_metrics(attached.owner)
    try:
        capture.start(run._record, run._label, functools.partial(run._open_side_journal, spec), blobs)
    except BaseException as exc:
        # The run exists: end it with the reason rather than leave it running without its capture (a side
        # process only closes its writer: its failure is not the run's).
        run._end_automatically(FAILED, f"could not start capturing the run's context: {hooks.describe(exc)}")
        raise
    if ref is not None:
        # Resuming with config or tags adds to what the run has, like update_config/add_tags would.
        if config_values:
            run.update_config(config_values)
        if tag_values:
            run.add_tags(tag_values)
    return run


def _patiently(call: Callable[[Store], Attached], remote: bool, store: Store) -> Attached:
    """``call(store)``; on a remote store, ``StoreUnavailableError`` once the server has not answered for a
    few seconds, instead of the store's usual wait (init() must not hang on a server that is down)."""
    if not remote:
        return call(store)
    try:
        with store.patience(writers.LIFECYCLE_PATIENCE_S):
            return call(store)
    except StoreUnavailableError as exc:
        raise StoreUnavailableError(
            f"{exc}; resuming or forking a run needs its server (the step to continue from, the fork's parent)"
        ) from exc


def _provisional(new: NewRun) -> RunInfo:
    """What a run started while its server is unreachable knows of itself: all but its ids."""
    began = new.created_at if new.created_at is not None else time.time()
    return RunInfo(
        id=0, uid=new.uid, display_id="", project=normalize_project(new.project), name=new.name, alias=new.alias,
        notes=new.notes, status=RUNNING, status_reason=None, created_at=began, started_at=began, ended_at=None,
        config=new.config, tags=new.tags, summary={}, primary_metric=None, primary_mode=None, best_value=None,
        best_step=None, parent_run_id=None, fork_run_id=None, fork_step=None,
    )  # fmt: skip


def blob_sink(settings: Settings, link: writers.StoreWriter | None = None) -> BlobSink:
    """Where this process's runs put their blobs (images, code snapshots, environment captures).

    The SDK's one seam for blobs: a run and its capture threads write blobs only through what this
    returns. For the embedded store, the store directory's blobs (written in place, no store call); for a
    store named by a URL, the spool of the process's ``link`` to it, delivered with the journal.
    """
    if settings.dir is not None:
        from ..blobs import LocalBlobs

        return LocalBlobs(settings.dir)
    if link is None:
        raise ValueError(f"the blobs of {settings.store} wait in the spool of a link to the store (writers.acquire)")
    from ..blobs import LocalBlobs

    # In the spool, next to the journal: log_image() never waits for the network, and works while the server
    # is down; whoever delivers the batch that names a blob puts it first (runlane.spool_blobs).
    return LocalBlobs(link.spool.dir)


def _fork_request(
    fork_run_id: int | str | None, fork_step: object, inherit_config: object, inherit_tags: object, *, resuming: bool
) -> ForkRequest | None:
    """Validate the fork arguments that need no store; the store checks the step against the parent."""
    if fork_run_id is None and fork_step is None:
        return None
    if fork_run_id is None or fork_step is None:
        given, missing = ("fork_step", "fork_run_id") if fork_run_id is None else ("fork_run_id", "fork_step")
        raise ValueError(f"{given} needs {missing}: pass both fork_run_id and fork_step to fork a run, or neither")
    if resuming:
        raise ValueError("a run is either resumed (run_id, resume=True) or forked (fork_run_id, fork_step), not both")
    step = as_integer(fork_step)
    if step is None:
        raise ValueError(f"fork_step must be an integer step, got {type(fork_step).__name__} {fork_step!r}")
    for flag, value in (("inherit_config", inherit_config), ("inherit_tags", inherit_tags)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    return ForkRequest(parse_run_ref(fork_run_id), step, bool(inherit_config), bool(inherit_tags))
