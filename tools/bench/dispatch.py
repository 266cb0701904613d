"""Device runtime speed on the unix board: dispatch overhead per layer, and whole models.

    build/venv/bin/python tools/bench/dispatch.py [--port PTY] [--repeat N]

1. Dispatch: `Model.run()` on chains of N trivial ops (RESHAPE of 4 bytes),
   for each backend. The slope of run time against N is the cost of one
   layer; minus the time of calling that kernel directly, it is what the
   Python-side dispatch (the plan loop and the kernel call) costs per layer.
2. Whole models: microseconds per inference of `run()` on a small MLP and a
   small conv net (built with mpml.testing.graphs), native vs viper vs plain
   Python, as ratios to native. `tflm_latency_us` is the hook for the TFLM
   interpreter's figure on the same model (a column, empty until it is filled).

Without --port a unix virtual board is started (and stopped) for the run;
the device package is installed on it first. Timings are one run's medians.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys

from mpml.blob import write_blob
from mpml.device import Connection
from mpml.device.package import install, native_module
from mpml.graph import Graph
from mpml.testing.graphs import convnet, mlp, trivial_chain

BOARD_CODE = """
import time, binascii, gc
from array import array
import mpml.model as M
def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
def _time_run(blob, backend, repeat):
    m = M.load(binascii.a2b_base64(blob), backend)
    i = bytearray(m.inputs[0].nbytes)
    o = bytearray(m.outputs[0].nbytes)
    m.run(i, o)
    ts = []
    for _ in range(5):
        gc.collect()
        t = time.ticks_us()
        for _ in range(repeat):
            m.run(i, o)
        ts.append(time.ticks_diff(time.ticks_us(), t) / repeat)
    return _median(ts), m.backend
def _time_kernel(backend, repeat):
    mod = M._import(backend)
    p = array('i', [4])
    a = bytearray(4)
    b = bytearray(4)
    k = mod.reshape
    ts = []
    for _ in range(5):
        t = time.ticks_us()
        for _ in range(repeat):
            k(p, a, b)
        ts.append(time.ticks_diff(time.ticks_us(), t) / repeat)
    return _median(ts)
"""

CHAIN = (1, 10, 50, 100)


def tflm_latency_us(graph: Graph) -> float | None:
    """Hook: microseconds per inference of the TFLM interpreter on the same model (None: not measured)."""
    return None


def _start_board():
    os.environ.setdefault("MPML_RUN_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "mpml-bench-boards"))
    from mpml import virtual
    board = virtual.start("unix", name="bench-unix", fresh=True, watch_pid=os.getpid())
    return board, virtual


def _slope(xs: list[int], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", help="a running unix board's port (default: start one)")
    ap.add_argument("--repeat", type=int, default=200, help="runs per timing (default 200)")
    args = ap.parse_args(argv)
    board = virtual = None
    port = args.port
    if port is None:
        board, virtual = _start_board()
        port = board.port
    try:
        with Connection(port, timeout=300) as c:
            install(c, "x64")
        backends = (["native"] if native_module("x64") else []) + ["viper", "pure"]
        with Connection(port, timeout=300) as c:
            c.exec(BOARD_CODE)
            print("Dispatch on the unix board (x64): microseconds per run() of a chain of N RESHAPE(4 bytes) ops")
            print(f"{'backend':8} " + " ".join(f"{'N=' + str(n):>9}" for n in CHAIN)
                  + f" {'per layer':>10} {'kernel':>8} {'dispatch':>9}")
            for be in backends:
                ys = []
                for n in CHAIN:
                    blob = base64.b64encode(write_blob(trivial_chain(n)))
                    us, _used = c.eval(f"_time_run({blob!r}, {be!r}, {args.repeat})")
                    ys.append(us)
                per = _slope(list(CHAIN), ys)
                kernel = c.eval(f"_time_kernel({be!r}, {args.repeat * 10})")
                print(f"{be:8} " + " ".join(f"{y:9.2f}" for y in ys) + f" {per:10.2f} {kernel:8.2f} {per - kernel:9.2f}")
            print()
            models = [("mlp 64-32-16-4 + softmax", mlp()), ("convnet 12x12x1, 5 ops", convnet())]
            print("Whole model on the unix board: microseconds per inference (run(), int8)")
            print(f"{'model':28} " + " ".join(f"{be:>10}" for be in backends)
                  + " " + " ".join(f"{be + '/nat':>11}" for be in backends[1:]) + f" {'TFLM':>8}")
            for name, g in models:
                blob = base64.b64encode(write_blob(g))
                times = {}
                for be in backends:
                    repeat = max(1, args.repeat // (50 if be == "pure" else 1))
                    times[be], _used = c.eval(f"_time_run({blob!r}, {be!r}, {repeat})")
                base = times[backends[0]]
                tflm = tflm_latency_us(g)
                print(f"{name:28} " + " ".join(f"{times[be]:10.1f}" for be in backends) + " "
                      + " ".join(f"{times[be] / base:10.1f}x" for be in backends[1:])
                      + f" {tflm if tflm is not None else '-':>8}")
    finally:
        if board is not None:
            virtual.stop(board.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
