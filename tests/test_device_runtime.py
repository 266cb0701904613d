"""The device runtime (firmware/mpml/model.py and its kernel backends) equals the host reference.

On CPython, the device Model runs with the plain-Python backend (the device
files loaded with importlib: on the host `mpml` is the host package). On the
unix, m0 and m3 boards, with the native module (when built for the board's
arch) and the viper kernels, every output byte for a batch of seeded random
graphs and inputs must equal `mpml.reference.run`. Bad blobs and bad inputs
must raise clear ValueErrors, on the host and on the boards.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest

from conftest import INT8_RUNNER, RUNTIME_BOARDS, backends_for, runtime_board
from mpml import blobfmt as F
from mpml import ops, reference
from mpml.blob import write_blob
from mpml.device import Connection
from mpml.device.package import ARCHS, build_package, native_module, write_file
from mpml.shared import device_module
from mpml.testing.graphs import convnet, mlp, random_graph, random_tree_graph



@pytest.fixture(scope="module")
def M():
    """firmware/mpml/model.py on CPython, with firmware/mpml/_pure.py as `mpml._pure`."""
    device_module("_pure")
    return device_module("model")


def _inputs(g, rng, n: int) -> list[list[np.ndarray]]:
    out = []
    for _ in range(n):
        xs = []
        for e in g.inputs:
            t = g.tensors[e.tensor]
            info = np.iinfo(t.dtype)
            xs.append(rng.integers(info.min, info.max + 1, t.size).astype(t.dtype))
        out.append(xs)
    return out


def cases(n: int, first_seed: int, inputs_per: int = 2, max_ops: int = 5):
    """(graph, blob, [inputs], [expected outputs as bytes]) for seeded random graphs, trees included."""
    result = []
    for seed in range(first_seed, first_seed + n):
        rng = np.random.default_rng(seed)
        g = random_tree_graph(rng) if seed % 8 == 7 else random_graph(rng, max_ops=max_ops)
        ins = _inputs(g, rng, inputs_per)
        want = [b"".join(y.tobytes() for y in reference.run(g, x)) for x in ins]
        result.append((g, write_blob(g), ins, want))
    return result


# -- CPython: the device Model with the plain-Python kernels ------------------------------------

def test_pure_backend_equals_the_reference_on_random_graphs(M):
    n_ops = set()
    for g, blob, ins, want in cases(300, 1000):
        m = M.load(blob, backend="pure")
        outs = [bytearray(g.tensors[e.tensor].nbytes) for e in g.outputs]
        for x, w in zip(ins, want):
            m.run([a.tobytes() for a in x], outs)
            assert b"".join(outs) == w, f"{g.name}: {[op.name for op in g.ops]}"
        n_ops.update(op.code for op in g.ops)
    assert n_ops == set(ops.OPS), "every op must be exercised"


def test_predict_converts_floats_as_tflm(M):
    rng = np.random.default_rng(7)
    checked = 0
    for seed in range(60):
        g = random_graph(np.random.default_rng(seed), max_ops=3)
        if not g.inputs[0].float_io or len(g.inputs) != 1:
            continue
        t = g.tensors[g.inputs[0].tensor]
        m = M.load(write_blob(g), backend="pure")
        # values around the quantization steps, halves included
        x = ((rng.integers(-140, 140, t.size) + rng.choice([0, 0.5, 0.49, -0.5], t.size)) * t.scale
             + rng.normal(0, 1e-3, t.size)).astype(np.float32)
        got = m.predict([float(v) for v in x])
        want = reference.run_float(g, [x])
        if len(want) == 1:
            got = [got]
        for gv, wv in zip(got, want):
            assert np.array_equal(np.asarray(gv, np.float32), np.asarray(wv).reshape(-1)), g.name
        checked += 1
    assert checked >= 10


def _patched(blob: bytes, offset: int, fmt: str, value, fix_crc: bool = True) -> bytes:
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, value)
    if fix_crc:
        struct.pack_into("<I", b, len(b) - 4, zlib.crc32(b[:-4]))
    return bytes(b)


def small_mlp():
    return mlp(sizes=(8, 6, 4))  # a few hundred bytes: qemu boards' UARTs move a few KiB/s


def bad_blobs() -> list[tuple[str, bytes, str]]:
    """(what, blob, expected words of the ValueError) for every kind of refusal the tests check."""
    blob = write_blob(small_mlp())
    h = struct.unpack_from(F.HEADER, blob, 0)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x10
    return [
        ("truncated", blob[:-10], "truncated"),
        ("bit flip", bytes(flipped), "CRC mismatch"),
        ("wrong magic", _patched(blob, 0, "4s", b"MPMX"), "not an mpml blob"),
        ("wrong version", _patched(blob, 4, "<H", 2), "version 2"),
        ("unknown op", _patched(blob, h[F.H_OPS], "B", 99), "unknown opcode 99"),
        ("short file", blob[:40], "too short"),
        ("tensor outside", _patched(blob, h[F.H_TENSORS] + F.TENSOR_SIZE + 12, "<I", 1 << 20), "outside"),
    ]


@pytest.mark.parametrize("what,blob,words", bad_blobs(), ids=[b[0] for b in bad_blobs()])
def test_bad_blobs_are_refused_with_a_clear_error(M, what, blob, words):
    with pytest.raises(ValueError, match=words):
        M.load(blob, backend="pure")


def test_bad_inputs_name_expected_and_got(M):
    m = M.load(write_blob(mlp()), backend="pure")
    with pytest.raises(ValueError, match="takes 64 values, got 63"):
        m.predict([0.0] * 63)
    with pytest.raises(ValueError, match="takes 64 bytes, got 65"):
        m.predict(bytes(65))
    with pytest.raises(ValueError, match="64 bytes, expected|expected 64"):
        m.run(bytearray(10), bytearray(4))
    with pytest.raises(ValueError, match="expected 4"):
        m.run(bytearray(64), bytearray(3))
    g = random_graph(np.random.default_rng(3))
    m2 = M.load(write_blob(g), backend="pure")
    if len(g.inputs) == 1:
        with pytest.raises(ValueError, match="takes 1 inputs, got 2"):
            m2.run([bytearray(1), bytearray(1)], bytearray(1))


def test_backend_choice_and_refusals(M):
    blob = write_blob(mlp())
    m = M.load(blob)  # CPython: no natmod, no viper -> plain Python, and it says why
    assert m.backend == "pure"
    assert "native:" in m.backend_note and "viper:" in m.backend_note
    with pytest.raises(ValueError, match="backend 'native' unavailable"):
        M.load(blob, backend="native")
    with pytest.raises(ValueError, match="unknown backend"):
        M.load(blob, backend="fast")


def test_info_repr_labels_and_top(M):
    g = mlp()
    blob = write_blob(g)
    m = M.load(bytearray(blob), backend="pure")
    info = m.info()
    assert info["name"] == "mlp" and info["version"] == "1.0"
    assert info["ops"] == ["FULLY_CONNECTED"] * 3 + ["SOFTMAX"]
    assert info["blob_bytes"] == len(blob) and info["arena_bytes"] > 0
    assert info["inputs"][0]["shape"] == (1, 64) and info["outputs"][0]["labels"][0] == "class0"
    assert len(info["hash"]) == 32 and info["backend"] == "pure"
    text = repr(m)
    assert "mlp" in text and "FULLY_CONNECTED x3" in text and "backend pure" in text
    y = m.predict([0.1 * k for k in range(64)])
    assert len(y) == 4 and abs(sum(y) - 1) < 0.05
    best = m.top(2)
    assert best[0][0] in m.labels and best[0][1] >= best[1][1]


def test_the_package_compiles_for_every_arch():
    # viper must compile to machine code for every target MicroPython supports here
    for arch in ARCHS:
        pkg = build_package(arch)
        names = {p.name for p in pkg.iterdir()}
        assert {"__init__.mpy", "model.mpy", "_viper.mpy", "_pure.mpy", "blobfmt.mpy", "ops.mpy"} <= names, arch
        assert ("_native.mpy" in names) == (native_module(arch) is not None)


# -- on the boards ---------------------------------------------------------------------------------

def test_board_equals_the_reference_bit_for_bit(rt_board):
    board = rt_board
    backends = backends_for(board)
    n = 40 if board.kind == "unix" else 12
    batch = 8 if board.kind == "unix" else 4
    all_cases = cases(n, 5000 + 1000 * RUNTIME_BOARDS.index(board.kind), inputs_per=3, max_ops=3)
    checked = 0
    with Connection(board.port, timeout=60) as c:
        c.exec(INT8_RUNNER)
        for i in range(0, len(all_cases), batch):
            chunk = all_cases[i:i + batch]
            code = "".join(
                f"_run_int8({base64.b64encode(blob)!r}, {backends!r}, "
                f"{[[x.tobytes().hex() for x in xs] for xs in ins]!r}, "
                f"{[g.tensors[e.tensor].nbytes for e in g.outputs]!r})\n"
                for g, blob, ins, _want in chunk)
            lines = [ln.split() for ln in c.exec(code).splitlines() if ln.startswith("R ")]
            expected = [(be, w) for g, _b, _i, want in chunk for be in backends for w in want]
            assert len(lines) == len(expected)
            for (tag, be, used, got), (want_be, want), in zip(lines, expected):
                assert be == want_be and used == be
                assert bytes.fromhex(got) == want, f"{board.kind} {be}"
                checked += 1
    if "native" not in backends:
        pytest.skip(f"viper checked ({checked} runs); no natmod built for {board.arch} "
                    f"(build/kernels/{board.arch}/_native.mpy missing)")


# In a function: a store into the exec's globals dict could itself allocate.
ALLOC_CHECK = """
import micropython, binascii, gc
import mpml.model as M
def _check(buf, be):
    m = M.load(buf, be)
    i = bytearray({n_in})
    o = bytearray({n_out})
    m.run(i, o)
    gc.collect()
    r = 'none'
    micropython.heap_lock()
    try:
        m.run(i, o)
    except MemoryError:
        r = 'ALLOCATED'
    finally:
        micropython.heap_unlock()
    print(be, m.backend, r)
for be in {backends!r}:
    _check(binascii.a2b_base64({blob!r}), be)
"""


def test_run_allocates_nothing(rt_board):
    board = rt_board
    backends = backends_for(board)
    with Connection(board.port, timeout=60) as c:
        for g in (small_mlp(), convnet(hw=6, channels=3)):
            code = ALLOC_CHECK.format(blob=base64.b64encode(write_blob(g)), backends=backends,
                                      n_in=g.tensors[g.inputs[0].tensor].nbytes,
                                      n_out=g.tensors[g.outputs[0].tensor].nbytes)
            out = c.exec(code).split()
            assert out == [w for be in backends for w in (be, be, "none")], f"{g.name}: {out}"


ERRORS = """
import binascii
import mpml
def _try(what, blob):
    try:
        mpml.load(binascii.a2b_base64(blob))
        print(what, '|', 'LOADED')
    except ValueError as e:
        print(what, '|', e)
"""


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_bad_blobs_and_inputs_raise_value_errors_on_the_board(kind):
    board = runtime_board(kind)
    bad = bad_blobs()
    with Connection(board.port, timeout=60) as c:
        out = c.exec(ERRORS + "".join(f"_try({w!r}, {base64.b64encode(b)!r})\n" for w, b, _ in bad))
        got = dict(line.split(" | ", 1) for line in out.splitlines() if " | " in line)
        for what, _blob, words in bad:
            assert words in got[what], (what, got[what])
        blob = base64.b64encode(write_blob(small_mlp()))
        out = c.exec(
            "import binascii, mpml\n"
            f"m = mpml.load(binascii.a2b_base64({blob!r}))\n"
            "for x in ([0.0] * 7, bytes(3)):\n"
            "    try:\n        m.predict(x)\n    except ValueError as e:\n        print(e)\n"
            "try:\n    m.run(bytearray(8), bytearray(3))\nexcept ValueError as e:\n    print(e)\n")
        assert "takes 8 values, got 7" in out
        assert "takes 8 bytes, got 3" in out
        assert "expected 4" in out


def test_a_native_module_for_another_arch_falls_back_to_viper():
    # The unix board (x64) given the Cortex-M0 module: the import refuses it,
    # the loader says why and runs the viper kernels instead.
    foreign = native_module("armv6m")
    if foreign is None:
        pytest.skip("no armv6m natmod built (build/kernels/armv6m/_native.mpy)")
    board = runtime_board("unix")
    pkg = build_package("x64")
    with Connection(board.port, timeout=60) as c:
        c.exec("import os\nfor d in ('/alt', '/alt/mpml'):\n    try:\n        os.mkdir(d)\n    except OSError:\n"
               "        pass\n")
        for p in pkg.iterdir():
            write_file(c, f"/alt/mpml/{p.name}", foreign.read_bytes() if p.name == "_native.mpy" else p.read_bytes())
        blob = base64.b64encode(write_blob(small_mlp()))
        out = c.exec(
            "import sys, binascii\nsys.path.insert(0, '/alt')\nimport mpml\n"
            f"buf = binascii.a2b_base64({blob!r})\n"
            "m = mpml.load(buf)\nprint('backend', m.backend)\nprint('note', m.backend_note)\n"
            "try:\n    mpml.load(buf, 'native')\nexcept ValueError as e:\n    print('forced', e)\n")
        assert "backend viper" in out
        assert "native: incompatible .mpy arch" in out
        assert "forced backend 'native' unavailable: native: incompatible .mpy arch" in out
