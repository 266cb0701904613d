"""`mpml devices` and `mpml install`: which boards are there, and putting the runtime on one."""

from __future__ import annotations

import json
import sys

from mpml.device.board import Board
from mpml.device.connection import BoardError
from mpml.device.ports import add_port_argument, list_serial_ports

__all__ = ["register", "cmd_devices", "cmd_install", "device_rows"]


def register(sub) -> None:
    dv = sub.add_parser(
        "devices", help="boards attached (USB serial) and virtual boards running, with what they run",
        description="List attached USB serial boards and running virtual boards: port, USB VID:PID, "
                    "description, MicroPython version, native arch, free heap, free flash, and the mpml "
                    "runtime's version on the board ('-' when not installed). Each board is opened (a "
                    "running program is interrupted) unless --no-probe.")
    dv.add_argument("--no-probe", action="store_true", help="only list ports; do not open the boards")
    dv.add_argument("--json", action="store_true", help="one JSON object per board, for scripts")
    dv.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each board (default 5)")
    dv.set_defaults(func=cmd_devices)

    ins = sub.add_parser(
        "install", help="install or update the mpml runtime on a board (only what differs is sent)",
        description="Put this host's mpml device runtime in the board's /lib/mpml: the package compiled "
                    "with mpy-cross for the board's arch and .mpy version, and the C kernels (_native.mpy) "
                    "for its arch, or the viper kernels only. The board hashes what it has (SHA-256); "
                    "files already there unchanged are not sent, files the runtime no longer has are removed.")
    add_port_argument(ins)
    ins.add_argument("--board", metavar="NAME",
                     help="a board file in boards/ (arch and backend from it; default: the one matching the "
                          "board); also writes its [[sensors]] to /lib/mpml/board.json, which "
                          "mpml.sources.from_config(name) and --source NAME read")
    ins.add_argument("--backend", choices=("native", "viper"),
                     help="native: C kernels (needs build/kernels/ARCH/_native.mpy); viper: machine code from "
                          "mpy-cross only (default: the board file's, else native where built)")
    ins.add_argument("--force", action="store_true", help="send every file even if the board has it")
    ins.add_argument("-q", "--quiet", action="store_true", help="no per-file lines")
    ins.set_defaults(func=cmd_install)


def _kb(n) -> str:
    if n is None:
        return "-"
    if n >= 10 * 1024 * 1024 * 1024:
        return "unlimited"  # the unix board's host disk
    return f"{n / 1024:.0f}K" if n < 10 * 1024 * 1024 else f"{n / (1024 * 1024):.0f}M"


def device_rows(probe: bool = True, timeout: float = 5.0) -> list[dict]:
    """One dict per board: USB serial ports first, then running virtual boards."""
    from mpml import virtual

    targets = []
    for p in list_serial_ports():
        targets.append(({"board": p.device, "port": p.device, "usb": p.usb_id, "description": p.description},
                        p.device))
    for vb in virtual.boards():
        if vb.status != "running":
            continue
        targets.append(({"board": vb.name, "port": vb.port, "usb": "",
                         "description": f"virtual {vb.kind} board ({vb.arch})"}, vb.name))
    rows = []
    for row, port in targets:
        if probe:
            try:
                with Board.open(port, timeout=timeout, start_virtual=False) as b:
                    i = b.probe()
                row.update(micropython=i.micropython, arch=i.arch, mpy_arch=i.mpy_arch, free_heap=i.free_heap,
                           free_flash=i.free_flash, mpml=i.runtime_version, native=i.native,
                           board_file=i.board_file, interrupted=b.interrupted)
            except BoardError as e:
                row["error"] = str(e).splitlines()[0]
        rows.append(row)
    return rows


def cmd_devices(args) -> int:
    rows = device_rows(probe=not args.no_probe, timeout=args.timeout)
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    if not rows:
        print("no boards: no USB serial port, and no virtual board running (`mpml virtual start m0`)")
        return 0
    head = ("BOARD", "PORT", "USB", "DESCRIPTION", "MICROPYTHON", "ARCH", "HEAP", "FLASH", "MPML")
    table = [head]
    for r in rows:
        if "error" in r:
            tail = (f"(not answering: {r['error']})",)
            table.append((r["board"], r["port"], r["usb"] or "-", r["description"] or "-") + tail)
            continue
        arch = r.get("arch") or "-"
        if r.get("mpy_arch") and r.get("arch") and r["mpy_arch"] != r["arch"]:
            arch += f" ({r['mpy_arch']})"  # e.g. an M3 reporting armv7em
        mpml_v = r.get("mpml") or "-"
        if r.get("native", "").startswith("error") if r.get("native") else False:
            mpml_v += " (bad _native.mpy)"
        table.append((r["board"], r["port"], r["usb"] or "-", r["description"] or "-",
                      r.get("micropython", "-") or "-", arch, _kb(r.get("free_heap")), _kb(r.get("free_flash")),
                      mpml_v))
    widths = [max(len(str(row[i])) for row in table if i < len(row)) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(widths[i]) if i < len(row) - 1 else str(c)
                        for i, c in enumerate(row)).rstrip())
    return 0


def cmd_install(args) -> int:
    from mpml.device.install import install

    def progress(name, size):
        if not args.quiet:
            print(f"  sending {name} ({size:,} bytes)", file=sys.stderr, flush=True)

    with Board.open(args.port, timeout=30) as b:
        if b.interrupted:
            print(f"interrupted the program running on {b.name}", file=sys.stderr)
        r = install(b, backend=args.backend, board_name=args.board, force=args.force, progress=progress)
        where = f"{b.name}" + (f" ({b.port})" if b.name != b.port else "")
    if r.changed:
        print(f"mpml {r.version} installed on {where}: {r.arch}, backend {r.backend}; sent {len(r.sent)} files, "
              f"{len(r.unchanged)} unchanged, {len(r.removed)} removed"
              f"{' (' + ', '.join(r.removed) + ')' if r.removed else ''}; "
              f"{r.bytes_sent:,} bytes over the link in {r.seconds:.1f} s")
    else:
        print(f"mpml {r.version} already installed on {where}: {r.arch}, backend {r.backend}; "
              f"{len(r.unchanged)} files unchanged, nothing sent ({r.bytes_sent:,} bytes of checks "
              f"in {r.seconds:.1f} s)")
    if r.config:
        print(f"sensor config of board file {r.config} "
              f"{'written to' if r.config_changed else 'already in'} /lib/mpml/board.json")
    return 0
