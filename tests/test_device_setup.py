"""Board API, `mpml devices`, `mpml install` and their faults, on the virtual boards.

Install is measured by the bytes written to the serial link: a second install
sends only the board's hash check (no file). Faults: runtime missing, of
another version, a native module of the wrong arch: each a clear message
naming `mpml install --port ...`; a busy board is interrupted with Ctrl-C.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import runtime_board, runtime_moved_aside, start_board

import mpml
from mpml.device import Board, BoardError, RuntimeMismatch, require_runtime
from mpml.device import ports
from mpml.device.install import DEVICE_DIR, MANIFEST, install, source_package_json
from mpml.device.package import native_module

REPO = Path(__file__).resolve().parents[1]
MPML = [sys.executable, "-m", "mpml"]
MPREMOTE = str(Path(sys.executable).parent / "mpremote")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


# -- ports --

def test_shortcuts_resolve_as_mpremote_does():
    assert ports.expand_shortcut("a0") == "/dev/ttyACM0"
    assert ports.expand_shortcut("u3") == "/dev/ttyUSB3"
    assert ports.expand_shortcut("c1") == "COM1"
    assert ports.expand_shortcut("port:/dev/ttyS5") == "/dev/ttyS5"
    assert ports.expand_shortcut("m0") == "m0"
    assert ports.resolve("a0").device == "/dev/ttyACM0"


def test_auto_with_several_boards_lists_them(monkeypatch):
    start_board("unix"), start_board("m0")
    monkeypatch.setattr(ports, "list_serial_ports", lambda usb_only=True: [])
    with pytest.raises(BoardError) as e:
        ports.resolve("auto")
    msg = str(e.value)
    assert "several boards" in msg and "--port" in msg and "test-unix" in msg and "test-m0" in msg


def test_port_by_virtual_name_and_kind():
    b = start_board("unix")
    assert ports.resolve("test-unix").device == b.port
    assert ports.resolve("unix").virtual_name is not None  # a running board of that kind
    with pytest.raises(BoardError, match="not a serial device path"):
        ports.resolve("no-such-board")


# -- Board.open / probe --

@pytest.mark.parametrize("kind,arch,mpy_arch", [("unix", "x64", "x64"), ("m0", "armv6m", "armv6m"),
                                                ("m3", "armv7m", "armv7em")])
def test_probe(kind, arch, mpy_arch):
    vb = start_board(kind)
    with Board.open(vb.name) as b:
        i = b.probe()
    assert i.micropython.startswith("1.") and i.mpy_version == (6, 3)
    # The M3 reports armv7em; the board file says what to build for.
    assert (i.mpy_arch, i.arch, i.board_file) == (mpy_arch, arch, kind)
    assert i.free_heap > 50_000 and i.free_flash and i.free_flash > 0


# -- install --

@pytest.mark.parametrize("kind", ["unix", "m0", "m3"])
def test_install_is_idempotent(kind):
    vb = runtime_board(kind)  # the session's runtime (package.install), shared with the engine's tests
    with Board.open(vb.name, timeout=60) as b:
        install(b)  # brings it to this install's state (at most the manifest is written)
        r = install(b)
        info = require_runtime(b, native=native_module(vb.arch) is not None)
    assert r.sent == [] and r.removed == [] and len(r.unchanged) >= 6
    assert r.bytes_sent < 1500, f"second install sent {r.bytes_sent} bytes"
    assert info.runtime_version == mpml.__version__
    print(f"\n{kind}: second install {r.bytes_sent} bytes over the link, {r.seconds:.2f} s, "
          f"{len(r.unchanged)} files checked")


def test_full_install_then_only_what_differs_and_stale_removed():
    vb = runtime_board("unix")
    with Board.open(vb.name) as b:
        b.conn.exec(f"import os\nfor n in os.listdir({DEVICE_DIR!r}):\n    os.remove({DEVICE_DIR!r} + '/' + n)\n"
                    f"os.rmdir({DEVICE_DIR!r})")
        first = install(b)
        assert first.unchanged == [] and "__init__.mpy" in first.sent and "_native.mpy" in first.sent
        total = sum(len(p.read_bytes()) for p in (REPO / "build" / "device" / "x64" / "mpml").iterdir())
        assert first.bytes_sent > total / 3  # the files travel compressed
        # One file changed on the board, one stale file: only those are touched.
        b.conn.exec(f"open({DEVICE_DIR + '/ops.mpy'!r}, 'ab').write(b'x')\n"
                    f"open({DEVICE_DIR + '/old_module.mpy'!r}, 'wb').write(b'M')")
        again = install(b)
        assert again.sent == ["ops.mpy"] and again.removed == ["old_module.mpy"]
        viper = install(b, backend="viper")
        assert viper.removed == ["_native.mpy"] and viper.sent == []
        assert b.probe().native == "missing"
        back = install(b)
        assert back.sent == ["_native.mpy"]
        manifest = json.loads(b.conn.eval(f"open({DEVICE_DIR + '/' + MANIFEST!r}).read()"))
    assert manifest["version"] == mpml.__version__ and manifest["arch"] == "x64"
    assert manifest["backend"] == "native" and "_native.mpy" in manifest["files"]


# -- faults: a clear message naming the fix --

def test_runtime_missing():
    vb = runtime_board("unix")
    with Board.open(vb.name) as b, runtime_moved_aside(b.conn):
        with pytest.raises(RuntimeMismatch) as e:
            require_runtime(b)
    assert "not installed" in str(e.value) and f"mpml install --port {vb.name}" in str(e.value)


def test_runtime_of_another_version_then_install_fixes_it():
    vb = runtime_board("unix")
    with Board.open(vb.name) as b:
        b.conn.exec(f"import os\nos.remove({DEVICE_DIR + '/__init__.mpy'!r})\n"
                    f"open({DEVICE_DIR + '/__init__.py'!r}, 'w').write('__version__ = \"0.0.1\"\\n')")
    with Board.open(vb.name) as b:
        with pytest.raises(RuntimeMismatch) as e:
            require_runtime(b)
        msg = str(e.value)
        assert "version 0.0.1" in msg and mpml.__version__ in msg and f"mpml install --port {vb.name}" in msg
        r = install(b)
        assert r.sent == ["__init__.mpy"] and r.removed == ["__init__.py"]
        assert require_runtime(b).runtime_version == mpml.__version__


def test_native_module_of_another_arch():
    other = native_module("armv6m")
    if other is None:
        pytest.skip("no armv6m native module built to play the wrong one")
    from mpml.device.package import write_file
    vb = runtime_board("unix")
    with Board.open(vb.name) as b:
        write_file(b.conn, f"{DEVICE_DIR}/_native.mpy", other.read_bytes())
    with Board.open(vb.name) as b:
        with pytest.raises(RuntimeMismatch) as e:
            require_runtime(b)
        msg = str(e.value)
        assert "incompatible .mpy arch" in msg and "another CPU" in msg and "reports arch x64" in msg
        assert f"mpml install --port {vb.name}" in msg
        assert install(b).sent == ["_native.mpy"]
        assert require_runtime(b, native=True).native == "ok"


# -- a busy board --

BUSY = "n = 0\nwhile True:\n    n += 1\n    if n % 20000 == 0:\n        print(n)\n"


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_busy_board_is_interrupted(kind):
    vb = start_board(kind)
    r = run([MPREMOTE, "connect", vb.port, "exec", "--no-follow", BUSY])
    assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    t = time.monotonic()
    with Board.open(vb.name) as b:
        assert b.interrupted
        assert b.conn.eval("1 + 2") == 3
    assert time.monotonic() - t < 5


# -- the commands --

def test_devices_lists_running_virtual_boards():
    vb = runtime_board("unix")
    r = run(MPML + ["devices"])
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith(vb.name + " "))
    for field in (vb.port, "virtual unix board", "1.25", "x64", mpml.__version__):
        assert field in line, (field, r.stdout)
    assert r.stdout.splitlines()[0].split() == ["BOARD", "PORT", "USB", "DESCRIPTION", "MICROPYTHON", "ARCH",
                                                 "HEAP", "FLASH", "MPML"]
    print("\n" + r.stdout)


def test_install_command_twice():
    vb = runtime_board("unix")
    r1 = run(MPML + ["install", "--port", vb.name])
    r2 = run(MPML + ["install", "--port", vb.name])
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert "already installed" in r2.stdout and "nothing sent" in r2.stdout
    print("\n" + r1.stdout + r2.stdout)


def test_install_command_bad_backend_board():
    vb = start_board("unix")
    r = run(MPML + ["install", "--port", vb.name, "--board", "pico"])
    assert r.returncode == 1 and "--board pico is for armv6m" in r.stderr


# -- mip --

def test_package_json_lists_every_runtime_source():
    committed = json.loads((REPO / "firmware" / "package.json").read_text())
    assert committed == source_package_json(), \
        "firmware/package.json is out of date: run `build/venv/bin/python -m mpml.device.install`"
    assert committed["version"] == mpml.__version__
    for dest, src in committed["urls"]:
        assert (REPO / "firmware" / src).exists() and dest == src


def test_mpremote_mip_install_from_local_folder():
    vb = start_board("unix")
    r = run([MPREMOTE, "connect", vb.port, "mip", "install", "--target", "/miptest/lib",
             str(REPO / "firmware" / "package.json")])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([MPREMOTE, "connect", vb.port, "exec",
             "import sys\nsys.path.insert(0, '/miptest/lib')\nimport mpml\nprint(mpml.__version__, mpml.__file__)\n"
             "sys.path.pop(0)\ndel sys.modules['mpml']"])
    assert r.stdout.split() == [mpml.__version__, "/miptest/lib/mpml/__init__.py"], r.stdout + r.stderr


STUBBORN = ("while True:\n    try:\n        while True:\n            pass\n"
            "    except KeyboardInterrupt:\n        pass\n")


def test_board_that_ignores_ctrl_c_is_refused_with_advice():
    from mpml import virtual
    vb = virtual.start("unix", name="test-stubborn", fresh=True, watch_pid=os.getpid())
    try:
        r = run([MPREMOTE, "connect", vb.port, "exec", "--no-follow", STUBBORN])
        assert r.returncode == 0, r.stderr
        t = time.monotonic()
        with pytest.raises(BoardError) as e:
            Board.open(vb.name, timeout=2)
        msg = str(e.value)
        assert "ignores Ctrl-C" in msg and "reset" in msg and "main.py" in msg
        assert time.monotonic() - t < 15
    finally:
        virtual.stop(vb.name)


def test_install_board_writes_its_sensor_config_and_later_installs_keep_it():
    """--board pico on the m0 board (the same armv6m): the Pico file's [[sensors]] land in /lib/mpml/board.json,
    as the board's mpml.sources reads them; an install without --board neither sends nor removes it."""
    from mpml.device.boardconfig import board_config

    vb = runtime_board("m0")
    with Board.open(vb.name) as b:
        r = install(b, board_name="pico")
        assert r.config == "pico" and r.config_changed
        on_board = b.conn.exec("import mpml.sources as s\nprint(repr(s.board_config()))").strip()
        assert ast.literal_eval(on_board) == board_config("pico")
        again = install(b, board_name="pico")
        assert not again.config_changed and again.sent == []
        plain = install(b)
        assert plain.config is None and plain.removed == [] and plain.sent == []
        assert "board.json" in b.conn.eval(f"__import__('os').listdir({DEVICE_DIR!r})")
        b.conn.exec(f"__import__('os').remove({DEVICE_DIR + '/board.json'!r})")
