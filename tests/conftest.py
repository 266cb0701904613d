"""Test harness: virtual boards as fixtures, reached through mpml's transport.

`board` is parametrized over every virtual board kind; `conn` is a fresh
Connection (soft reset, as mpremote does) to it. Boards are started once per
session in a private run folder, watch the pytest process (so none outlives it)
and are stopped at the end. A board that failed to build fails its tests, or
for an optional board (rv32) skips them with the build error as the reason;
the summary at the end lists every board's state either way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager

import pytest

# Keep the tests' boards apart from any the user has running: set before mpml
# reads it, and inherited by the `mpml` and `mpremote` commands tests run.
_OWN_RUN_DIR = "MPML_RUN_DIR" not in os.environ
os.environ.setdefault("MPML_RUN_DIR", tempfile.mkdtemp(prefix="mpml-test-boards-"))

from mpml import virtual  # noqa: E402
from mpml.device import Connection  # noqa: E402

ALL_KINDS = sorted(virtual.specs())
# The `board` fixture's kinds. A board file with `generic_tests = false` (m0k:
# an m0 with mpml built into its firmware) runs only the tests that name it.
BOARD_KINDS = [k for k in ALL_KINDS if virtual.spec(k).raw.get("generic_tests", True)]
_started: dict[str, virtual.VirtualBoard] = {}
_problems: dict[str, str] = {}
_any_failed = False


def start_board(kind: str) -> virtual.VirtualBoard:
    """The session's board of `kind`, started on first use."""
    spec = virtual.spec(kind)
    if kind in _problems:
        _unavailable(spec, _problems[kind])
    board = _started.get(kind)
    if board is not None and board.refresh().status == "running":
        return board
    try:
        board = virtual.start(kind, name=f"test-{kind}", fresh=True, watch_pid=os.getpid())
    except virtual.VirtualBoardError as e:
        _problems[kind] = str(e)
        _unavailable(spec, str(e))
    _started[kind] = board
    return board


def wait_for_crash_reboot(name: str, crashes_before: int, timeout: float = 10.0) -> dict:
    """The board's state once it has counted one more crash and booted again."""
    deadline = time.monotonic() + timeout
    state = virtual.get(name).state
    while time.monotonic() < deadline:
        state = virtual.get(name).state
        if state["crashes"] > crashes_before and state.get("status") == "running":
            break
        time.sleep(0.1)
    # Let the rebooted firmware reach its prompt before anyone connects.
    time.sleep(0.5)
    return state


def _unavailable(spec: virtual.VirtualBoardSpec, why: str) -> None:
    if spec.optional:
        pytest.skip(f"{spec.kind} board unavailable (optional): {why}")
    pytest.fail(f"{spec.kind} board unavailable: {why}")


@pytest.fixture(params=BOARD_KINDS)
def board(request) -> virtual.VirtualBoard:
    """A running virtual board of each kind."""
    return start_board(request.param)


@pytest.fixture
def conn(board):
    """A REPL connection to `board` (soft-reset on entry, closed afterwards)."""
    c = Connection(board.port, timeout=15)
    yield c
    c.close()


def pytest_sessionfinish(session, exitstatus):
    virtual.stop_all()


def pytest_runtest_logreport(report):
    global _any_failed
    if report.failed:
        _any_failed = True


def pytest_unconfigure(config):
    # Our private run folder goes, unless a test failed: then its console logs
    # are worth keeping (the summary gives the path).
    if _OWN_RUN_DIR and not _any_failed:
        shutil.rmtree(os.environ["MPML_RUN_DIR"], ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.section("virtual boards")
    for kind in ALL_KINDS:
        spec = virtual.spec(kind)
        status = spec.build_status()
        if status and not status.get("ok"):
            line = f"{kind:5} {spec.arch:8} BUILD FAILED (log: {status.get('log')})"
        elif kind in _problems:
            line = f"{kind:5} {spec.arch:8} DID NOT START: {_problems[kind].splitlines()[0]}"
        elif kind in _started:
            b = _started[kind].refresh()
            line = (f"{kind:5} {spec.arch:8} tested; boots {b.state.get('boots')}, "
                    f"crashes {b.state.get('crashes')} (some tests crash boards on purpose)")
        else:
            line = f"{kind:5} {spec.arch:8} not used by the selected tests"
        tr.write_line(line)
    if _any_failed:
        tr.write_line(f"board consoles and state kept in {os.environ['MPML_RUN_DIR']}")


# -- the mpml device runtime installed on a board (test_device_runtime, test_fuzz, test_tflm_on_boards) --

# The boards the engine's bit-exact tests run on: x64, a Cortex-M0 and a Cortex-M3.
# m0k: the Cortex-M0 with the kernels compiled in and mpml frozen (nothing installed).
RUNTIME_BOARDS = ("unix", "m0", "m3", "m0k")

_runtimes: dict[str, tuple[virtual.VirtualBoard, int]] = {}


def runtime_board(kind: str) -> virtual.VirtualBoard:
    """The session's board of `kind` with mpml's device package (and natmod, if built) in /lib/mpml.

    Installed once per session, again after the board crashed (a qemu
    board's RAM disk may not survive the reboot). A board whose firmware has
    mpml built in (`builtin_mpml = true`: m0k) gets nothing installed.
    """
    from mpml.device.package import install

    board = start_board(kind)
    if virtual.spec(kind).raw.get("builtin_mpml"):
        return board
    crashes = board.refresh().state.get("crashes")
    if _runtimes.get(kind) != (board, crashes):
        with Connection(board.port, timeout=60) as c:
            install(c, board.arch)
        _runtimes[kind] = (board, board.refresh().state.get("crashes"))
    return board


def backends_for(board: virtual.VirtualBoard) -> list[str]:
    """Kernel backends to check on a board: native when its natmod is built (or compiled in), and viper."""
    from mpml.device.package import native_module

    if virtual.spec(board.kind).raw.get("builtin_mpml"):
        return ["native", "viper"]
    return (["native"] if native_module(board.arch) else []) + ["viper"]


@pytest.fixture(params=RUNTIME_BOARDS)
def rt_board(request) -> virtual.VirtualBoard:
    """Each of RUNTIME_BOARDS with the device runtime installed."""
    return runtime_board(request.param)


# Board-side helper of the bit-exact tests: load a base64 blob with each
# backend, run hex-encoded int8 inputs, print "R <asked> <used> <outputs hex>".
INT8_RUNNER = """
import binascii, gc
import mpml.model as M
def _run_int8(blob, backends, ins, nout):
    buf = binascii.a2b_base64(blob)
    for be in backends:
        m = M.load(buf, be)
        outs = [bytearray(n) for n in nout]
        for x in ins:
            m.run([bytearray(binascii.unhexlify(h)) for h in x], outs)
            print('R', be, m.backend, ''.join(binascii.hexlify(o).decode() for o in outs))
        m = None
        gc.collect()
"""


@contextmanager
def runtime_moved_aside(conn: Connection):
    """The board's /lib/mpml moved aside for the block (as if never installed), put back after."""
    # (The unix board's VfsPosix in MicroPython 1.25 fails rename() when both paths are absolute.)
    from mpml.device.board import DEVICE_DIR
    aside = DEVICE_DIR + "_aside"
    conn.exec(f"import os\nos.rename({DEVICE_DIR!r}, {aside[1:]!r})")
    try:
        yield
    finally:
        conn.exec(f"import os\nos.rename({aside!r}, {DEVICE_DIR[1:]!r})")
