"""Registrations that wait for their store: a run started while its server was unreachable.

``init()`` on a remote store does not fail when the server is down (SPEC.md 6.2): the run gets its uid at
once, its records go to its journal in the spool as usual, and what the store should have been told (create
this run, add this writer) is written next to the journal as ``<pid>.<writer>.start``. Whoever next has the
store at hand performs it before it applies the journal: the process's drain once the server answers, the
run's own end (``finish()``), the next process that opens the store (its recovery delivers a dead process's
leftovers) and ``runlane sync``. Both calls are idempotent by the client-minted ids (``create_run`` by uid
and writer, ``add_writer`` by writer), so several of them doing it at once, or one dying half-way, is
harmless; the file is deleted once the store has the registration.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import msgpack

from .diagnostics import log
from .journal import SUFFIX as JOURNAL_SUFFIX
from .journal import in_use
from .liveness import is_alive
from .naming import RunRef
from .store.base import NewRun, Store, WriterSpec

SUFFIX = ".start"
REFUSED = ".refused"  # appended to a registration the store refused: kept for inspection, never retried


def path_of(journal: Path) -> Path:
    """The pending registration of the writer whose journal is ``journal``."""
    return journal.with_suffix(SUFFIX)


def is_pending(journal: Path) -> bool:
    return path_of(journal).exists()


def _write(journal: Path, request: dict[str, Any]) -> None:
    path = path_of(journal)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_bytes(msgpack.packb(request, use_bin_type=True))
    os.replace(temp, path)  # whole or absent: a reader never sees half a request


def defer_create(journal: Path, new: NewRun, writer: WriterSpec, parent: RunRef | None) -> None:
    """Remember to create ``new`` with ``writer`` as its owner (``parent``: the run it nests in)."""
    fields = {name: getattr(new, name) for name in ("uid", "project", "name", "alias", "notes", "status")}
    fields.update(config=new.config, tags=list(new.tags), created_at=new.created_at, started_at=new.started_at)
    _write(
        journal,
        {
            "kind": "create",
            "run": fields,
            "parent": None if parent is None else [parent.kind, parent.value],
            "writer": list(writer),
        },
    )


def defer_add_writer(journal: Path, run_uid: str, writer: WriterSpec) -> None:
    """Remember to register ``writer`` (the console tee's journal) on the run ``run_uid``."""
    _write(journal, {"kind": "add_writer", "run_uid": run_uid, "writer": list(writer)})


def register(store: Store, journal: Path) -> None:
    """Perform the journal's pending registration, if any, then forget it. ``StoreUnavailableError`` (the
    server is still down) leaves it for later; a refusal (``ValueError``, a parent that does not exist)
    propagates and keeps the file, so nothing is lost and the reason is reported where it happened."""
    path = path_of(journal)
    try:
        request = msgpack.unpackb(path.read_bytes(), raw=False)
    except FileNotFoundError:
        return
    writer = WriterSpec(*request["writer"])
    if request["kind"] == "create":
        fields = dict(request["run"])
        fields["tags"] = tuple(fields["tags"])
        parent = request["parent"]
        if parent is not None:
            fields["parent_run_id"] = store.resolve(RunRef(parent[0], parent[1]))
        store.create_run(NewRun(**fields), writer)
    else:
        run_id = store.resolve(RunRef("uid", request["run_uid"]))
        if not any(open_writer.id == writer.id for open_writer in store.open_writers()):
            store.add_writer(run_id, writer)  # not idempotent by itself: registered once, looked up after
    path.unlink(missing_ok=True)


def abandoned(journal: Path) -> bool:
    """Whether the process that started this pending registration is gone and nothing appends to its journal."""
    try:
        request = msgpack.unpackb(path_of(journal).read_bytes(), raw=False)
    except FileNotFoundError:
        return False
    writer = WriterSpec(*request["writer"])
    return not is_alive(writer.pid, writer.pid_started) and not in_use(journal)


def register_all(store: Store, spool_dir: Path, owner_pid: int | None = None, *, only_abandoned: bool = False) -> None:
    """Every pending registration in ``spool_dir`` (only the process ``owner_pid``'s if given; only those of
    processes that are gone with ``only_abandoned``), runs before the side writers that join them."""
    prefix = "" if owner_pid is None else f"{owner_pid}."
    try:
        names = [name for name in os.listdir(spool_dir) if name.endswith(SUFFIX) and name.startswith(prefix)]
    except FileNotFoundError:
        return
    requests = []
    for name in sorted(names):
        try:
            kind = msgpack.unpackb((spool_dir / name).read_bytes(), raw=False)["kind"]
        except FileNotFoundError:
            continue  # registered by someone else meanwhile
        if only_abandoned and not abandoned((spool_dir / name).with_suffix(JOURNAL_SUFFIX)):
            continue
        requests.append((kind != "create", spool_dir / name))
    for _, path in sorted(requests):
        try:
            register(store, path.with_suffix(JOURNAL_SUFFIX))
        except (ValueError, LookupError) as exc:  # refused for good: kept aside (not asked again), said, next
            refused = path.with_name(path.name + REFUSED)
            with contextlib.suppress(FileNotFoundError):
                path.rename(refused)
            log.error(
                "runlane: the store refused the registration in %s: %s; it and its journal are kept", refused, exc
            )
