"""`mpml monitor`: live classification on the board, shown as it happens. Thin over mpml.device.live."""

from __future__ import annotations

import sys

from mpml.device.connection import BoardError
from mpml.device.ports import add_port_argument

__all__ = ["register", "cmd_monitor"]


def register(sub) -> None:
    m = sub.add_parser("monitor", help="live classification on the board: sample -> features -> model, shown live",
                       description="Run MODEL (pushed to the board with push-model) on windows sampled live from "
                                   "SOURCE, with the feature spec inside the model, and show one line per window: "
                                   "the class (or anomaly score), its score, the board's time for features + "
                                   "inference and the samples dropped so far. Without MODEL, attach to a board "
                                   "whose main.py already runs mpml.classify with emit=True and show its output. "
                                   "Ctrl-C stops the board's loop and leaves its REPL usable.")
    m.add_argument("model", nargs="?", help="a model on the board (NAME or /models/NAME.mpml)")
    m.add_argument("--source", default="imu",
                   help="what to sample: replay:FILE[,rate=HZ,channels=N,speed=X,loop] (a local .i16 recording is "
                        "copied to /data first), adc:PINS, or a sensor named in the board's config "
                        "(default: imu)")
    m.add_argument("--hop", type=int, help="samples between windows (default: half a window)")
    m.add_argument("--smooth", type=int, default=1, help="average the outputs over this many windows (default 1)")
    m.add_argument("--threshold", type=float,
                   help="anomaly models: flag windows whose reconstruction error is above this (see mpml eval)")
    m.add_argument("--sleep-ms", type=int, default=0,
                   help="sleep this long between windows (machine.lightsleep): a duty cycle for battery boards")
    m.add_argument("--windows", type=int, help="stop after this many windows")
    m.add_argument("--seconds", type=float, help="stop after this long")
    m.add_argument("--backend", choices=("native", "viper", "pure"), help="force a kernel backend")
    add_port_argument(m)
    m.set_defaults(func=cmd_monitor)


def _line(r) -> str:
    what = f"{r.label or r.index}" if not r.anomaly and r.label != "normal" else (r.label or "")
    return (f"#{r.window:<5} sample {r.start:<8} {what:<16} {r.score:8.3f}   {r.us / 1000:7.2f} ms"
            + (f"   dropped {r.dropped}" if r.dropped else ""))


def cmd_monitor(args) -> int:
    from mpml.device.commands.run import open_board
    from mpml.device.live import LiveRun, classify_live
    from mpml.device.sources import SourceError

    def show(r):
        print(_line(r), flush=True)

    if args.model is None:
        return _attach(args.port, show)
    try:
        board = open_board(args.port)
    except BoardError as e:
        print(f"mpml: {e}", file=sys.stderr)
        return 1
    try:
        try:
            run: LiveRun = classify_live(board, args.model, args.source, hop=args.hop, smooth=args.smooth,
                                         threshold=args.threshold, sleep_ms=args.sleep_ms, windows=args.windows,
                                         seconds=args.seconds, backend=args.backend, on_result=show)
        except SourceError as e:
            print(f"mpml: {e}", file=sys.stderr)
            return 1
    finally:
        board.close()
    for ln in run.printed:
        print(ln)
    print(f"{run.windows or len(run.results)} windows in {run.seconds:.1f} s, {run.dropped} samples dropped"
          + (f" ({run.reason})" if run.reason else ""))
    return 0


def _attach(port, show) -> int:
    """Read the app's lines from a board that runs it on its own (no raw REPL, no reset)."""
    import serial

    from mpml.device.live import LiveRun, parse_lines
    from mpml.device.ports import resolve

    path = resolve(port).device
    run = LiveRun()
    print(f"watching {path} (Ctrl-C to stop)", file=sys.stderr)
    try:
        with serial.Serial(path, 115200, timeout=1) as s:
            def lines():
                buf = b""
                while True:
                    buf += s.read(max(1, s.in_waiting))
                    while b"\n" in buf:
                        ln, buf = buf.split(b"\n", 1)
                        yield ln.decode(errors="replace").rstrip("\r")
            parse_lines(lines(), run, show)
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"mpml: {path}: {e}", file=sys.stderr)
        return 1
    return 0
