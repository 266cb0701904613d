"""`mpml run` and `mpml bench`: a model on the board, once or timed (and `eval --on-device`'s board part).

Thin over mpml.device.run. MODEL is a local .mpml (sent to the board's RAM
for the command, not stored) or the name of a model pushed to the board
(/models/NAME.mpml).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mpml.device.board import Board, require_runtime
from mpml.device.connection import BoardError
from mpml.device.ports import add_port_argument

if TYPE_CHECKING:
    import numpy as np  # imported where used: `mpml --help` and push-model start without numpy

__all__ = ["register", "cmd_run", "cmd_bench", "read_input", "open_board"]

MODEL_HELP = ("a local .mpml file (sent to the board's RAM for this command, not stored) or the name of a model "
              "on the board (NAME or /models/NAME.mpml, put there by `mpml push-model`)")


def register(sub) -> None:
    r = sub.add_parser("run", help="one inference on the board: outputs and top classes (--host: compare)",
                       description="Run MODEL on the board on one input (or one per row) and print the outputs "
                                   "and the top classes with their labels. The input is floats (quantized on the "
                                   "board as Model.predict does) or, with --int8, the input tensor's integers, "
                                   "from a .npy, .csv or .txt file, or from stdin ('-' or no INPUT). --host "
                                   "runs the host reference (mpml.reference) on the same input and flags any "
                                   "difference in the quantized input or the output bytes (exit status 1).")
    r.add_argument("model", help=MODEL_HELP)
    r.add_argument("input", nargs="?", default="-", help="a .npy, .csv or .txt file of numbers, or - for stdin "
                                                         "(one sample, or one per row)")
    r.add_argument("--int8", action="store_true", help="the values are the input tensor's integers (int8), "
                                                       "used as they are")
    r.add_argument("--host", action="store_true", help="compare with the host reference, byte for byte")
    r.add_argument("--top", type=int, default=3, help="how many top classes to print (default 3)")
    r.add_argument("--backend", choices=("native", "viper", "pure"), help="force a kernel backend")
    add_port_argument(r)
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("bench", help="latency (median, spread), per-layer times, peak heap and backend on the board",
                       description="Time MODEL on the board: latency per inference (median and spread over N "
                                   "runs of Model.run), the time of each layer, the peak heap during inference "
                                   "and what run() and predict() allocate, and the kernel backend. Boards with "
                                   "time.ticks_us (the qemu virtual boards too, at qemu's speed) time themselves; boards without are "
                                   "timed by the host's clock with the link's cost subtracted, and say so.")
    b.add_argument("model", help=MODEL_HELP)
    b.add_argument("--runs", "-n", type=int, default=100, help="runs to time (default 100)")
    b.add_argument("--backend", choices=("native", "viper", "pure"), help="force a kernel backend")
    b.add_argument("--no-layers", action="store_true", help="skip the per-layer times")
    add_port_argument(b)
    b.set_defaults(func=cmd_bench)


def open_board(port) -> Board:
    """The board for a command, with this host's runtime on it (else an error naming `mpml install`)."""
    board = Board.open(port, timeout=30)
    try:
        require_runtime(board)
    except BaseException:
        board.close()
        raise
    return board


def _numbers(text: str, where: str) -> np.ndarray:
    import numpy as np

    rows = []
    for ln in text.splitlines():
        ln = ln.split("#", 1)[0].strip()
        if not ln:
            continue
        try:
            rows.append([float(v) for v in ln.replace(",", " ").replace(";", " ").split()])
        except ValueError as e:
            raise BoardError(f"{where}: not a list of numbers ({e})") from None
    if not rows:
        raise BoardError(f"{where}: no numbers")
    if len(rows) > 1 and len({len(r) for r in rows}) == 1 and len(rows[0]) > 1:
        return np.array(rows)  # one sample per row
    return np.array([v for r in rows for v in r])


def read_input(arg: str | None) -> np.ndarray:
    """Input values from a .npy file, a text file of numbers (.csv, .txt: commas or spaces), or stdin ('-')."""
    import numpy as np

    if arg in (None, "-"):
        if sys.stdin.isatty():
            raise BoardError("no input: give a file (.npy, .csv, .txt) or pipe the numbers in")
        return _numbers(sys.stdin.read(), "stdin")
    p = Path(arg)
    if not p.is_file():
        raise BoardError(f"{p}: no such file")
    if p.suffix == ".npy":
        try:
            return np.asarray(np.load(p, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise BoardError(f"{p}: cannot read: {e}") from None
    try:
        return _numbers(p.read_text(), str(p))
    except UnicodeDecodeError:
        raise BoardError(f"{p}: not a text file of numbers (or a .npy)") from None


def _fmt_values(v: np.ndarray, limit: int = 16) -> str:
    vals = v.reshape(-1)
    s = ", ".join(f"{x:.6g}" if v.dtype.kind == "f" else str(int(x)) for x in vals[:limit])
    return "[" + s + (f", ... ({len(vals)} values)" if len(vals) > limit else "") + "]"


def cmd_run(args) -> int:
    from mpml.device.run import host_compare, run_samples

    x = read_input(args.input)
    with open_board(args.port) as board:
        results = run_samples(board, args.model, x, int8=args.int8, backend=args.backend)
        from mpml.device.run import load_model

        mi = load_model(board, args.model, args.backend)
        print(f"{mi.info['name']} on {board.name} ({mi.source}), backend {mi.backend}")
        cmp = host_compare(board, args.model, x, results, int8=args.int8) if args.host else None
    for k, r in enumerate(results):
        head = f"sample {k}: " if len(results) > 1 else ""
        for e, y in zip(mi.outputs, r.outputs):
            kind = "float" if y.dtype.kind == "f" else e["dtype"]
            print(f"{head}{e['name']} ({kind}): {_fmt_values(y)}")
        if mi.labels or r.outputs[0].size > 1:
            print(f"{head}top {min(args.top, r.outputs[0].size)}: "
                  + ", ".join(f"{lab} {val:.4g}" for lab, val in r.top(args.top)))
    if cmp is not None:
        if cmp.equal:
            print(f"host reference: identical ({len(results)} sample{'s' if len(results) > 1 else ''}: "
                  "quantized inputs and output bytes equal)")
        else:
            print("host reference: DIFFERENT")
            for ln in cmp.lines:
                print("  " + ln)
            return 1
    return 0


def cmd_bench(args) -> int:
    from mpml.device.run import bench, load_model

    if args.runs < 1:
        raise BoardError("--runs must be at least 1")
    with open_board(args.port) as board:
        mi = load_model(board, args.model, args.backend)
        print(f"{mi.info['name']} on {board.name} ({mi.source}): {len(mi.info['ops'])} ops, "
              f"blob {mi.info['blob_bytes']} B, arena {mi.info['arena_bytes']} B")
        res = bench(board, args.model, runs=args.runs, backend=args.backend, per_layer=not args.no_layers)
    print(res.table())
    return 0


def eval_model_graph(model: str, port):
    """(graph, where) of `mpml eval --on-device MODEL`: a local .mpml, or the blob read back from the board."""
    from mpml.blob import read_blob
    from mpml.device.run import fetch_model

    with open_board(port) as board:
        return read_blob(fetch_model(board, model)).graph, board.name


def on_device_outputs(model, graph, x, port):
    """The board's int8 outputs for the feature vectors `x` (mpml eval --on-device), and the comparison line.

    Returns (outputs, OnDeviceEval). A local model is sent to the board's RAM;
    a name is the model on the board.
    """
    from mpml.device.run import eval_on_device
    from mpml.evaluate import quantize_inputs

    q = quantize_inputs(graph, x)
    src = model if not Path(str(model)).is_file() else Path(model).read_bytes()

    def progress(done, total):
        if sys.stderr.isatty():
            print(f"\r{done}/{total} samples through the board", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    with open_board(port) as board:
        ev = eval_on_device(board, src, q, graph=graph, progress=progress)
        where = board.name
    print(f"board {where}: {len(q)} samples in {ev.seconds:.1f} s ({ev.execs} batches)")
    print(ev.summary())
    return ev.outputs, ev
