"""The m0 board is a Cortex-M0: ARMv6-M code runs, ARMv7-M code faults.

An RP2040 is a Cortex-M0+; code built for armv7m would HardFault there. The m0
virtual board must catch that, or it would prove nothing about a Pico.
"""

from __future__ import annotations

import pytest

from conftest import start_board, wait_for_crash_reboot
from mpml import virtual
from mpml.device import BoardError, Connection

# `sdiv r0, r0, r1` is a 32-bit Thumb-2 instruction that ARMv7-M has and
# ARMv6-M lacks. Raw opcodes, so that no assembler can refuse it beforehand.
SDIV = (
    "import micropython\n"
    "@micropython.asm_thumb\n"
    "def sdiv(r0, r1):\n"
    "    data(2, 0xfb90, 0xf0f1)\n"
    "print('quotient', sdiv(42, 6))\n"
)

# The same board runs Thumb-1 code: a sum in inline assembly.
THUMB1_ADD = (
    "import micropython\n"
    "@micropython.asm_thumb\n"
    "def add(r0, r1):\n"
    "    add(r0, r0, r1)\n"
    "print('sum', add(40, 2))\n"
)


def test_m3_executes_armv7m_division():
    board = start_board("m3")
    with Connection(board.port) as c:
        assert "quotient 7" in c.exec(SDIV)


@pytest.mark.parametrize("kind", ["m0", "m3"])
def test_thumb1_code_runs(kind):
    board = start_board(kind)
    with Connection(board.port) as c:
        assert "sum 42" in c.exec(THUMB1_ADD)


def test_m0_rejects_armv7m_instruction():
    board = start_board("m0")
    crashes = virtual.get(board.name).state["crashes"]
    c = Connection(board.port, timeout=5)
    try:
        with pytest.raises(BoardError) as e:
            c.exec(SDIV, timeout=5)
    finally:
        c.close()
    assert "HardFault" in str(e.value)
    assert "quotient" not in str(e.value)
    # The board's watchdog stand-in reboots it, and it answers again.
    assert wait_for_crash_reboot(board.name, crashes)["crashes"] == crashes + 1
    with Connection(board.port) as c:
        assert c.eval("6 * 7") == 42
