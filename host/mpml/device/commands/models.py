"""`mpml push-model`, `mpml models`, `mpml rm`, `mpml rollback`: thin over mpml.device.models."""

from __future__ import annotations

import sys

from mpml.device.connection import BoardError
from mpml.device.ports import add_port_argument

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "push-model", help="send a .mpml model to the board's /models (checked, verified, old one kept)",
        description="Check that the model fits the board (format version, ops, arena + blob against the free "
                    "heap measured there, free flash), send it compressed in big chunks, have the board verify "
                    "its SHA-256, then swap it in as /models/NAME.mpml; the previous version stays for "
                    "`mpml rollback`. Anything going wrong leaves the board's models as they were.")
    p.add_argument("model", help="the .mpml file")
    p.add_argument("--name", help="the name on the board (default: the file's name without .mpml)")
    add_port_argument(p)
    p.add_argument("--all", action="store_true",
                   help="push to every attached board (USB and running virtual boards) at once, one line each")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_push_model)

    ls = sub.add_parser("models", help="the models on the board, with version, size, hash and push time")
    add_port_argument(ls)
    ls.set_defaults(func=cmd_models)

    rm = sub.add_parser("rm", help="remove a model (and its previous version) from the board")
    rm.add_argument("name")
    add_port_argument(rm)
    rm.set_defaults(func=cmd_rm)

    rb = sub.add_parser("rollback", help="go back to the model's previous version (again: forward)")
    rb.add_argument("name")
    add_port_argument(rb)
    rb.set_defaults(func=cmd_rollback)


def cmd_push_model(args) -> int:
    from mpml.device.models import push_all, push_model

    if args.all:
        if args.port:
            raise BoardError("--all and --port exclude each other")
        results = push_all(args.model, name=args.name)
        return 0 if all(not isinstance(r, Exception) for r in results) else 1
    progress = not args.quiet and sys.stderr.isatty()
    r = push_model(args.port, args.model, name=args.name, progress=progress)
    print(r.line())
    return 0


def cmd_models(args) -> int:
    from mpml.device.models import list_models

    rows = [("name", "version", "size", "sha256", "pushed", "previous")]
    for name, e in list_models(args.port):
        prev = e.get("prev") or {}
        rows.append((name, e.get("version") or "-", str(e.get("file_size", e.get("size", "-"))),
                     (e.get("sha256") or "?")[:12], e.get("pushed") or "-",
                     ((prev.get("sha256") or "?")[:12] + (f" ({prev['version']})" if prev.get("version") else ""))
                     if e.get("has_prev") else "-"))
    if len(rows) == 1:
        print("no models on the board", file=sys.stderr)
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_rm(args) -> int:
    from mpml.device.models import rm_model

    rm_model(args.port, args.name)
    print(f"removed {args.name}", file=sys.stderr)
    return 0


def cmd_rollback(args) -> int:
    from mpml.device.models import rollback_model

    e = rollback_model(args.port, args.name)
    print(f"{args.name} is now {(e.get('sha256') or '?')[:12]}"
          + (f" (version {e['version']}, pushed {e.get('pushed', '?')})" if e.get("version") else ""))
    return 0
