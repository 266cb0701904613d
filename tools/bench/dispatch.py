"""Device runtime speed on the unix board: dispatch overhead per layer, and whole models.

    build/venv/bin/python tools/bench/dispatch.py [--port PTY] [--repeat N]

1. Dispatch: `Model.run()` on chains of N trivial ops (RESHAPE of 4 bytes),
   for each backend. The slope of run time against N is the cost of one
   layer; minus the time of calling that kernel directly, it is what the
   Python-side dispatch (the plan loop and the kernel call) costs per layer.
2. Whole models: microseconds per inference of `run()` on the representative
   TFLite models (mpml.testing.tflite_models: a 1-D CNN, a 2-D conv net, an
   MLP), imported, native vs viper vs plain Python, and the TFLM interpreter
   (`tflite-micro`, its C++ kernels called from CPython on the same machine)
   on the very same .tflite, as ratios to native.

Without --port a unix virtual board is started (and stopped) for the run;
the device package is installed on it first. Timings are one run's medians.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time

import numpy as np

from mpml.blob import write_blob
from mpml.device import Connection
from mpml.device.package import install, native_module
from mpml.importers.tflite import import_tflite
from mpml.testing import tflite_models
from mpml.testing.graphs import trivial_chain

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


def tflm_latency_us(model: bytes, repeat: int) -> float:
    """Microseconds per invoke() of the TFLM interpreter on a .tflite model (median of 5 timings)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    graph = import_tflite(model)
    for k, e in enumerate(graph.inputs):
        t = graph.tensors[e.tensor]
        interpreter.set_input(np.zeros(t.shape, np.int8), k)
    interpreter.invoke()
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            interpreter.invoke()
        timings.append((time.perf_counter() - t0) / repeat * 1e6)
    return statistics.median(timings)


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
            models = [("MLP 64-32-16-4, 4 ops", tflite_models.mlp(float_io=False)),
                      ("1-D CNN 128x3, 8 ops", tflite_models.cnn_1d(float_io=False)),
                      ("2-D CNN 32x32x1, 9 ops", tflite_models.cnn_2d(float_io=False))]
            print("Whole model on the unix board: microseconds per inference (run(), int8), and TFLM on the same .tflite")
            print(f"{'model':24} " + " ".join(f"{be:>10}" for be in backends) + f" {'TFLM':>8} "
                  + " ".join(f"{be + '/nat':>11}" for be in backends[1:] + ["TFLM"]))
            for name, model in models:
                g = import_tflite(model)
                blob = base64.b64encode(write_blob(g))
                times = {}
                for be in backends:
                    repeat = max(1, args.repeat // (50 if be == "pure" else 1))
                    times[be], _used = c.eval(f"_time_run({blob!r}, {be!r}, {repeat})")
                base = times[backends[0]]
                times["TFLM"] = tflm_latency_us(model, args.repeat)
                print(f"{name:24} " + " ".join(f"{times[be]:10.1f}" for be in backends) + f" {times['TFLM']:8.1f} "
                      + " ".join(f"{times[be] / base:10.2f}x" for be in backends[1:] + ["TFLM"]))
    finally:
        if board is not None:
            virtual.stop(board.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
