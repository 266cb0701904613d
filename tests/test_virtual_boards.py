"""Every virtual board behaves like a MicroPython board on USB.

Each test runs on each board kind (unix x64, m0 armv6m, m3 armv7m, rv32
rv32imc), through mpml's Connection or the unmodified mpremote command.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import start_board, wait_for_crash_reboot
from mpml.device import BoardExecError, BoardTimeout, Connection
from mpml.device.arch import arch_from_mpy, mpy_version

MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(port: str, *args: str, timeout: float = 30) -> str:
    """Run the real mpremote command against `port`; its stdout, or a failure with its output."""
    r = subprocess.run([*MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"mpremote {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_port_is_a_serial_device(board):
    assert stat.S_ISCHR(os.stat(board.port).st_mode)


def test_reports_its_true_native_arch(board, conn):
    mpy = conn.eval("__import__('sys').implementation._mpy")
    assert arch_from_mpy(mpy) == board.state["mpy_arch"]
    assert mpy_version(mpy) == (6, 3)


def test_mpremote_copies_a_file_and_the_board_sees_it(board, tmp_path):
    # The README's promise, with the unmodified mpremote command.
    src = tmp_path / "somefile"
    payload = bytes(range(256)) * 20 + b"end"
    src.write_bytes(payload)
    mpremote(board.port, "fs", "cp", str(src), ":somefile")
    size = mpremote(board.port, "exec", "import os; print(os.stat('somefile')[6])").strip()
    assert int(size) == len(payload)
    assert "somefile" in mpremote(board.port, "fs", "ls")
    back = tmp_path / "back"
    mpremote(board.port, "fs", "cp", ":somefile", str(back))
    assert back.read_bytes() == payload
    mpremote(board.port, "fs", "rm", ":somefile")
    assert "somefile" not in mpremote(board.port, "fs", "ls")


def test_mpremote_eval_run_and_cat(board, tmp_path):
    assert mpremote(board.port, "eval", "6 * 7").strip() == "42"
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('hello from', sys.platform)\n")
    assert "hello from" in mpremote(board.port, "run", str(script))
    # Close the file: littlefs, like a real board's, only commits it on close.
    mpremote(board.port, "exec", "with open('/lib/note.txt', 'w') as f: f.write('kept in /lib')")
    assert mpremote(board.port, "fs", "cat", ":/lib/note.txt").strip() == "kept in /lib"


def test_filesystem_has_lib_and_models(board, conn):
    listing = conn.eval("sorted(__import__('os').listdir('/'))")
    assert {"lib", "models"} <= set(listing)
    conn.exec("f = open('/models/m.bin', 'wb'); f.write(bytes(1000)); f.close()")
    assert conn.eval("__import__('os').stat('/models/m.bin')[6]") == 1000
    conn.exec("import os; os.remove('/models/m.bin')")


def test_qemu_ramdisk_has_the_stated_size(board, conn):
    spec_bytes = board.state.get("ramdisk_bytes")
    if not spec_bytes:
        pytest.skip("the unix board's filesystem is a host folder, not a RAM disk")
    bsize, _, blocks = conn.eval("__import__('os').statvfs('/')")[:3]
    assert bsize * blocks == spec_bytes


def test_qemu_ramdisk_block_device_refuses_blocks_outside_the_disk(board, conn):
    # vboard.RAMDisk is C: a bad block number or offset must give -EIO (what
    # littlefs and Python callers check), never a read or write past the disk.
    if not board.state.get("ramdisk_bytes"):
        pytest.skip("the unix board's filesystem is a host folder, not a RAM disk")
    conn.exec("import vboard\nd = vboard.RAMDisk(512)\nn = d.ioctl(4, 0)\nb = bytearray(1024)")
    count, size = conn.eval("(n, d.ioctl(5, 0))")
    assert size == 512 and count * size == board.state["ramdisk_bytes"]
    assert conn.eval("(d.readblocks(0, b), b'littlefs' in b)") == (0, True)  # blocks 0-1: the superblock
    assert conn.eval("(d.readblocks(n, b), d.readblocks(n - 1, b), d.readblocks(0, b, 512 * 1024 * 1024),"
                     " d.writeblocks(-1, b), d.writeblocks(n, b, 4))") == (-5,) * 5
    with pytest.raises(BoardExecError, match="ValueError"):
        conn.exec("import vboard; vboard.RAMDisk(100)")
    assert conn.eval("len(__import__('os').listdir('/'))") > 0  # the filesystem is as it was


def test_files_survive_a_soft_reset(board, conn):
    conn.exec("with open('/keep.txt', 'w') as f: f.write('flash')")
    conn.close()
    with Connection(board.port) as again:  # soft-resets on entry
        assert again.eval("open('/keep.txt').read()") == "flash"
        again.exec("import os; os.remove('/keep.txt')")


def test_soft_reset_clears_the_heap(board, conn):
    conn.exec("left_over = 123")
    assert conn.eval("left_over") == 123
    conn.close()
    with Connection(board.port) as again:
        with pytest.raises(BoardExecError, match="NameError"):
            again.exec("left_over")


def test_ctrl_c_interrupts_a_running_loop(board, conn):
    conn.enter_raw_repl()
    conn.transport.exec_raw_no_follow("n = 0\nwhile True:\n    n += 1\n")
    time.sleep(0.5)
    conn.interrupt()
    out, err = conn.transport.follow(10)
    assert b"KeyboardInterrupt" in err
    # The board is still usable, and the loop really ran.
    assert conn.eval("n") > 0


def test_ctrl_c_interrupts_a_blocking_stdin_read(board, conn):
    # A program waiting for input (a receiver whose sender went away) must
    # still take Ctrl-C, as a real board's UART interrupt delivers it.
    conn.enter_raw_repl()
    conn.transport.exec_raw_no_follow("import sys\nn = 1\nsys.stdin.read(100)\nn = 2\n")
    time.sleep(0.5)
    conn.interrupt()
    out, err = conn.transport.follow(10)
    assert b"KeyboardInterrupt" in err
    assert conn.eval("n") == 1


def test_raw_paste_of_a_large_program(board, conn):
    # 20 KB of code exercises raw-paste flow control on every board.
    lines = [f"v{i} = {i} * 3" for i in range(1200)]
    lines.append("print(sum(globals()[f'v{i}'] for i in range(1200)))")
    assert int(conn.exec("\n".join(lines)).strip()) == 3 * sum(range(1200))


def test_viper_code_runs_natively(board, conn):
    code = (
        "import micropython\n"
        "@micropython.viper\n"
        "def dot(a: ptr8, b: ptr8, n: int) -> int:\n"
        "    s = 0\n"
        "    for i in range(n):\n"
        "        s += int(a[i]) * int(b[i])\n"
        "    return s\n"
        "print(dot(bytes(range(10)), bytes(range(10)), 10))\n"
    )
    assert int(conn.exec(code).strip()) == sum(i * i for i in range(10))


def test_exceptions_come_back_as_board_errors(board, conn):
    with pytest.raises(BoardExecError) as e:
        conn.exec("raise ValueError('bad input 17')")
    assert "ValueError: bad input 17" in e.value.traceback
    assert conn.eval("1 + 1") == 2


def test_an_exception_under_heap_lock_leaves_the_unix_board_answering():
    # MicroPython's C REPL (the qemu boards) reports it without a heap and
    # leaves the heap locked until a soft reset, as on hardware; the unix
    # board's REPL, written in Python, needs the heap, so it unlocks it.
    with Connection(start_board("unix").port) as conn:
        with pytest.raises(BoardExecError) as e:
            conn.exec("import micropython\nmicropython.heap_lock()\nx = [1, 2]")
        assert "MemoryError" in e.value.traceback
        assert conn.eval("len([1, 2, 3])") == 3


def test_a_hung_board_is_reported_with_its_last_output(board):
    # Viper loops never look at Ctrl-C: on every board this hangs the REPL.
    # The transport must give up with the board's last words, not hang too.
    hang = (
        "import micropython\n"
        "@micropython.viper\n"
        "def spin():\n"
        "    while True:\n"
        "        pass\n"
        "print('about to hang')\n"
        "spin()\n"
    )
    c = Connection(board.port, timeout=3)
    try:
        with pytest.raises(BoardTimeout) as e:
            c.exec(hang, timeout=3)
        assert "about to hang" in str(e.value)
    finally:
        c.close()
        _restart(board)


def _restart(board):
    # A hung board needs a power cycle, as on the desk.
    from mpml import virtual

    virtual.stop(board.name)
    fresh = virtual.start(board.kind, name=board.name, watch_pid=os.getpid())
    board.state = fresh.state
    with Connection(board.port) as c:
        assert c.eval("2 + 2") == 4


def test_a_crash_is_detected_and_the_board_reboots(board):
    from mpml import virtual

    before = virtual.get(board.name).state["crashes"]
    if board.kind == "unix":
        crash = "import os\nos.system('kill -SEGV $PPID')\n"  # the shell's parent is the firmware
    elif board.arch.startswith("arm"):
        crash = "@micropython.asm_thumb\ndef udf():\n    data(2, 0xde00)\nudf()\n"  # UDF: undefined
    else:
        crash = "@micropython.asm_rv32\ndef bad():\n    data(4, 0)\nbad()\n"  # all zeros: illegal
    c = Connection(board.port, timeout=5)
    try:
        with pytest.raises((BoardTimeout, BoardExecError)):
            c.exec(crash, timeout=5)
    finally:
        c.close()
    state = wait_for_crash_reboot(board.name, before)
    assert state["crashes"] == before + 1, state
    assert state["last_crash"]["last_output"] is not None
    with Connection(board.port) as again:
        assert again.eval("3 * 3") == 9


def test_state_file_names_the_port(board):
    state = json.loads((Path(board.state_dir) / "state.json").read_text())
    assert state["tty"] == board.port and state["arch"] == board.arch
