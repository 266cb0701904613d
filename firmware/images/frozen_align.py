#!/usr/bin/env python3
"""Align frozen ARMv6-M native code to 4 bytes in a frozen_content.c.

usage: frozen_align.py FROZEN_CONTENT_C     (the images' builds run it)

MicroPython 1.25's tools/mpy-tool.py freezes Thumb native code (viper and
native functions) as byte arrays with `__attribute__ ((aligned (2)))`. On
ARMv6-M (Cortex-M0/M0+: RP2040) the native emitter loads a 32-bit constant
with a PC-relative `ldr` from a literal placed assuming the code starts on a
word boundary (py/asmthumb.c, asm_thumb_mov_reg_i32, asserts it for code it
loads at run time). A frozen function that lands at an address = 2 mod 4
then reads the wrong words: wrong results, no crash (mpml's frozen viper
softmax did this on the m0k board). Armv7-M code loads constants with
movw/movt and needs no fix; this only rewrites files frozen for armv6m.
"""

from __future__ import annotations

import sys
from pathlib import Path

HALF = "__attribute__ ((aligned (2)))"
WORD = "__attribute__ ((aligned (4)))"


def fix(frozen_c: Path) -> bool:
    """Rewrite frozen_c with word-aligned native code; True when it changed."""
    text = frozen_c.read_text()
    fixed = text.replace(HALF, WORD)
    if fixed == text:
        return False
    frozen_c.write_text(fixed)
    return True


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    fix(Path(sys.argv[1]))
