"""The process behind one virtual board: a pty that looks like a USB serial port.

`mpml virtual start` runs this detached (`python -m mpml.virtual.supervisor`).
It opens a pseudo-terminal, whose slave path is the board's "serial port", and
relays bytes between it and the firmware process (the unix port running
firmware/virtual/unix_repl.py, or qemu with the board's UART on stdio).

Why a relay rather than handing the pty to the firmware directly:
  - on the unix board, Ctrl-C must interrupt running code, so the 0x03 byte is
    turned into SIGINT (a real board's UART interrupt does the same);
  - a soft reset on the unix board restarts the firmware process, and a crash
    or `machine.reset()` on any board reboots it, while the port stays the same,
    as a board re-enumerates under the same device on a real host;
  - the console output is kept (console.log) so a hang or crash can be reported
    with the board's last words.
State goes to RUN_DIR/NAME/state.json, written atomically.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import time
import tty
from collections import deque
from pathlib import Path

from .. import paths
from .manager import process_alive
from .spec import VirtualBoardSpec, spec

# Exit codes of firmware/virtual/unix_repl.py for a soft reset.
EXIT_SOFT_RESET = {10: "raw", 11: "friendly"}
# Hold back host input beyond this much unread by the firmware (flow control).
MAX_PENDING_IN = 64 * 1024
# Board output nobody reads is dropped past this much, as a USB CDC port with
# no host attached drops it.
MAX_PENDING_OUT = 1024 * 1024
LOG_ROTATE_BYTES = 4 * 1024 * 1024
TAIL_BYTES = 4096
CRASH_LOOP = (5, 10.0)  # this many crashes within this many seconds: give up
# The qemu port's fault handlers print this and then spin for ever; a board
# would sit there until its watchdog or a human reset it. We reset it, after
# letting the register dump through.
FAULT_MARK = b" EXCEPTION CAUGHT:"  # ARM: "HardFault exception caught:", RISC-V in capitals
FAULT_GRACE = 0.3

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # No firmware process may outlive its supervisor, whatever kills it.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def firmware_command(board: VirtualBoardSpec, flash_dir: Path, mode: str) -> list[str]:
    """The command line that boots `board`'s firmware with its UART on stdio."""
    if board.engine == "unix":
        server = paths.FIRMWARE_SRC / "virtual" / "unix_repl.py"
        return [str(board.firmware_path), "-X", f"heapsize={board.heap}", str(server), str(flash_dir), mode]
    return [
        board.qemu, *board.qemu_args,
        "-nographic", "-monitor", "null", "-semihosting",
        "-chardev", "stdio,id=uart0,signal=off", "-serial", "chardev:uart0",
        "-kernel", str(board.firmware_path),
    ]


class Supervisor:
    """Relays one board's serial link and keeps its firmware running."""

    def __init__(self, board: VirtualBoardSpec, name: str, state_dir: Path, watch_pid: int | None):
        self.board = board
        self.name = name
        self.dir = state_dir
        self.watch_pid = watch_pid
        self.flash_dir = state_dir / "flash"
        self.log_path = state_dir / "console.log"
        self.tail: deque[bytes] = deque()
        self.tail_len = 0
        self.to_child = bytearray()
        self.to_host = bytearray()
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.last_sigint = 0.0
        self.fault_deadline = 0.0
        self.crash_times: deque[float] = deque(maxlen=CRASH_LOOP[0])
        self.state = {
            "name": name,
            "kind": board.kind,
            "arch": board.arch,
            "mpy_arch": board.mpy_arch,
            "pid": os.getpid(),
            "status": "starting",
            "started": time.time(),
            "boots": 0,
            "soft_resets": 0,
            "crashes": 0,
            "dropped_output_bytes": 0,
            "filesystem": board.filesystem,
            "ramdisk_bytes": board.ramdisk_bytes,
        }

    # -- state and console -------------------------------------------------
    def save_state(self) -> None:
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=2))
        os.replace(tmp, self.dir / "state.json")

    def record_output(self, data: bytes) -> None:
        self.tail.append(data)
        self.tail_len += len(data)
        while self.tail_len - len(self.tail[0]) >= TAIL_BYTES:
            self.tail_len -= len(self.tail.popleft())
        self.log.write(data)
        self.log.flush()
        if self.log.tell() > LOG_ROTATE_BYTES:
            self.log.close()
            os.replace(self.log_path, self.log_path.with_suffix(".log.1"))
            self.log = self.log_path.open("ab")

    def tail_text(self) -> str:
        return b"".join(self.tail)[-TAIL_BYTES:].decode(errors="replace")

    # -- firmware process --------------------------------------------------
    def boot(self, mode: str) -> None:
        cmd = firmware_command(self.board, self.flash_dir, mode)
        self.child = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr_log,
            preexec_fn=_die_with_parent, bufsize=0,
        )
        os.set_blocking(self.child.stdin.fileno(), False)
        os.set_blocking(self.child.stdout.fileno(), False)
        self.sel.register(self.child.stdout, selectors.EVENT_READ, "child_out")
        self.state["child_pid"] = self.child.pid
        self.state["boots"] += 1
        self.save_state()

    def child_exited(self) -> None:
        self.fault_deadline = 0.0
        self.sel.unregister(self.child.stdout)
        self.to_child.clear()
        try:
            self.sel.unregister(self.child.stdin)
        except (KeyError, ValueError):
            pass
        code = self.child.wait()
        self.child.stdin.close()
        self.child.stdout.close()
        self.child = None
        if self.stopping:
            return
        if code in EXIT_SOFT_RESET and self.board.engine == "unix":
            self.state["soft_resets"] += 1
            self.boot(EXIT_SOFT_RESET[code])
            return
        if code != 0:
            # A crash (signal, HardFault, abort): note it with the last output,
            # then reboot as a board's watchdog or reset button would.
            now = time.time()
            self.crash_times.append(now)
            self.state["crashes"] += 1
            self.state["last_crash"] = {"time": now, "exit_code": code, "last_output": self.tail_text()}
            marker = f"\r\n[mpml virtual board: firmware exited with code {code}; rebooting]\r\n".encode()
            self.record_output(marker)
            if len(self.crash_times) == CRASH_LOOP[0] and now - self.crash_times[0] < CRASH_LOOP[1]:
                self.state["status"] = "crashed"
                self.save_state()
                return
        self.boot("friendly")

    def interrupt(self) -> None:
        # The unix port exits on a second SIGINT that arrives before the first
        # was handled; space them out as a human (or mpremote) would.
        wait = 0.05 - (time.monotonic() - self.last_sigint)
        if wait > 0:
            time.sleep(wait)
        if self.child is not None:
            self.child.send_signal(signal.SIGINT)
        self.last_sigint = time.monotonic()

    # -- relay ---------------------------------------------------------------
    def from_host(self, data: bytes) -> None:
        if self.child is None:
            return  # a board that is off ignores its UART
        if self.board.engine != "unix":
            self.to_child += data
            return
        parts = data.split(b"\x03")
        for i, part in enumerate(parts):
            if i:
                self.flush_to_child()
                self.interrupt()
            self.to_child += part

    def flush_to_child(self) -> None:
        # Deliver what came before a Ctrl-C before interrupting.
        deadline = time.monotonic() + 1.0
        while self.to_child and self.child is not None and time.monotonic() < deadline:
            try:
                n = os.write(self.child.stdin.fileno(), self.to_child)
                del self.to_child[:n]
            except BlockingIOError:
                time.sleep(0.001)
            except BrokenPipeError:
                self.to_child.clear()

    def update_interest(self) -> None:
        want_in = len(self.to_child) < MAX_PENDING_IN
        events = (selectors.EVENT_READ if want_in else 0) | (selectors.EVENT_WRITE if self.to_host else 0)
        self._modify(self.master, events, "master")
        if self.child is not None:
            self._modify(self.child.stdin, selectors.EVENT_WRITE if self.to_child else 0, "child_in")

    def _modify(self, fileobj, events: int, tag: str) -> None:
        try:
            key = self.sel.get_key(fileobj)
        except KeyError:
            key = None
        if events == 0:
            if key is not None:
                self.sel.unregister(fileobj)
        elif key is None:
            self.sel.register(fileobj, events, tag)
        elif key.events != events:
            self.sel.modify(fileobj, events, tag)

    def run(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flash_dir.mkdir(exist_ok=True)
        self.log = self.log_path.open("ab")
        self.stderr_log = (self.dir / "firmware-stderr.log").open("ab")
        self.master, slave = pty.openpty()
        # Keep our own slave fd open: the port must not vanish (EIO) each time
        # a client closes it, as a USB serial device does not.
        tty.setraw(slave)
        os.set_blocking(self.master, False)
        tty_path = os.ttyname(slave)
        self.state["tty"] = tty_path
        link = self.dir / "tty"
        link.unlink(missing_ok=True)
        link.symlink_to(tty_path)

        self.sel = selectors.DefaultSelector()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_stop_signal)
        self.boot("friendly")
        last_watch = time.monotonic()
        while not self.stopping:
            self.update_interest()
            for key, events in self.sel.select(timeout=0.5):
                self.handle(key.data, events)
            if self.watch_pid and time.monotonic() - last_watch > 1.0:
                last_watch = time.monotonic()
                if not process_alive(self.watch_pid):
                    self.stopping = True
            if self.fault_deadline and time.monotonic() > self.fault_deadline and self.child is not None:
                self.fault_deadline = 0.0
                self.child.kill()
        self.shutdown()
        os.close(slave)
        return 0

    def handle(self, tag: str, events: int) -> None:
        if tag == "master":
            if events & selectors.EVENT_READ:
                try:
                    data = os.read(self.master, 65536)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self.from_host(data)
            if events & selectors.EVENT_WRITE and self.to_host:
                try:
                    n = os.write(self.master, self.to_host)
                    del self.to_host[:n]
                except (BlockingIOError, OSError):
                    pass
        elif tag == "child_in" and self.child is not None:
            try:
                n = os.write(self.child.stdin.fileno(), self.to_child)
                del self.to_child[:n]
            except BlockingIOError:
                pass
            except BrokenPipeError:
                self.to_child.clear()
        elif tag == "child_out" and self.child is not None:
            try:
                data = os.read(self.child.stdout.fileno(), 65536)
            except BlockingIOError:
                return
            if not data:
                self.child_exited()
                return
            if self.state["status"] == "starting":
                self.state["status"] = "running"
                self.save_state()
            self.record_output(data)
            if self.board.engine == "qemu" and not self.fault_deadline and FAULT_MARK in b"".join(self.tail)[-len(data) - len(FAULT_MARK):].upper():
                self.fault_deadline = time.monotonic() + FAULT_GRACE
            room = MAX_PENDING_OUT - len(self.to_host)
            if room < len(data):
                self.state["dropped_output_bytes"] += len(data) - max(room, 0)
                data = data[: max(room, 0)]
            self.to_host += data

    def _on_stop_signal(self, signum, frame) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        if self.child is not None:
            self.child.terminate()
            try:
                self.child.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self.state["status"] = "stopped"
        self.state["stopped"] = time.time()
        self.save_state()
        (self.dir / "tty").unlink(missing_ok=True)
        self.log.close()
        self.stderr_log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Supervise one mpml virtual board (started by `mpml virtual start`).")
    ap.add_argument("kind")
    ap.add_argument("--name", required=True)
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--watch-pid", type=int, help="stop the board when this process ends")
    args = ap.parse_args(argv)
    return Supervisor(spec(args.kind), args.name, args.state_dir, args.watch_pid).run()


if __name__ == "__main__":
    sys.exit(main())
