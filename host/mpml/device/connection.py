"""A REPL connection to a board, real or virtual, through mpremote's transport.

This is the one way mpml talks to boards: the same raw-REPL protocol, through
mpremote's SerialTransport, on a USB serial port or a virtual board's pty.
What it adds is what a toolkit needs around it: timeouts on every call (a hung
board is an error, not a hung host), and errors that say what the board last
printed.
"""

from __future__ import annotations

import ast
import time

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport


class BoardError(Exception):
    """The board could not be reached or did not behave as a MicroPython REPL."""


class BoardTimeout(BoardError):
    """The board stopped answering within the time allowed."""


class BoardExecError(BoardError):
    """Code run on the board raised an exception (its traceback is `.traceback`)."""

    def __init__(self, output: str, traceback: str):
        self.output = output
        self.traceback = traceback
        last = traceback.strip().splitlines()[-1] if traceback.strip() else "error"
        super().__init__(f"the board raised {last}\n{traceback}")


def _virtual_board_tail(port: str) -> str:
    # For a virtual board we can show its console even when the link is dead.
    try:
        from ..virtual import boards
    except ImportError:
        return ""
    for board in boards():
        # pty numbers are reused: only a live board's state names its port.
        if board.status != "stopped" and (board.port == port or str(board.state_dir / "tty") == port):
            return board.console_tail(1000)
    return ""


class Connection:
    """An open REPL link to one board.

    >>> with Connection("/dev/ttyACM0") as c:
    ...     c.eval("1 + 1")
    2

    `timeout` bounds each call (seconds of silence from the board);
    `soft_reset` resets the board when the raw REPL is first entered, as
    mpremote does, so every session starts from a clean heap.
    """

    def __init__(self, port: str, timeout: float = 10.0, soft_reset: bool = True):
        self.port = port
        self.timeout = timeout
        self.soft_reset = soft_reset
        try:
            # A finite read timeout: mpremote reads ptys byte by byte and would
            # otherwise block for ever on a silent board.
            self.transport = SerialTransport(port, baudrate=115200, timeout=1)
        except TransportError as e:
            raise BoardError(f"cannot open {port}: {e}") from None
        self._in_raw = False

    def _fail(self, what: str, err: Exception) -> BoardError:
        tail = _virtual_board_tail(self.port)
        msg = f"{what} on {self.port}: {err}"
        if tail:
            msg += f"\nlast output of the board:\n{tail}"
        return BoardTimeout(msg)

    def enter_raw_repl(self) -> None:
        if self._in_raw:
            return
        try:
            self.transport.enter_raw_repl(soft_reset=self.soft_reset, timeout_overall=self.timeout)
        except TransportError:
            # After a dropped link the board may still hold bytes of the
            # interrupted transfer, which garble the handshake: interrupt
            # again, let it go quiet, drop what it said, and try once more.
            try:
                self._resync()
                self.transport.enter_raw_repl(soft_reset=self.soft_reset, timeout_overall=self.timeout)
            except TransportError as e:
                raise self._fail("the board did not enter the raw REPL", e) from None
        self._in_raw = True

    def reset(self) -> None:
        """Soft-reset the board and re-enter the raw REPL: a fresh, unfragmented heap (the filesystem stays)."""
        soft = self.soft_reset
        self.soft_reset = True
        self._in_raw = False
        try:
            self.enter_raw_repl()
        finally:
            self.soft_reset = soft
        for attr in ("_mpml_run_helpers", "_mpml_run_model"):  # board-side state a reset wipes
            if hasattr(self, attr):
                delattr(self, attr)

    def _resync(self) -> None:
        serial = self.transport.serial
        serial.write(b"\r\x03\x03\x02")  # Ctrl-C twice, then Ctrl-B: back to the friendly REPL
        quiet_since = time.monotonic()
        deadline = quiet_since + 3.0
        serial.timeout = 0.1
        try:
            while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.5:
                if serial.read(256):
                    quiet_since = time.monotonic()
        finally:
            serial.timeout = 1

    def exec(self, code: str | bytes, timeout: float | None = None) -> str:
        """Run `code` on the board and return what it printed.

        Raises BoardExecError with the board's traceback when the code raises,
        BoardTimeout when the board goes silent for `timeout` seconds.
        """
        self.enter_raw_repl()
        serial = self.transport.serial
        try:
            # Raw paste waits for the board's flow-control byte with one
            # serial read: a board slowed down (qemu on a busy host) may take
            # more than the 1 s read timeout to send it.
            serial.timeout = max(1, timeout if timeout is not None else self.timeout)
            try:
                self.transport.exec_raw_no_follow(code)
            finally:
                serial.timeout = 1
            out, err = self.transport.follow(timeout if timeout is not None else self.timeout)
        except TransportError as e:
            self._in_raw = False
            raise self._fail("no answer from the board", e) from None
        text = out.decode(errors="replace")
        if err:
            raise BoardExecError(text, err.decode(errors="replace"))
        return text

    def exec_lines(self, code: str, idle_timeout: float | None = None):
        """Run `code` on the board and yield each line it prints as it comes (without the newline).

        For long-running board code (a live classifier): a KeyboardInterrupt
        on the host, or closing the generator, sends Ctrl-C and reads the
        board back to its prompt, so the REPL stays usable. Raises
        BoardExecError when the code raises, BoardTimeout when the board says
        nothing for `idle_timeout` seconds (None: wait for ever).
        """
        self.enter_raw_repl()
        serial = self.transport.serial
        try:
            serial.timeout = max(1, self.timeout)
            try:
                self.transport.exec_raw_no_follow(code)
            finally:
                serial.timeout = 0.2
        except TransportError as e:
            self._in_raw = False
            raise self._fail("no answer from the board", e) from None
        line = bytearray()
        err = bytearray()
        in_err = False
        last = time.monotonic()
        finished = False
        try:
            while True:
                # A byte at a time: nothing past the board's end markers may be read here, since the raw
                # REPL's prompt after them belongs to the next exec (mpremote waits for it). Live output
                # is a few KB/s at most.
                data = serial.read(1)
                if not data:
                    if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                        raise self._fail("the board went silent", TimeoutError(f"{idle_timeout:.0f} s"))
                    continue
                last = time.monotonic()
                for b in data:
                    if b == 4:  # EOT: the end of stdout, then of the traceback
                        if in_err:
                            finished = True
                            break
                        in_err = True
                        if line:
                            yield line.decode(errors="replace").rstrip("\r")
                            line = bytearray()
                    elif in_err:
                        err.append(b)
                    elif b == 10:
                        yield line.decode(errors="replace").rstrip("\r")
                        line = bytearray()
                    else:
                        line.append(b)
                if finished:
                    break
        except OSError as e:
            self._in_raw = False
            raise self._fail("the link dropped", e) from None
        finally:
            serial.timeout = 1
            if not finished:
                # Interrupted on the host (or the consumer stopped): stop the board's code too.
                self._in_raw = False
                try:
                    self._resync()
                except OSError:
                    pass
        if err:
            raise BoardExecError("", err.decode(errors="replace"))

    def eval(self, expression: str, timeout: float | None = None):
        """Evaluate `expression` on the board and return its value (via repr)."""
        text = self.exec(f"print(repr({expression}))", timeout=timeout).strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    def interrupt(self) -> None:
        """Send Ctrl-C, as a user pressing it at the REPL."""
        self.transport.serial.write(b"\x03")

    def read_available(self, wait: float = 0.5) -> bytes:
        """Whatever the board prints within `wait` seconds."""
        deadline = time.monotonic() + wait
        data = b""
        while time.monotonic() < deadline:
            n = self.transport.serial.in_waiting
            data += self.transport.serial.read(n) if n else b""
            time.sleep(0.02)
        return data

    def close(self) -> None:
        """Leave the raw REPL and close the port."""
        try:
            if self._in_raw:
                self.transport.exit_raw_repl()
            self.transport.close()
        except (OSError, TransportError):
            pass
        self._in_raw = False

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["BoardError", "BoardExecError", "BoardTimeout", "Connection", "TransportExecError"]
