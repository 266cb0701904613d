#!/usr/bin/env python3
"""`make demo`: what mpml can do today, on virtual boards or on your board.

For now: the board inventory, then a hello-world on every virtual board through
the unmodified `mpremote` command, the way you would talk to a board on USB.
With PORT=/dev/ttyACM0 (or any mpremote port) it also greets that board.
Later steps (collect, train, quantize, push, classify) join as they land.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time

from mpml import virtual
from mpml.device.arch import arch_from_mpy

HELLO = (
    "import sys, os, gc\n"
    "gc.collect()\n"
    "print(repr((sys.implementation._mpy, sys.implementation._machine, gc.mem_free(), sorted(os.listdir('/')))))\n"
)


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def hello(port: str) -> str:
    """Greet the board on `port` through mpremote; a one-line description of it."""
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", HELLO],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"mpremote failed on {port}:\n{r.stdout}{r.stderr}")
    mpy, machine, free, root = ast.literal_eval(r.stdout.strip())
    return f"{machine}; native arch {arch_from_mpy(mpy)}; {free // 1024} KiB heap free; / holds {root}"


def main() -> int:
    step("virtual boards (mpml virtual list)")
    subprocess.run([sys.executable, "-m", "mpml", "virtual", "list"], check=True)

    started = []
    failures = 0
    for kind, spec in virtual.specs().items():
        step(f"{spec.title}: stands for {spec.stands_for}")
        t0 = time.monotonic()
        try:
            already = virtual.get(kind)
            board = virtual.start(kind)
            if not (already and already.status == "running"):
                started.append(kind)
            print(f"   started on {board.port} ({time.monotonic() - t0:.1f} s)")
            print(f"   $ mpremote connect {board.port} exec '...'")
            print(f"   {hello(board.port)}")
        except (virtual.VirtualBoardError, RuntimeError) as e:
            failures += 0 if spec.optional else 1
            print(f"   unavailable: {e}")

    port = os.environ.get("PORT")
    if port:
        step(f"your board on {port}")
        try:
            print(f"   {hello(port)}")
        except RuntimeError as e:
            failures += 1
            print(f"   {e}")

    for kind in started:
        virtual.stop(kind)
    step("done" + (f" ({failures} board(s) failed)" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
