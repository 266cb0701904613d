"""Activation arena: mpml's blob against TFLM's interpreter, for the same models.

    build/venv/bin/python tools/bench/arena.py [extra.tflite ...]

For each model, mpml's figure is the blob's `arena_size` (every activation,
model inputs and outputs included, planned by `mpml.blob.plan_arena`). TFLM's
figure is the "head" of its arena as its RecordingMicroAllocator reports it
(`Interpreter.print_allocations()`): the non-persistent section, where TFLM's
greedy memory planner places the activations and scratch buffers. TFLM's
"tail" (tensor structs, op data, node structs) has no counterpart in mpml's
arena (mpml keeps its small per-op state on the heap), so it is shown apart.

The generated models have int8 inputs and outputs, so that both sides plan
the same tensors (with float edges TFLM also holds the float32 input and
output in its arena; mpml converts them in Model.predict). Extra .tflite
files given on the command line are measured as they are.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from mpml.blob import read_blob, write_blob
from mpml.importers.tflite import import_tflite
from mpml.testing import tflite_models as tm

_PROBE = """
import sys
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=8 << 20)
it.print_allocations()
"""


def tflm_arena(model: bytes) -> tuple[int, int]:
    """(head, tail) bytes of TFLM's arena, read from its allocation report (printed by C code)."""
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(model)
        f.flush()
        r = subprocess.run([sys.executable, "-c", _PROBE, f.name], capture_output=True, text=True, timeout=120)
    text = r.stdout + r.stderr
    head = re.search(r"Arena allocation head (\d+) bytes", text)
    tail = re.search(r"Arena allocation tail (\d+) bytes", text)
    if r.returncode or not head or not tail:
        raise RuntimeError(f"TFLM did not report its arena:\n{text}")
    return int(head.group(1)), int(tail.group(1))


def models(extra: list[str]) -> list[tuple[str, bytes]]:
    out = [
        ("1-D CNN, accelerometer 128x3 (cnn_1d)", tm.cnn_1d(float_io=False)),
        ("2-D CNN, 32x32x1 depthwise-separable (cnn_2d)", tm.cnn_2d(float_io=False)),
        ("MLP 64-32-16-4 (mlp)", tm.mlp(float_io=False)),
    ]
    out += [(Path(p).name, Path(p).read_bytes()) for p in extra]
    return out


def main(argv: list[str]) -> int:
    rows = [("model", "ops", "mpml arena", "TFLM head", "mpml/TFLM", "TFLM tail")]
    for name, model in models(argv):
        graph = import_tflite(model, "bench")
        ours = read_blob(write_blob(graph)).arena_size
        head, tail = tflm_arena(model)
        rows.append((name, str(len(graph.ops)), f"{ours} B", f"{head} B", f"{ours / head:.2f}", f"{tail} B"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
