"""Virtual boards: real MicroPython firmware (unix port, qemu) behind a pty.

A virtual board is reached exactly like a board on USB: through its serial
device path, with mpremote or mpml's own commands.
"""

from .manager import VirtualBoard, boards, get, start, stop, stop_all
from .spec import VirtualBoardError, VirtualBoardSpec, spec, specs

__all__ = [
    "VirtualBoard", "VirtualBoardError", "VirtualBoardSpec",
    "boards", "get", "spec", "specs", "start", "stop", "stop_all",
]
