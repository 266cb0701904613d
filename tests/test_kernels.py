"""The kernels agree bit for bit: _pure.py on CPython is the reference for the
C kernels on a simulated Cortex-M0 (Unicorn) and for the native module on
every virtual board; bad buffers raise ValueError and the board keeps going;
the M0 benchmark runs and meets its bar.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import start_board  # noqa: F401  (boards come from the `board` fixture)
from mpml.device import Connection

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "bench"))
import kernel_cycles  # noqa: E402
import m0sim  # noqa: E402

from kernels.cases import all_cases, big_window_case, expected, fast_requant_case  # noqa: E402

SEED = 20240601


@pytest.fixture(scope="module")
def pure():
    return m0sim.load_pure()


@pytest.fixture(scope="module")
def cases(pure):
    cs = all_cases(SEED, per_op=6)
    return [(c, expected(pure, c)) for c in cs]


def test_cases_cover_the_edges(cases):
    # The hostile trees are refused by the reference; every other case runs.
    errors = [want for _, want in cases if want.startswith("E:")]
    assert len(errors) == 4 and all("TREE_ENSEMBLE" in e for e in errors)


def test_armv6m_kernels_equal_pure_in_unicorn(cases):
    m0 = m0sim.M0()
    bad = []
    for (code, fname, p, bufs), want in cases:
        err, out = m0.run_op(code, p, bufs)
        got = "E:" + err if err else out.hex()
        if got != want:
            bad.append((fname, p, want, got))
    assert not bad, f"{len(bad)} of {len(cases)} differ, first: {bad[0]}"


def test_armv6m_kernels_without_asm_equal_pure(cases):
    # The portable C path (other arches) compiled for the same CPU.
    m0 = m0sim.M0(m0sim.build(("-DMPML_NO_ASM",)))
    for (code, fname, p, bufs), want in cases[:40]:
        err, out = m0.run_op(code, p, bufs)
        assert ("E:" + err if err else out.hex()) == want, (fname, p)


def test_armv6m_fast_paths_equal_pure(pure):
    # Many cases through the Thumb-1 MAC + requantization routine (every
    # channel fast: mac_requant_v6m) and through conv's run list filling up,
    # in Unicorn; the fast routine must actually run.
    import random
    from unicorn import UC_HOOK_CODE
    rng = random.Random(SEED + 1)
    m0 = m0sim.M0()
    calls = [0]
    addr = m0.symbols["mac_requant_v6m"]
    hook = m0.uc.hook_add(UC_HOOK_CODE, lambda *a: calls.__setitem__(0, calls[0] + 1), begin=addr, end=addr)
    try:
        for k in range(160):
            c = fast_requant_case(rng, 1 if k % 2 else 2) if k < 150 else big_window_case(rng)
            err, out = m0.run_op(c[0], c[2], c[3])
            assert ("E:" + err if err else out.hex()) == expected(pure, c), (c[1], c[2])
    finally:
        m0.uc.hook_del(hook)
    assert calls[0] > 150


# -- the native module on the boards -----------------------------------------

@pytest.fixture(scope="session")
def natmod():
    """build(arch) -> path of _native.mpy (make is incremental)."""
    def build(arch: str) -> Path:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        r = subprocess.run(["make", "-s", "-C", str(REPO / "firmware" / "kernels"), f"ARCH={arch}",
                            f"PYTHON={sys.executable}"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        build_root = Path(os.environ.get("MPML_BUILD_DIR", REPO / "build"))
        return build_root / "kernels" / arch / "_native.mpy"
    return build


MOD = "_mpml_kt"  # a name of its own on the board, removed afterwards

RUNNER = """
from array import array
from binascii import a2b_base64, hexlify
import {mod} as K
T = []
def _run(C):
    R = []
    for f, p, bs in C:
        b = [bytearray(T[k]) for k in bs]
        try:
            getattr(K, f)(p if isinstance(p, list) else array('i', p[0]), *b)
            R.append(hexlify(b[-1]).decode())
        except ValueError as e:
            R.append('E:' + str(e))
    return R
"""


_pushed: set[str] = set()


def push(board, mpy: Path) -> None:
    """Copy the module to the board once per session (the test boards are fresh)."""
    if board.kind in _pushed:
        return
    _pushed.add(board.kind)
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "fs", "cp", str(mpy),
                        f":/lib/{MOD}.mpy"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_native_module_equals_pure_on_board(board, natmod, cases):
    push(board, natmod(board.arch))
    # Each distinct buffer travels once, in base64: the qemu UARTs are slow.
    table: dict[bytes, int] = {}
    for (_, _, _, bufs), _ in cases:
        for b in bufs:
            table.setdefault(b, len(table))
    with Connection(board.port, timeout=60) as c:
        c.exec(RUNNER.format(mod=MOD))
        blobs = [base64.b64encode(b).decode() for b in table]
        for k in range(0, len(blobs), 60):
            c.exec("for s in %r: T.append(a2b_base64(s))" % (blobs[k:k + 60],))
        got = []
        batch = 40
        for k in range(0, len(cases), batch):
            chunk = cases[k:k + batch]
            # Alternate list params and array('i') params (passed as (list,)).
            spec = [(fname, p if (k + i) % 2 else (p,), [table[b] for b in bufs])
                    for i, ((code, fname, p, bufs), _) in enumerate(chunk)]
            got += c.eval(f"_run({spec!r})")
    bad = [(case[1], case[2], want, g) for (case, want), g in zip(cases, got) if g != want]
    assert not bad, f"{board.kind}: {len(bad)} of {len(cases)} differ, first: {bad[0]}"


def test_bad_buffers_raise_and_the_board_keeps_answering(board, natmod):
    push(board, natmod(board.arch))
    fc = "[1, 4, 8, 0, -128, 127]"
    ok = "bytearray(4), bytearray(32), bytearray(32), bytearray(32), bytearray(32), bytearray(8)"
    probes = {
        "small input": f"K.fully_connected({fc}, bytearray(3), {ok.split(', ', 1)[1]})",
        "small output": f"K.fully_connected({fc}, {ok.rsplit(', ', 1)[0]}, bytearray(7))",
        "small weights": f"K.fully_connected({fc}, bytearray(4), bytearray(31), {ok.split(', ', 2)[2]})",
        "zero dim": f"K.fully_connected([1, 0, 8, 0, -128, 127], {ok})",
        "huge dims": "K.conv_2d([32767]*13 + [0]*6, bytearray(9), bytearray(9), bytearray(8), "
                     "bytearray(8), bytearray(8), bytearray(9))",
        "few params": f"K.fully_connected([1, 4, 8], {ok})",
        "bad depth_mult": "K.depthwise_conv_2d([1,1,1,2, 1,1,4, 1,1, 1,1,1,1, 0,0, 3, 0,0,-128,127], "
                          "bytearray(2), bytearray(4), bytearray(16), bytearray(16), bytearray(16), bytearray(4))",
        "small table": "K.logistic([4], bytearray(4), bytearray(255), bytearray(4))",
        "cyclic tree": "K.tree_ensemble([1,1,1,1,1,1], bytearray(1), bytearray(b'\\0\\0\\0\\0\\0\\0\\0\\0'), "
                       "bytearray(2), bytearray(2), bytearray(4))",
    }
    with Connection(board.port, timeout=30) as c:
        c.exec(f"import {MOD} as K")
        c.exec("def _try(f):\n try:\n  f()\n  return 'no error'\n except ValueError as e:\n  return str(e)\n")
        msgs = c.eval("[" + ", ".join(f"_try(lambda: {call})" for call in probes.values()) + "]")
        for (what, call), msg in zip(probes.items(), msgs):
            assert msg != "no error", what
            op = call.split("(", 1)[0].split(".")[1].upper()
            assert op in msg, (what, msg)
        assert c.eval("1 + 1") == 2
        c.exec(f"import os; os.remove('/lib/{MOD}.mpy')")
    _pushed.discard(board.kind)


# -- the benchmark --------------------------------------------------------------

def test_m0_benchmark_meets_the_bar():
    # Both kernels at most 4 instructions per MAC on Cortex-M0 (outputs
    # checked against _pure.py inside the benchmark).
    rows = {r["kernel"]: r for r in kernel_cycles.run(versions=("mpml",))}
    for name in ("FULLY_CONNECTED 256->128", "CONV_2D 3x3 16->16 16x16"):
        assert rows[name]["instr_per_mac"] <= kernel_cycles.BAR, (name, rows[name]["instr_per_mac"])
