"""Talking to boards over the USB REPL (real or virtual)."""

from .connection import BoardError, BoardExecError, BoardTimeout, Connection
from .board import Board, BoardInfo, RuntimeMismatch, require_runtime
from .ports import add_port_argument

__all__ = ["Board", "BoardError", "BoardExecError", "BoardInfo", "BoardTimeout", "Connection",
           "RuntimeMismatch", "add_port_argument", "require_runtime"]
