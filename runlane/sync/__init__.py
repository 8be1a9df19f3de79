"""``runlane sync``: copy runs with everything they hold from one store to another (an offline store to a
tracking server, a local store onto a team's), idempotently by uid and resumable after any interruption.

Each run is copied by ``runlane.sync.copy`` as a journal replay into the target, so a sync killed at any
moment and started again delivers every record exactly once. Runs are copied in the order they were
created, parents first: a fork (or a nested run) is copied once its parent is on the target, and skipped,
with the reason, when its parent could not be. A run still running on the source is left for a later
sync (its record stream is not final yet).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..config import ENV_URL, Settings, Tunables
from ..entities import RunInfo
from ..errors import RunlaneError, StoreNotFoundError, StoreUnavailableError
from ..naming import RunRef, normalize_project, parse_run_ref
from ..recovery import deliver_leftovers, recover
from ..spool import Spool
from ..statuses import TERMINAL
from ..store import open_store
from ..store.base import Store
from .copy import Retrying, SyncConflictError, copy_run, sync_writer_id

__all__ = ["Progress", "SyncConflictError", "SyncReport", "deliver_spool", "sync_runs", "sync_writer_id"]


class Progress(Protocol):
    """What a sync reports as it goes (the CLI draws a progress bar from it)."""

    def start(self, runs: int) -> None: ...

    def records(self, count: int) -> None: ...

    def run_done(self, label: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class SyncReport:
    """What a sync did, by the runs' display ids on the source."""

    copied: list[str] = field(default_factory=list)  # copied now, from the start
    continued: list[str] = field(default_factory=list)  # an earlier, interrupted sync was continued
    present: list[str] = field(default_factory=list)  # on the target in full already
    skipped: dict[str, str] = field(default_factory=dict)  # not copied, and why (running, parent missing)
    failed: dict[str, str] = field(default_factory=dict)  # the copy failed: the error
    records: int = 0  # records applied to the target by this sync
    leftovers: int = 0  # journals of ended processes of this machine delivered from the target's spool

    @property
    def ok(self) -> bool:
        return not self.failed

    def lines(self) -> list[str]:
        """The report for people: totals, then one line per run skipped or failed."""
        done = len(self.copied) + len(self.continued)
        lines = [
            f"synced {done} run(s) ({len(self.copied)} new, {len(self.continued)} continued), {self.records} records;"
            f" {len(self.present)} already on the target"
        ]
        if self.leftovers:
            lines.append(f"delivered {self.leftovers} journal(s) that earlier processes could not upload")
        lines += [f"skipped {label}: {why}" for label, why in self.skipped.items()]
        lines += [f"failed {label}: {why}" for label, why in self.failed.items()]
        return lines


def deliver_spool(target: Store, spool: Spool, tunables: Tunables) -> int:
    """Deliver to ``target`` what ended processes of this machine left unsent in ``spool`` (a run that
    outlived its server's outage, or started during one), exactly once; return how many journals it
    delivered. Journals that live processes still write are theirs."""
    before = {path.name for path in spool.journals()}
    deliver_leftovers(target, spool, tunables)
    return len(before - {path.name for path in spool.journals()})


def _selection(source: Store, project: str | None, run: str | int | None) -> list[RunInfo]:
    """The runs to copy, oldest first, with every ancestor (fork parents, nesting parents) they need."""
    if run is not None:
        chosen = [source.run(parse_run_ref(run))]
        if project is not None and chosen[0].project != normalize_project(project):
            raise ValueError(f"run {chosen[0].display_id} belongs to project {chosen[0].project!r}, not {project!r}")
    else:
        chosen = source.runs(project=project, metrics="all")
    wanted = {info.id: info for info in chosen}
    todo = list(chosen)
    while todo:
        info = todo.pop()
        for ancestor in (info.fork_run_id, info.parent_run_id):
            if ancestor is not None and ancestor not in wanted:
                wanted[ancestor] = source.run(RunRef("id", ancestor))
                todo.append(wanted[ancestor])
    # A run is created after its fork parent and nesting parent, so id order puts parents first.
    return [wanted[run_id] for run_id in sorted(wanted)]


def _copy_projects(source: Store, target: Store, runs: Sequence[RunInfo], every: bool, retry: Retrying) -> None:
    # Projects keep their display keys where the target has them free, so run ids read the same there.
    names = {info.project for info in runs}
    for project in source.projects():
        if not every and project.name not in names:
            continue
        try:
            retry(lambda p=project: target.create_project(p.name, key=p.key, exist_ok=True))  # type: ignore[misc]
        except ValueError:  # the key belongs to another project there: the target derives one
            retry(lambda p=project: target.create_project(p.name, exist_ok=True))  # type: ignore[misc]


def sync_runs(
    source: Store,
    target: Store,
    *,
    project: str | None = None,
    run: str | int | None = None,
    progress: Progress | None = None,
    patience_s: float = 60.0,
) -> SyncReport:
    """Copy the runs of ``source`` (only those of ``project``, or only ``run`` and its ancestors) to ``target``.

    The source should have been recovered (``runlane.recovery.recover``) so that runs of dead processes are
    complete and ended. A target that is briefly unavailable is retried for ``patience_s`` per call; after
    that ``StoreUnavailableError`` ends the sync (what it copied stays copied; the next sync continues).
    """
    retry = Retrying(patience_s)
    runs = _selection(source, project, run)
    _copy_projects(source, target, runs, every=project is None and run is None, retry=retry)
    report = SyncReport()
    by_id = {info.id: info for info in runs}
    unsynced: set[int] = set()  # ids of runs not on the target after this sync
    if progress is not None:
        progress.start(len(runs))

    def count(records: int) -> None:
        report.records += records
        if progress is not None:
            progress.records(records)

    try:
        for info in runs:
            label = info.display_id
            synced = False
            missing = [by_id[i].display_id for i in (info.fork_run_id, info.parent_run_id) if i in unsynced]
            if info.status not in TERMINAL:
                report.skipped[label] = f"still {info.status}; sync it once it has ended"
            elif missing:
                report.skipped[label] = f"its parent {missing[0]} is not on the target"
            else:
                try:
                    outcome = copy_run(
                        source,
                        target,
                        info,
                        parent_uid=by_id[info.parent_run_id].uid if info.parent_run_id is not None else None,
                        fork_parent_uid=by_id[info.fork_run_id].uid if info.fork_run_id is not None else None,
                        retry=retry,
                        on_records=count,
                    )
                except StoreUnavailableError:
                    raise  # the target is gone for longer than our patience: stop; a later sync continues
                except (RunlaneError, ValueError) as exc:
                    report.failed[label] = str(exc)
                else:
                    getattr(report, outcome).append(label)
                    synced = True
            if not synced:
                unsynced.add(info.id)
            if progress is not None:
                progress.run_done(label)
    finally:
        if progress is not None:
            progress.close()
    return report


def sync(
    dir: str | os.PathLike[str] | None,
    url: str,
    *,
    project: str | None = None,
    run: str | int | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """``runlane sync``: deliver what this machine's ended processes left unsent for the server at ``url``,
    then copy the runs of the local store (``dir``, else ``RUNLANE_DIR``, never the server ``RUNLANE_URL``
    names) there. ``url`` may also be ``sqlite:///dir`` (another local store; no spool to deliver then).
    Without a local store (none given, none in ``RUNLANE_DIR``) only the spool is delivered."""
    settings = Settings.resolve(dir, env={k: v for k, v in os.environ.items() if k != ENV_URL})
    remote = url.lower().startswith(("http://", "https://"))
    target_settings = Settings.resolve(url=url) if remote else Settings.resolve(url)
    with open_store(target_settings.store, api_key=target_settings.api_key) as target:
        delivered = 0
        if remote:  # what processes of this machine could not upload before they ended (an outage)
            delivered = deliver_spool(target, Spool(target_settings.spool, target_settings.store), settings.tunables)
        try:
            source = open_store(settings.store, create=False)
        except StoreNotFoundError:
            if dir is not None or project is not None or run is not None:
                raise
            report = SyncReport()  # no local store here: the spool was all there was to deliver
        else:
            with source:
                # Runs of dead processes: their last records in, then failed, so they are complete to copy.
                recover(source, Spool(settings.spool, settings.store), settings.tunables)
                report = sync_runs(source, target, project=project, run=run, progress=progress)
    report.leftovers = delivered
    return report
