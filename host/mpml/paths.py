"""Where mpml finds its build products and keeps the state of virtual boards.

Defaults follow the source checkout (the host package is installed editable
from `host/`); `MPML_BUILD_DIR` and `MPML_RUN_DIR` override them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO / "boards"
FIRMWARE_SRC = REPO / "firmware"


def build_dir() -> Path:
    """Git-ignored folder with MicroPython's source, builds and the venv."""
    return Path(os.environ.get("MPML_BUILD_DIR", REPO / "build"))


def firmware_dir() -> Path:
    """Built firmware of the virtual boards and mpy-cross."""
    return build_dir() / "firmware"


def run_dir() -> Path:
    """State of running virtual boards: one folder per board name."""
    return Path(os.environ.get("MPML_RUN_DIR", build_dir() / "run"))


def micropython_src() -> Path | None:
    """The MicroPython source tree the firmware was built from (None before setup)."""
    try:
        return Path((firmware_dir() / "micropython-src.txt").read_text().strip())
    except OSError:
        return None
