"""The ``runlane`` command: a thin skin over ``runlane.Api``.

Every command takes ``--dir`` (else ``$RUNLANE_DIR``, else ``./.runlane``) or ``--url`` (a runlane server,
else ``$RUNLANE_URL``; its key from ``$RUNLANE_API_KEY``) and ``--json`` for scripts.
Human output shows every string a user chose (names, tags, notes, reasons) with its control characters
escaped (``\n``, ``\x1b``): a name must not forge table rows or send escape sequences to the terminal.
``--json`` prints strings exactly (JSON escapes what needs it).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, wire
from .entities import Lineage, RunInfo
from .errors import RunlaneError


def _escape_table() -> dict[int, str]:
    named = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
    table = {code: named.get(code, f"\\x{code:02x}") for code in (*range(0x20), *range(0x7F, 0xA0))}
    # Line and paragraph separators end a line in some terminals; bidirectional controls reorder what is
    # shown ("Trojan Source"), so a name could display as something else.
    for code in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[code] = f"\\u{code:04x}"
    return table


_ESCAPES = _escape_table()


def _safe(text: str) -> str:
    """``text`` with control characters escaped, for human output (idempotent: escapes are printable)."""
    return text.translate(_ESCAPES)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _table(rows: list[list[str]]) -> str:
    rows = [[_safe(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows)


def _run_json(run: RunInfo) -> dict[str, Any]:
    return wire.to_wire(run)


def _print_json(value: Any) -> None:
    print(wire.dumps(value))


def cmd_ls(args: argparse.Namespace) -> int:
    from .api import Api

    with Api(args.dir, url=args.url) as api:
        # Only the primary metric's aggregates: a listing must not cost more for runs with more metrics
        # (`show` has them all). Its JSON holds the same, so "metrics" has at most that one metric.
        runs = api.runs(project=args.project, status=args.status, tags=args.tag, metrics="primary")
    if args.json:
        _print_json([_run_json(run) for run in runs])
        return 0
    if not runs:
        print("no runs" + (f" in project {_safe(repr(args.project))}" if args.project else ""))
        return 0
    rows = [["ID", "RUN", "PROJECT", "NAME", "STATUS", "STARTED", "DURATION", "BEST", "TAGS"]]
    for run in runs:
        best = f"{run.primary_metric}={_number(run.best_value)}" if run.primary_metric else "-"
        rows.append(
            [
                str(run.id),
                run.display_id,
                run.project,
                run.name or run.alias or "-",
                run.status,
                _when(run.started_at),
                _duration(run.duration),
                best,
                ",".join(run.tags) or "-",
            ]
        )
    print(_table(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .api import Api

    with Api(args.dir, url=args.url) as api:
        run = api.run(args.ref)
        lineage = api.lineage(run.id)
    if args.json:
        detail = _run_json(run)
        detail["lineage"] = {
            "root": lineage.root.display_id,
            "ancestors": [_lineage_entry(a) for a in lineage.ancestors],
            "children": [_lineage_entry(c) for c in lineage.children],
        }
        _print_json(detail)
        return 0
    lines = [
        f"{run.display_id}  {run.name or ''}".rstrip(),
        f"  id        {run.id}   uid {run.uid}",
        f"  project   {run.project}",
        f"  status    {run.status}" + (f"  ({run.status_reason})" if run.status_reason else ""),
        f"  started   {_when(run.started_at)}   ended {_when(run.ended_at)}   duration {_duration(run.duration)}",
    ]
    if run.alias:
        lines.append(f"  alias     {run.alias}")
    if run.notes:
        lines.append(f"  notes     {run.notes}")
    if run.tags:
        lines.append(f"  tags      {', '.join(run.tags)}")
    if run.parent_run_id is not None:
        lines.append(f"  parent    run {run.parent_run_id} (nested in it)")
    if lineage.ancestors or lineage.children:
        lines.append("  lineage   " + _lineage_line(lineage))
        for child in lineage.children:
            lines.append(
                f"  fork      {child.display_id} at step {child.fork_step}" + (f"  {child.name}" if child.name else "")
            )
    if run.primary_metric:
        lines.append(
            f"  primary   {run.primary_metric} ({run.primary_mode}): best {_number(run.best_value)}"
            f" at step {run.best_step if run.best_step is not None else '-'}"
        )
    for host in {(w.host, w.pid) for w in run.writers}:
        lines.append(f"  writer    pid {host[1]} on {host[0]}")
    if run.config:
        lines.append("  config    " + wire.dumps(run.config))
    if run.summary:
        lines.append("  summary   " + wire.dumps(run.summary))
    if run.metrics:
        rows = [["METRIC", "LAST", "MIN", "MAX", "POINTS", "STEPS"]]
        for key, series in run.metrics.items():
            rows.append(
                [
                    key,
                    _number(series.last_value),
                    _number(series.min),
                    _number(series.max),
                    str(series.count),
                    f"{series.first_step}-{series.last_step}",
                ]
            )
        lines.append("")
        lines.extend("  " + line for line in _table(rows).splitlines())
    print("\n".join(_safe(line) for line in lines))
    return 0


def _lineage_entry(run: RunInfo) -> dict[str, Any]:
    # A run in a lineage listing: enough to name it and its fork step (its full shape is `runlane show` of it).
    return {"id": run.id, "display_id": run.display_id, "fork_step": run.fork_step}


def _lineage_line(lineage: Lineage) -> str:
    """``A-1 -> A-2 @50 -> [A-3 @150]``: the chain from the root to this run, with fork steps."""
    parts = []
    for run in (*lineage.ancestors, lineage.run):
        label = run.display_id + (f" @{run.fork_step}" if run.fork_step is not None else "")
        parts.append(f"[{label}]" if run.id == lineage.run.id else label)
    return " -> ".join(parts)


def cmd_delete(args: argparse.Namespace) -> int:
    from .api import Api

    with Api(args.dir, url=args.url) as api:
        run = api.run(args.ref)
        if not args.yes:
            if not sys.stdin.isatty():
                print("runlane: error: refusing to delete without confirmation; pass --yes", file=sys.stderr)
                return 1
            answer = input(f"Delete run {run.display_id} ({_safe(run.name or run.project)}) and all it logged? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("not deleted")
                return 1
        api.delete_run(run.id)
    print(f"deleted {run.display_id}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from .sync import sync
    from .sync.progress import progress_for

    report = sync(args.dir, args.url, project=args.project, run=args.run, progress=progress_for(sys.stderr))
    if args.json:
        _print_json(
            {
                "copied": report.copied,
                "continued": report.continued,
                "present": report.present,
                "skipped": report.skipped,
                "failed": report.failed,
                "records": report.records,
                "leftovers": report.leftovers,
            }
        )
    else:
        for line in report.lines():
            print(_safe(line))
    return 0 if report.ok else 1


def cmd_server(args: argparse.Namespace) -> int:
    from .server.serve import serve

    return serve(args.store, host=args.host, port=args.port, workers=args.workers)


def cmd_ui(args: argparse.Namespace) -> int:
    from .config import Settings
    from .server.serve import serve_ui

    directory = Settings.resolve(args.dir).dir
    if directory is None:
        raise ValueError("runlane ui serves a local store: pass --dir (RUNLANE_DIR names a URL); see runlane server")
    return serve_ui(directory, port=args.port, open_browser=not args.no_browser)


def cmd_recover(args: argparse.Namespace) -> int:
    from .api import Api

    with Api(args.dir) as api:
        failed = [api.run(run_id) for run_id in api.recover()]
    if args.json:
        _print_json([_run_json(run) for run in failed])
    elif failed:
        for run in failed:
            print(f"{run.display_id} failed: {_safe(run.status_reason or '')}")
    else:
        print("nothing to recover")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from .store import open_store
    from .store.keys import check_key_name, hash_secret, new_secret

    with open_store(args.store, create=True) as store:
        if args.action == "create":
            secret = new_secret()
            key = store.create_api_key(check_key_name(args.name), hash_secret(secret), read_only=args.read_only)
            access = "read-only" if key.read_only else "read-write"
            print(f"created {access} API key {key.name!r}; it is shown only now (the store keeps its hash):")
            print(secret)  # alone on the last line: `KEY=$(runlane keys create ... | tail -n 1)`
        elif args.action == "revoke":
            key = store.revoke_api_key(args.name)
            print(f"revoked API key {key.name!r}")
        else:
            keys = store.api_keys()
            if args.json:
                _print_json([key._asdict() for key in keys])
            elif not keys:
                print("no API keys (the server needs none, and serves loopback only)")
            else:
                rows = [["NAME", "ACCESS", "CREATED", "REVOKED"]]
                for key in keys:
                    access = "read-only" if key.read_only else "read-write"
                    rows.append([key.name, access, _when(key.created_at), _when(key.revoked_at)])
                print(_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runlane", description="Experiment tracking that never loses a point.")
    parser.add_argument("--version", action="version", version=f"runlane {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        where = sub.add_mutually_exclusive_group()
        where.add_argument("--dir", help="store directory (default: $RUNLANE_DIR or ./.runlane)")
        where.add_argument("--url", help="a runlane server, http(s)://host:port (default: $RUNLANE_URL if set)")
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return sub

    ls = command("ls", "List runs, newest first.")
    ls.add_argument("--project", help="only runs of this project")
    ls.add_argument("--status", action="append", help="only runs with this status (repeatable)")
    ls.add_argument("--tag", action="append", help="only runs with this tag (repeatable: all must match)")
    ls.set_defaults(handler=cmd_ls)

    show = command("show", "Show one run: status, config, summary, metrics.")
    show.add_argument("ref", help="numeric id, display id (like ABC-12) or uid")
    show.set_defaults(handler=cmd_show)

    delete = command("delete", "Delete a run and everything logged to it (not while it has forks).")
    delete.add_argument("ref", help="numeric id, display id (like ABC-12) or uid")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=cmd_delete)

    about = "Copy runs (everything they hold) to a tracking server or another store, resumably."
    sync = commands.add_parser("sync", help=about, description=about)
    sync.add_argument("--dir", help="the store to copy from (default: $RUNLANE_DIR or ./.runlane)")
    sync.add_argument("--url", required=True, help="where to copy to: a server's http(s)://host:port or sqlite:///dir")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.add_argument("--project", help="only runs of this project")
    sync.add_argument("--run", help="only this run (numeric id, display id or uid) and the runs it forks or nests in")
    sync.set_defaults(handler=cmd_sync)

    server = commands.add_parser(
        "server", help="Serve the HTTP API and the web UI over a store.", description="Serve the HTTP API and the"
        " web UI over a store (a directory, sqlite:///dir). Binds 127.0.0.1 unless --host says otherwise; any"
        " other address needs API keys (`runlane keys create`).",
    )  # fmt: skip
    server.add_argument("--store", required=True, help="the store: a directory or sqlite:///dir")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    server.add_argument("--workers", type=int, default=1, help="server processes sharing the socket (default 1)")
    server.set_defaults(handler=cmd_server)

    keys = commands.add_parser(
        "keys", help="Create, list and revoke the API keys a server over a store requires.",
        description="Create, list and revoke API keys. Keys live (hashed) in the store the server serves; once"
        " one exists, every request but the health check needs one (Authorization: Bearer KEY).",
    )  # fmt: skip
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    store_help = "the store the server serves: a directory or sqlite:///dir"
    create = actions.add_parser("create", help="make a key and print it (alone on the last line)")
    create.add_argument("name", help="a name for the key (letters, digits, '.', '_', '-')")
    create.add_argument("--read-only", action="store_true", help="the key may read but not write")
    create.add_argument("--store", required=True, help=store_help)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--store", required=True, help=store_help)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    revoke = actions.add_parser("revoke", help="revoke a key: it is refused from the next request on")
    revoke.add_argument("name", help="the key's name")
    revoke.add_argument("--store", required=True, help=store_help)
    keys.set_defaults(handler=cmd_keys, json=False)

    ui = commands.add_parser("ui", help="Browse the local store in a web browser (127.0.0.1 only).")
    ui.add_argument("--dir", help="store directory (default: $RUNLANE_DIR or ./.runlane)")
    ui.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    ui.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a web browser")
    ui.set_defaults(handler=cmd_ui)

    recover = command(
        "recover",
        "Store what dead processes left in their journals and mark the runs they abandoned failed"
        " (every init() does this too).",
    )
    recover.set_defaults(handler=cmd_recover)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except (RunlaneError, ValueError, OSError) as exc:  # OSError: a directory it may not read, ...
        print(f"runlane: error: {_safe(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
