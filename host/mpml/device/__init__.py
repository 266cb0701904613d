"""Talking to boards over the USB REPL (real or virtual)."""

from .connection import BoardError, BoardExecError, BoardTimeout, Connection

__all__ = ["BoardError", "BoardExecError", "BoardTimeout", "Connection"]
