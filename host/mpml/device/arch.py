"""Native architectures as MicroPython names them in `sys.implementation._mpy`.

An installer picks the `.mpy` files for a board from this value, so it must be
read the way MicroPython writes it (py/persistentcode.h): the .mpy version in
bits 0-7, the sub-version in bits 8-9, the native arch in bits 10-13.
"""

from __future__ import annotations

# Index = MP_NATIVE_ARCH_* value.
NATIVE_ARCHS = (
    None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em",
    "armv7emsp", "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc",
)


def arch_from_mpy(mpy: int) -> str | None:
    """The native arch encoded in a `sys.implementation._mpy` value (None: no native code)."""
    index = (mpy >> 10) & 0x0F
    return NATIVE_ARCHS[index] if index < len(NATIVE_ARCHS) else f"unknown({index})"


def mpy_version(mpy: int) -> tuple[int, int]:
    """(.mpy version, sub-version) from a `sys.implementation._mpy` value."""
    return mpy & 0xFF, (mpy >> 8) & 0x03
