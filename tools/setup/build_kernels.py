#!/usr/bin/env python3
"""Build mpml's C kernels (firmware/kernels) as a native module for every arch.

usage: build_kernels.py BUILD_DIR [PYTHON]

Outputs BUILD_DIR/kernels/<arch>/_native.mpy for x64, armv6m, armv7m,
armv7emsp and rv32imc; make is incremental, so a warm run takes a second.
xtensawin is built only when Espressif's xtensa-esp32-elf-gcc is on PATH.
An arch whose build fails is reported and the others still build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARCHES = ["x64", "armv6m", "armv7m", "armv7emsp", "rv32imc"]


def main() -> int:
    build = Path(sys.argv[1]).resolve()
    python = sys.argv[2] if len(sys.argv) > 2 else sys.executable
    arches = ARCHES + (["xtensawin"] if shutil.which("xtensa-esp32-elf-gcc") else [])
    failed = []
    for arch in arches:
        r = subprocess.run(["make", "-s", "-C", str(REPO / "firmware" / "kernels"), f"ARCH={arch}",
                            f"BUILD_ROOT={build}", f"PYTHON={python}"],
                           capture_output=True, text=True, env=dict(os.environ))
        if r.returncode:
            failed.append(arch)
            print(f"mpml setup: kernels for {arch} failed:\n{r.stdout}{r.stderr}", file=sys.stderr)
    built = [a for a in arches if a not in failed]
    print(f"mpml setup: native kernels built for {', '.join(built)}"
          + ("" if "xtensawin" in arches else " (xtensawin: no xtensa-esp32-elf-gcc)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
