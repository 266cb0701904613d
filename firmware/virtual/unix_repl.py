# REPL server for the unix virtual board, run by MicroPython's unix port.
#
# The unix port has no raw REPL on stdin/stdout, so mpremote cannot drive it.
# This script speaks the same protocol as shared/runtime/pyexec.c on a real
# board: friendly REPL, raw REPL, raw-paste mode with flow control, soft reset.
#
# The host-side supervisor (host/mpml/virtual/supervisor.py) connects our
# stdin/stdout to the board's pty and turns each Ctrl-C byte into SIGINT, which
# the unix port raises as KeyboardInterrupt, as a UART interrupt would on a
# board. A soft reset ends this process with EXIT_SOFT_RESET_*; the supervisor
# starts a fresh one, so the heap, modules and natmods really are reset.
#
# usage: micropython unix_repl.py ROOT_DIR raw|friendly

import micropython
import sys
import os
import vfs
import io
import select

CTRL_A = 1
CTRL_B = 2
CTRL_C = 3
CTRL_D = 4
CTRL_E = 5

EXIT_SOFT_RESET_RAW = 10
EXIT_SOFT_RESET_FRIENDLY = 11

# A real board's raw-paste window is half its stdin buffer (256 bytes).
RAW_PASTE_WINDOW = 128

_stdin = sys.stdin.buffer
_stdout = sys.stdout.buffer
_rxbuf = bytearray(512)
_rxlen = 0
_rxpos = 0
_poll = select.poll()
_poll.register(_stdin, select.POLLIN)


class _SoftReset(Exception):
    pass


def tx(data):
    _stdout.write(data)


def rx():
    # One byte from the host; Ctrl-C arrives as KeyboardInterrupt, not a byte.
    global _rxlen, _rxpos
    if _rxpos >= _rxlen:
        try:
            _rxlen = _fill()
        except KeyboardInterrupt:
            return CTRL_C
        _rxpos = 0
    c = _rxbuf[_rxpos]
    _rxpos += 1
    return c


def _fill():
    # readinto() on the unix port waits until the whole buffer is full, so
    # block for one byte, then take only what is already waiting.
    mv = memoryview(_rxbuf)
    if not _stdin.readinto(mv[0:1]):
        # The supervisor closed the link: power off.
        sys.exit(0)
    n = 1
    while n < len(_rxbuf) and _poll.poll(0):
        if not _stdin.readinto(mv[n : n + 1]):
            break
        n += 1
    return n


def print_exception(exc):
    # Drop the frames of this server so tracebacks read as on a real board.
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    me = __file__ if "__file__" in globals() else "unix_repl.py"
    lines = [ln for ln in buf.getvalue().split("\n") if me not in ln]
    tx("\r\n".join(lines).encode())


def unlock_heap():
    while micropython.heap_unlock():
        pass


class Board:
    def __init__(self):
        self.globals = {"__name__": "__main__"}

    def execute(self, source, mode, eof_markers):
        # Runs user code with the framing of pyexec's parse_compile_execute.
        try:
            code = compile(bytes(source).decode(), "<stdin>", mode)
            exec(code, self.globals)
            unlock_heap()
        except SystemExit:
            # As on a board: sys.exit() in the REPL means soft reset.
            if eof_markers:
                tx(b"\x04\x04")
            raise _SoftReset()
        except BaseException as e:
            # Code that raised under micropython.heap_lock() leaves the heap
            # locked; the C REPL needs no heap to report it, this one does.
            unlock_heap()
            if eof_markers:
                tx(b"\x04")
            print_exception(e)
            if eof_markers:
                tx(b"\x04")
            return
        if eof_markers:
            tx(b"\x04\x04")

    def raw_paste(self):
        # Raw-paste mode: the host may send a window of bytes per 0x01 we send.
        tx(b"R\x01")
        tx(bytes([RAW_PASTE_WINDOW & 0xFF, RAW_PASTE_WINDOW >> 8, 0x01]))
        remain = RAW_PASTE_WINDOW
        code = bytearray()
        while True:
            c = rx()
            if c == CTRL_C or c == CTRL_D:
                tx(b"\x04")
                break
            code.append(c)
            remain -= 1
            if remain == 0:
                tx(b"\x01")
                remain = RAW_PASTE_WINDOW
        if c == CTRL_C:
            tx(b"\x04")
            print_exception(KeyboardInterrupt())
            tx(b"\x04")
            return
        self.execute(code, "exec", True)

    def raw_repl(self):
        # Returns "friendly" to switch mode; raises _SoftReset on Ctrl-D.
        tx(b"raw REPL; CTRL-B to exit\r\n")
        while True:
            line = bytearray()
            tx(b">")
            while True:
                c = rx()
                if c == CTRL_A:
                    if len(line) == 2 and line[0] == CTRL_E:
                        if line[1] == ord("A"):
                            self.raw_paste()
                        else:
                            tx(b"R\x00")
                        line = bytearray()
                        tx(b">")
                        continue
                    tx(b"raw REPL; CTRL-B to exit\r\n")
                    line = bytearray()
                    tx(b">")
                elif c == CTRL_B:
                    tx(b"\r\n")
                    return "friendly"
                elif c == CTRL_C:
                    line = bytearray()
                elif c == CTRL_D:
                    break
                else:
                    line.append(c)
            tx(b"OK")
            if not line:
                tx(b"\r\n")
                raise _SoftReset()
            self.execute(line, "exec", True)

    def readline(self, prompt):
        # Minimal line editor: echo, backspace, and the REPL control keys.
        tx(prompt)
        line = bytearray()
        while True:
            c = rx()
            if c in (CTRL_A, CTRL_B, CTRL_D, CTRL_E) and not line:
                return c, line
            if c == CTRL_C:
                tx(b"\r\n")
                return c, line
            if c == 13 or c == 10:
                tx(b"\r\n")
                return None, line
            if c in (8, 127):
                if line:
                    line = line[:-1]  # MicroPython's bytearray has no pop()
                    tx(b"\x08 \x08")
            elif c >= 32 or c == 9:
                line.append(c)
                tx(bytes([c]))

    def friendly_repl(self):
        # sys.version is "3.4.0; MicroPython v1.25.0 on <date>"; print the banner a board prints.
        version = sys.version.split("; ", 1)[-1]
        tx(version.encode() + b"; " + sys.implementation._machine.encode() + b" (mpml unix virtual board)\r\n")
        tx(b'Type "help()" for more information.\r\n')
        while True:
            key, line = self.readline(b">>> ")
            if key == CTRL_A:
                tx(b"\r\n")
                return "raw"
            if key == CTRL_B:
                return "friendly"
            if key == CTRL_D:
                tx(b"\r\n")
                raise _SoftReset()
            if key == CTRL_E:
                line = self.paste_mode()
                if line is not None:
                    self.execute(line, "exec", False)
                continue
            if key == CTRL_C or not line:
                continue
            source = bytearray(line)
            while self.needs_more(source):
                key, more = self.readline(b"... ")
                if key == CTRL_C:
                    source = None
                    break
                if key == CTRL_D or not more:
                    break
                source += b"\n" + more
            if source:
                self.execute(source, "single", False)

    def paste_mode(self):
        tx(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
        line = bytearray()
        while True:
            c = rx()
            if c == CTRL_C:
                tx(b"\r\n")
                return None
            if c == CTRL_D:
                tx(b"\r\n")
                return line
            line.append(c)
            tx(b"\r\n=== " if c == 13 else bytes([c]))

    @staticmethod
    def needs_more(source):
        # Same rule of thumb as mp_repl_continue_with_input: a compound
        # statement or an open bracket asks for more lines.
        try:
            text = bytes(source).decode()
        except UnicodeError:
            # Line noise (the rest of a transfer whose link dropped): let
            # execute() report it as a board's REPL would, and carry on.
            return False
        if text.rstrip().endswith(":") or text.rstrip().endswith("\\"):
            return True
        depth = 0
        for ch in text:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        return depth > 0 or "\n" in text


def mount_root(root):
    # The board sees ROOT_DIR as "/", like the flash filesystem of a real board.
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(root), "/")
    os.chdir("/")
    for d in ("/lib", "/models"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    sys.path[:] = ["", ".frozen", "/lib"]


def main():
    root, mode = sys.argv[1], sys.argv[2]
    mount_root(root)
    board = Board()
    while True:
        try:
            if mode == "raw":
                mode = board.raw_repl()
            else:
                mode = board.friendly_repl()
        except _SoftReset:
            tx(b"MPY: soft reboot\r\n")
            sys.exit(EXIT_SOFT_RESET_RAW if mode == "raw" else EXIT_SOFT_RESET_FRIENDLY)
        except KeyboardInterrupt:
            # Ctrl-C between two reads: the real REPL would just carry on.
            pass


main()
