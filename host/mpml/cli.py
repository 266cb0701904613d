"""The `mpml` command: a thin layer over the host package's API."""

from __future__ import annotations

import argparse
import sys

from . import __version__, virtual


def _fmt_bytes(n: int) -> str:
    return f"{n // 1024} KiB" if n else "-"


def cmd_virtual_start(args: argparse.Namespace) -> int:
    board = virtual.start(args.kind, name=args.name, fresh=args.fresh, timeout=args.timeout)
    print(board.port)
    return 0


def cmd_virtual_stop(args: argparse.Namespace) -> int:
    if args.all or not args.names:
        stopped = virtual.stop_all()
    else:
        stopped = [n for n in args.names if virtual.stop(n)]
    for name in stopped:
        print(f"stopped {name}", file=sys.stderr)
    return 0


def cmd_virtual_list(args: argparse.Namespace) -> int:
    started = {b.name: b for b in virtual.boards()}
    rows = [("name", "board", "arch", "status", "port", "filesystem", "stands for")]
    for kind, spec in virtual.specs().items():
        build = spec.build_status()
        built = "not built" if not build else ("build failed" if not build.get("ok") else "")
        named = [b for b in started.values() if b.kind == kind] or [None]
        for b in named:
            status = built or (b.status if b else "stopped")
            if b and b.state.get("crashes"):
                status += f" ({b.state['crashes']} crashes)"
            port = b.port if b and b.status in ("running", "starting", "crashed") else "-"
            rows.append((b.name if b else kind, kind, spec.arch, status, port, spec.filesystem, spec.stands_for))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    # Imported lazily: the importer pulls in numpy and the tflite schema package.
    from pathlib import Path

    from .blob import BlobError, save
    from .importers.tflite import TFLiteImportError, load_tflite

    src = Path(args.model)
    if src.suffix.lower() != ".tflite":
        print(f"mpml: {src}: only .tflite models can be imported", file=sys.stderr)
        return 1
    out = Path(args.output) if args.output else src.with_suffix(".mpml")
    try:
        graph = load_tflite(src, name=args.name)
        if args.labels:
            labels = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
            graph.outputs[0].labels = labels
        data = save(graph, out)
    except (TFLiteImportError, BlobError, OSError) as e:
        print(f"mpml: {e}", file=sys.stderr)
        return 1
    from .blob import read_blob
    arena = read_blob(data).arena_size
    counts: dict[str, int] = {}
    for op in graph.ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    print(f"{out}: {len(data)} bytes, arena {arena} bytes, {len(graph.ops)} ops ({summary})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mpml", description="TinyML for MicroPython boards.")
    ap.add_argument("--version", action="version", version=f"mpml {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("virtual", help="virtual boards that stand in for real ones")
    vsub = v.add_subparsers(dest="virtual_command", required=True)
    s = vsub.add_parser("start", help="start a virtual board and print its serial port")
    s.add_argument("kind", choices=sorted(virtual.specs()), help="which board")
    s.add_argument("--name", help="name of this board (default: the kind); lets several of a kind run")
    s.add_argument("--fresh", action="store_true", help="erase the board's filesystem first")
    s.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the REPL")
    s.set_defaults(func=cmd_virtual_start)
    st = vsub.add_parser("stop", help="stop virtual boards (all when none named)")
    st.add_argument("names", nargs="*")
    st.add_argument("--all", action="store_true")
    st.set_defaults(func=cmd_virtual_stop)
    ls = vsub.add_parser("list", help="list the virtual boards, their state and serial ports")
    ls.set_defaults(func=cmd_virtual_list)

    im = sub.add_parser("import", help="convert an int8 TFLite model to an .mpml blob",
                        description="Convert a fully int8-quantized .tflite model to an .mpml blob that computes "
                                    "exactly what the TFLite Micro interpreter computes (docs/reference-and-import.md).")
    im.add_argument("model", help="the .tflite file")
    im.add_argument("-o", "--output", help="the .mpml file to write (default: beside the model)")
    im.add_argument("--name", help="the model's name in the blob (default: the file's stem)")
    im.add_argument("--labels", help="a text file with one class name per line, for the first output")
    im.set_defaults(func=cmd_import)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except virtual.VirtualBoardError as e:
        print(f"mpml: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
