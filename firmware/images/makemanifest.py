#!/usr/bin/env python3
"""MicroPython's tools/makemanifest.py, then frozen_align.py on its output
when the code is frozen for armv6m (make-based ports: MAKE_MANIFEST=)."""

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frozen_align  # noqa: E402

args = sys.argv[1:]
mpy_dir = next(a.split("=", 1)[1] for i, a in enumerate(args) if i and args[i - 1] == "-v" and a.startswith("MPY_DIR="))
output = args[args.index("-o") + 1]
armv6m = any("-march=armv6m" in a for a in args)
sys.argv = [str(Path(mpy_dir) / "tools" / "makemanifest.py"), *args]
sys.path.insert(0, str(Path(mpy_dir) / "tools"))
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    if e.code:
        raise
if armv6m and Path(output).exists():
    frozen_align.fix(Path(output))
