"""push-model throughput against `mpremote fs cp` of the same file to the same board.

    build/venv/bin/python tools/bench/push.py [--boards unix,m0] [--repeat 5]

Two tables:

1. Whole commands, as a user runs them: `python -m mpremote connect PORT fs cp
   F :/models/cp.mpml` (the destination removed before each copy: mpremote
   skips a copy when the board already has the same bytes) and `mpml
   push-model F --port PORT -q`, process start, imports, connection (both
   soft-reset the board) and checks included. Files: a digits MLP 64-128-64-10
   trained briefly and quantized (real int8 weights: zlib gains ~10 %), and
   the same shapes with uniformly random weights (incompressible: the worst
   case).
2. The transfers alone on an open connection: mpremote's fs_writefile (what
   fs cp calls) against push_model (fit checks, transfer, board-side
   SHA-256, atomic swap): the throughput, apart from the per-command cost of
   starting Python, importing mpremote and connecting, which both tools pay.

(A least-squares fit of whole-command times over model sizes, to separate
that fixed cost from the throughput, was tried and dropped: the sizes the
m0's filesystem holds span ~0.1 s of transfer, less than the commands' run
to run spread, and the fitted rates swung by 2x between runs.)

Medians of --repeat runs. Each command runs once first, unmeasured, and
without PYTHONDONTWRITEBYTECODE, so Python's bytecode caches exist as in an
installed package. Boards are started in a private run folder and stopped at
the end. Run it with no other virtual board up: an idle qemu board keeps a
host CPU busy (its port polls the UART), which on a 2-CPU machine made the m0
times 3-4x slower, fs cp's more than push-model's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPML_RUN_DIR", tempfile.mkdtemp(prefix="mpml-bench-push-"))
sys.path.insert(0, str(Path(__file__).parent))

PY = sys.executable


def files(d: Path) -> list[tuple[str, Path]]:
    from accuracy import SCALE, digits

    from mpml import nn
    from mpml.blob import write_blob
    from mpml.quantize import quantize
    from mpml.testing.graphs import mlp

    tr, va, _te = digits()
    m = nn.mlp_classifier(64, 10, (128, 64), seed=0)
    m.fit(*tr, validation_data=va, verbose=False, epochs=5)
    trained = d / "digits.mpml"
    trained.write_bytes(write_blob(quantize(m, tr[0], SCALE, 0, name="digits")))
    rnd = d / "random.mpml"
    rnd.write_bytes(write_blob(mlp(seed=0, sizes=(64, 128, 64, 10))))
    return [("digits MLP (trained)", trained), ("random weights", rnd)]


# As a user's shell runs them: with bytecode caches (an installed package has them).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> float:
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return time.monotonic() - t


def whole_commands(port: str, name: str, f: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of `mpremote fs cp` and of `mpml push-model` for file `f`, whole commands."""
    def rm_cp():
        # mpremote skips a copy whose destination already has the same SHA-256: remove it first.
        subprocess.run([PY, "-m", "mpremote", "connect", port, "fs", "rm", ":/models/cp.mpml"],
                       capture_output=True, env=ENV)
    cp_cmd = [PY, "-m", "mpremote", "connect", port, "fs", "cp", str(f), ":/models/cp.mpml"]
    pm_cmd = [PY, "-m", "mpml", "push-model", str(f), "--port", name, "-q"]
    rm_cp()
    timed(cp_cmd)
    timed(pm_cmd)
    cp = []
    for _ in range(repeat):
        rm_cp()
        cp.append(timed(cp_cmd))
    pm = [timed(pm_cmd) for _ in range(repeat)]
    return statistics.median(cp), statistics.median(pm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="unix,m0")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from mpml import virtual
    from mpml.device.package import install

    rows, inproc = [], []
    with tempfile.TemporaryDirectory() as d:
        fs = files(Path(d))
        try:
            for kind in args.boards.split(","):
                b = virtual.start(kind, name=f"bench-{kind}", fresh=True)
                from mpml.device import Connection
                with Connection(b.port, timeout=60) as c:
                    install(c, b.arch)
                from mpml.device.board import Board
                from mpml.device.models import push_model, rm_model
                for what, f in fs:
                    size = f.stat().st_size
                    cp, pm = whole_commands(b.port, b.name, f, args.repeat)
                    rows.append((kind, what, size, cp, pm))
                    cp, pm = [], []
                    with Board.open(b.name) as bd:
                        data = f.read_bytes()
                        for _ in range(args.repeat):
                            t = time.monotonic()
                            bd.conn.transport.fs_writefile("/models/cp.mpml", data)
                            cp.append(time.monotonic() - t)
                            t = time.monotonic()
                            push_model(bd, f)
                            pm.append(time.monotonic() - t)
                        # Room for the next file on a small filesystem (the m0's 256 KiB holds the runtime too).
                        rm_model(bd, f.stem)
                        bd.conn.exec("import os\nos.remove('/models/cp.mpml')")
                    inproc.append((kind, what, size, statistics.median(cp), statistics.median(pm)))
        finally:
            virtual.stop_all()
    for title, table in (("whole commands", rows), ("on an open connection: transfer only", inproc)):
        print(f"push-model vs mpremote fs cp ({title}, median of {args.repeat})")
        print(f"{'board':6} {'file':22} {'bytes':>7} {'fs cp s':>8} {'KB/s':>6} {'push s':>7} {'KB/s':>6} "
              f"{'ratio':>6}")
        for kind, what, size, cp, pm in table:
            print(f"{kind:6} {what:22} {size:7d} {cp:8.2f} {size / 1024 / cp:6.1f} {pm:7.2f} "
                  f"{size / 1024 / pm:6.1f} {cp / pm:5.1f}x")
        print()


if __name__ == "__main__":
    main()
