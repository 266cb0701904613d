"""Every board loads a dynamic native module built for its arch, and only that.

tests/natmod/smoke is built here with MicroPython's py/dynruntime.mk and the
cross compilers setup installed, then copied to each board with mpremote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import start_board
from mpml import paths
from mpml.device import BoardExecError, Connection

SMOKE = Path(__file__).parent / "natmod" / "smoke"
A = bytes([1, 2, 3, 0x80, 0x7F, 0xFF])  # includes -128, 127, -1 as int8
B = bytes([5, 0xF0, 7, 0x80, 0x7F, 2])


def expected_mac() -> int:
    s8 = lambda v: v - 256 if v > 127 else v  # noqa: E731
    return sum(s8(x) * s8(y) for x, y in zip(A, B))


@pytest.fixture(scope="session")
def natmod_build(tmp_path_factory):
    """build(arch) -> path of smoke.mpy for that arch (built once per arch)."""
    src = paths.micropython_src()
    assert src and src.exists(), "MicroPython source unknown: run `make setup`"
    built: dict[str, Path] = {}

    def build(arch: str) -> Path:
        if arch not in built:
            work = tmp_path_factory.mktemp(f"natmod-{arch}")
            shutil.copytree(SMOKE, work, dirs_exist_ok=True)
            env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
            r = subprocess.run(["make", f"MPY_DIR={src}", f"ARCH={arch}", f"PYTHON={sys.executable}"],
                               cwd=work, env=env, capture_output=True, text=True)
            assert r.returncode == 0, f"natmod build for {arch} failed:\n{r.stdout}\n{r.stderr}"
            built[arch] = work / "smoke.mpy"
        return built[arch]

    return build


def push(board, mpy: Path, name: str = "smoke.mpy") -> None:
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "fs", "cp", str(mpy), f":/lib/{name}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_native_module_for_the_boards_arch_runs(board, natmod_build):
    push(board, natmod_build(board.arch))
    with Connection(board.port) as c:
        assert c.eval(f"__import__('smoke').mac({A!r}, {B!r})") == expected_mac()
        c.exec("import os; os.remove('/lib/smoke.mpy')")


def test_m0_refuses_an_armv7m_native_module(natmod_build):
    # What an RP2040 does with code built for a Cortex-M3: refuse it at import.
    board = start_board("m0")
    push(board, natmod_build("armv7m"), "smoke7.mpy")
    with Connection(board.port) as c:
        with pytest.raises(BoardExecError, match="incompatible .mpy arch"):
            c.exec("import smoke7")
        c.exec("import os; os.remove('/lib/smoke7.mpy')")
