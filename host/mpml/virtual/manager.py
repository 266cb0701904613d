"""Start, stop and list virtual boards (what `mpml virtual ...` does)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from .spec import VirtualBoardError, VirtualBoardSpec, spec


@dataclass
class VirtualBoard:
    """A started virtual board, as its supervisor last described it."""

    name: str
    state_dir: Path
    state: dict

    @property
    def port(self) -> str:
        """The serial device path any serial tool (mpremote, pyserial) can open."""
        return self.state.get("tty", "")

    @property
    def kind(self) -> str:
        return self.state.get("kind", "")

    @property
    def arch(self) -> str:
        return self.state.get("arch", "")

    @property
    def status(self) -> str:
        """starting, running, crashed or stopped ("stopped" too if the supervisor died)."""
        status = self.state.get("status", "stopped")
        if status != "stopped" and not process_alive(self.state.get("pid", 0)):
            return "stopped"
        return status

    def refresh(self) -> VirtualBoard:
        self.state = _read_state(self.state_dir) or self.state
        return self

    def console_tail(self, nbytes: int = 2000) -> str:
        """The board's last console output, for error messages."""
        log = self.state_dir / "console.log"
        try:
            with log.open("rb") as f:
                f.seek(max(0, log.stat().st_size - nbytes))
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def process_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _read_state(state_dir: Path) -> dict:
    try:
        return json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def get(name: str) -> VirtualBoard | None:
    """The board called `name`, if it was ever started here."""
    state_dir = paths.run_dir() / name
    state = _read_state(state_dir)
    return VirtualBoard(name, state_dir, state) if state else None


def boards() -> list[VirtualBoard]:
    """Every virtual board with state in the run folder, running or not."""
    root = paths.run_dir()
    if not root.exists():
        return []
    found = [get(p.name) for p in sorted(root.iterdir()) if p.is_dir()]
    return [b for b in found if b is not None]


def start(kind: str, name: str | None = None, fresh: bool = False, timeout: float = 20.0,
          watch_pid: int | None = None) -> VirtualBoard:
    """Boot a virtual board of `kind` and wait until its REPL has spoken.

    `name` defaults to the kind; `fresh` erases its filesystem first (the unix
    board's flash folder persists between starts, as flash does). With
    `watch_pid`, the board stops by itself when that process ends (used by the
    tests so that no board outlives them). Returns the running board; an
    already running board of that name is returned as it is.
    """
    board_spec: VirtualBoardSpec = spec(kind)
    board_spec.check_built()
    if board_spec.engine == "qemu" and not shutil.which(board_spec.qemu):
        raise VirtualBoardError(f"{board_spec.qemu} is not installed: run `make setup`")
    name = name or kind
    existing = get(name)
    if existing and existing.status in ("starting", "running"):
        if existing.kind != kind:
            raise VirtualBoardError(f"a {existing.kind} board called {name!r} is already running")
        return existing
    if existing:
        stop(name)  # a board left "crashed" still has a supervisor holding its port
    state_dir = paths.run_dir() / name
    if fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "state.json").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "mpml.virtual.supervisor", kind, "--name", name, "--state-dir", str(state_dir)]
    if watch_pid:
        cmd += ["--watch-pid", str(watch_pid)]
    with open(state_dir / "supervisor.log", "ab") as log:
        import subprocess  # only starting a board needs it (a command's start-up time)

        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _read_state(state_dir)
        if state.get("status") == "running":
            return VirtualBoard(name, state_dir, state)
        if proc.poll() is not None or state.get("status") in ("crashed", "stopped"):
            break
        time.sleep(0.05)
    board = VirtualBoard(name, state_dir, _read_state(state_dir))
    stop(name)
    sup_log = (state_dir / "supervisor.log").read_text(errors="replace")[-2000:]
    raise VirtualBoardError(
        f"the {kind} board did not come up within {timeout:.0f} s.\n"
        f"last console output:\n{board.console_tail() or '(none)'}\n"
        f"supervisor log:\n{sup_log or '(empty)'}"
    )


def stop(name: str, timeout: float = 5.0) -> bool:
    """Stop the board `name` and its firmware process. True if it was running."""
    board = get(name)
    if board is None:
        return False
    pid = board.state.get("pid", 0)
    was_running = process_alive(pid)
    if was_running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
    # The firmware dies with its supervisor (PDEATHSIG); make sure of it.
    child = board.state.get("child_pid", 0)
    if process_alive(child):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (board.state_dir / "tty").unlink(missing_ok=True)
    return was_running


def stop_all() -> list[str]:
    """Stop every running virtual board; returns the names stopped."""
    return [b.name for b in boards() if stop(b.name)]
