"""The board config `mpml install --board B` writes to the board (/lib/mpml/board.json).

It says which sensor is wired where, from the board file's `[[sensors]]`
tables (boards/*.toml, validated by mpml.boards), in the form the board's
`mpml.sources.from_config(name)` reads. docs/sensors.md describes the format.
"""

from __future__ import annotations

import json
from pathlib import Path

from mpml import boards

__all__ = ["BOARD_CONFIG_PATH", "board_config", "board_config_bytes"]

BOARD_CONFIG_PATH = "/lib/mpml/board.json"
FORMAT_VERSION = 1


def _board(board_file: str | Path | boards.Board) -> boards.Board:
    if isinstance(board_file, boards.Board):
        return board_file
    p = Path(board_file)
    if p.suffix == ".toml" or p.exists():
        return boards.load_board(p)
    return boards.board(str(board_file))  # a board name


def board_config(board_file: str | Path | boards.Board) -> dict:
    """The config for a board file (a path, a board name or a loaded Board).

    Raises mpml.boards.BoardFileError naming the file and the problem.
    """
    b = _board(board_file)
    return {"version": FORMAT_VERSION, "board": b.name, "title": b.title, "arch": b.arch,
            "sensors": [dict(s) for s in b.sensors]}


def board_config_bytes(board_file: str | Path | boards.Board) -> bytes:
    """board_config() as the bytes of /lib/mpml/board.json (compact, stable key order)."""
    return (json.dumps(board_config(board_file), sort_keys=True, separators=(",", ":")) + "\n").encode()
