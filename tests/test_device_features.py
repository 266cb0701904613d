"""On-device features (firmware/mpml/featurize.py) equal the host's FeatureSpec bit for bit.

On the unix, m0 and m3 boards, with every backend there (the C module when
built for the board's arch, viper, plain Python), the int32 features and the
int8 model inputs of raw, stats, bands and mixed specs must equal
`FeatureSpec.features` / `FeatureSpec.transform` for random and full-scale
windows. The windows are generated on both sides from a few numbers (a
16-bit LCG or a repeated pattern), so a batch of specs and windows costs one
round trip. Corrupted spec bytes must raise ValueError on the board exactly
when the host's FeatureSpec.from_bytes refuses them, and compute() must not
allocate. Last, a model trained with a feature spec by a recipe gives the
host simulation's outputs through Model.run_window / predict_window.
"""

from __future__ import annotations

import base64
import math
import zlib

import numpy as np
import pytest

from conftest import RUNTIME_BOARDS, runtime_board
from mpml.blob import write_blob
from mpml.device import Connection
from mpml.device.package import native_module, write_file
from mpml.features import FeatureError, FeatureSpec
from mpml.testing.graphs import mlp

# -- windows both sides can make -------------------------------------------------------------------

BOARD_GEN = """
import binascii, gc, micropython
from array import array
from mpml.featurize import Featurizer, _pick
@micropython.viper
def _rand(w: ptr16, n: int, s: int, sh: int):
    for i in range(n):  # xorshift16 (7, 9, 8)
        s ^= (s << 7) & 0xFFFF
        s ^= s >> 9
        s ^= (s << 8) & 0xFFFF
        w[i] = (s - 32768) >> sh
@micropython.viper
def _pat(w: ptr16, n: int, p: ptr16, m: int):
    j = 0
    for i in range(n):
        w[i] = p[j]
        j += 1
        if j == m:
            j = 0
def _fill(w, g):
    n = len(w)
    if g[0] == 'r':      # ('r', seed, shift): xorshift16 values - 32768, >> shift
        _rand(w, n, g[1], g[2])
    elif g[0] == 's':    # ('s', a, b, channels): a for the first half of the samples, b after
        h = (n // g[3]) // 2 * g[3]
        _pat(w, h, array('h', [g[1]]), 1)
        _pat(memoryview(w)[h:], n - h, array('h', [g[2]]), 1)
    else:                # ('p', [values]): repeated over the interleaved samples
        _pat(w, n, array('h', g[1]), len(g[1]))
"""


def make_window(g: tuple, length: int, channels: int) -> np.ndarray:
    """The window BOARD_GEN's _fill makes for `g`, as int16 [length, channels]."""
    n = length * channels
    if g[0] == "r":
        s, sh = g[1], g[2]
        out = np.empty(n, np.int64)
        for i in range(n):
            s ^= (s << 7) & 0xFFFF
            s ^= s >> 9
            s ^= (s << 8) & 0xFFFF
            out[i] = (s - 32768) >> sh
    elif g[0] == "s":
        h = (n // g[3]) // 2 * g[3]
        out = np.where(np.arange(n) < h, g[1], g[2])
    else:
        out = np.resize(np.asarray(g[1], np.int64), n)
    return out.astype(np.int16).reshape(length, channels)


def gens(channels: int, seed: int, full: bool = True) -> list[tuple]:
    """Full-scale windows (all -32768, all 32767, alternating, a tone on a bin, a value per channel,
    a step) and random ones (full scale and tiny); `full=False` leaves out the last three kinds."""
    tone = [int(round(32767 * math.cos(2 * math.pi * 3 * t / 16))) for t in range(16) for _ in range(channels)]
    g = [("p", [-32768]), ("p", [32767]), ("p", [-32768] * channels + [32767] * channels), ("p", tone),
         ("r", seed + 1, 0)]
    if channels > 1:
        g.append(("p", [32767] + [0] * (channels - 2) + [-32768]))
    if full:
        g += [("s", 32767, -32768, channels), ("r", seed + 2, 0), ("r", seed + 3, 13)]
    return g


# -- the specs -------------------------------------------------------------------------------------

ALL = [{"raw": {"decimate": 3}}, {"stats": {}},
       {"bands": {"fft": 16, "bands": [[0, 1], [1, 3], [3, 9]]}},
       {"bands": {"channels": [1], "fft": 8, "bands": 2, "window": "rect", "remove_mean": False}}]

# (name, blocks, window length, channels, sample rate, where the pure backend runs: "all" boards, the
# "unix" board only, or "none": the literal code is slow on qemu, and the same Python runs on unix)
SPECS = [
    ("raw decimate 3, channels [2, 0]", [{"raw": {"decimate": 3, "channels": [2, 0]}}], 50, 3, 0, "all"),
    ("raw", [{"raw": {}}], 16, 2, 0, "unix"),
    ("raw decimate 4, channels [1, 1, 2]", [{"raw": {"decimate": 4, "channels": [1, 1, 2]}}], 66, 3, 0, "unix"),
    ("raw decimate = length", [{"raw": {"decimate": 7}}], 7, 1, 0, "unix"),
    ("stats, all seven", [{"stats": {}}], 128, 3, 0, "all"),
    ("stats subset, channels [2, 0]", [{"stats": {"channels": [2, 0], "stats": [
        "zero_crossings", "rms", "std", "peak_to_peak", "mean", "min", "max"]}}], 100, 3, 0, "unix"),
    ("stats of one sample", [{"stats": {}}], 1, 2, 0, "unix"),
    ("bands hann 64, bands_hz", [{"bands": {"fft": 64, "bands_hz": [[0.5, 2], [2, 4], [4, 8], [8, 16],
                                                                   [16, 25.1]]}}], 128, 3, 50.0, "unix"),
    ("bands rect 16, no mean removal", [{"bands": {"fft": 16, "bands": 4, "window": "rect",
                                                   "remove_mean": False}}], 40, 2, 0, "unix"),
    ("bands 4 + stats", [{"stats": {"stats": ["mean", "std"]}}, {"bands": {"fft": 4, "bands": [[0, 3]]}}],
     5, 1, 0, "all"),
    ("bands rect 256, channel [1]", [{"bands": {"fft": 256, "bands": 16, "window": "rect", "channels": [1]}}],
     512, 2, 0, "unix"),
    ("bands hann 1024", [{"bands": {"fft": 1024, "bands": 12}}], 2048, 1, 0, "none"),
    ("mixed: raw, stats, two bands", ALL, 35, 3, 0, "unix"),
    ("mixed: bands 256 + rms, peak_to_peak", [{"bands": {"fft": 256, "bands": 16}},
                                              {"stats": {"stats": ["rms", "peak_to_peak"]}}], 256, 3, 0, "unix"),
    ("mixed: raw decimate 2, stats, bands_hz", [{"raw": {"decimate": 2}}, {"stats": {}},
                                                {"bands": {"fft": 64, "bands_hz": [[0.5, 2], [2, 4], [4, 8],
                                                                                   [8, 16]]}}],
     128, 3, 50.0, "unix"),
]
# stats of a long window: L Q - S^2 reaches 2^60 at 32768 samples (the 64-bit limbs of viper)
LONG = ("stats, long window", [{"stats": {}}, {"bands": {"fft": 4, "bands": [[0, 3]]}}], None, 1, 0, "none")
# the boards beyond unix, m0 and m3 (m0k: the kernels compiled into the firmware) check a few
CORE = ("raw decimate 3, channels [2, 0]", "stats, all seven", "mixed: raw decimate 2, stats, bands_hz")


def _case(name, blocks, length, channels, fs, seed, full):
    g = gens(channels, seed)
    x = np.stack([make_window(k, length, channels) for k in g])
    spec = FeatureSpec.from_dict({"blocks": blocks}, window_length=length, n_channels=channels,
                                 sample_rate_hz=fs or None)
    spec.fit(np.concatenate([x, x[4:]]))  # some weight on the random windows
    g = g if full else gens(channels, seed, False)
    x = x[:len(g)]
    f = spec.features(x)
    want = [(f"{zlib.crc32(f[i].astype('<i4').tobytes()):08x}", spec.transform(x[i])[0].tobytes().hex())
            for i in range(len(x))]
    return name, spec.to_bytes(), g, want


def backends_on(board) -> list[str]:
    return (["native"] if native_module(board.arch) else []) + ["viper", "pure"]


def connect(board, backends: list[str], runner: str) -> Connection:
    """A fresh connection with the backends' modules imported first, while the heap is in one
    piece (the C module is one 22 KB block on an m0's 140 KiB heap), then `runner`."""
    c = Connection(board.port, timeout=120)
    c.exec("from mpml.featurize import _pick\n"
           + "".join(f"_pick({be!r})\n" for be in backends if be != "pure"))
    c.exec(runner)
    return c


FX_RUNNER = BOARD_GEN + """
def _fx(spec, backends, gs):
    spec = binascii.a2b_base64(spec)
    for be in backends:
        gc.collect()
        fx = Featurizer(spec, be)
        w = memoryview(_W)[:fx.window * fx.channels]  # one buffer for every window: no fragments
        out = bytearray(fx.n_features)
        for g in gs:
            _fill(w, g)
            out[:] = b'\\xaa' * len(out)
            fx.compute(w, out)
            print('X', fx.backend, '%08x' % (binascii.crc32(fx.values) & 0xffffffff), binascii.hexlify(out).decode())
        fx = w = None
"""


@pytest.mark.parametrize("kind", RUNTIME_BOARDS)
def test_features_bit_exact_on_board(kind):
    board = runtime_board(kind)
    backends = backends_on(board)
    long_len = 32768 if kind == "unix" else 4096  # a 64 KB window does not fit a 140 KiB heap
    cases = [(*s[:2], s[2] or long_len, *s[3:]) for s in SPECS + [LONG]]
    if kind not in ("unix", "m0", "m3"):
        cases = [s for s in cases if s[0] in CORE]
    checked = 0
    with connect(board, backends, FX_RUNNER) as c:
        c.exec(f"_W = array('h', bytearray({2 * max(s[2] * s[3] for s in cases)}))")
        batch = []
        for k, (name, blocks, length, channels, fs, pure) in enumerate(cases):
            bes = [b for b in backends if b != "pure" or pure == "all" or (pure == "unix" and kind == "unix")]
            batch.append((_case(name, blocks, length, channels, fs, 100 * k, kind == "unix"), bes))
            # several specs per round trip on the unix board; one at a time on a 140 KiB heap
            if k < len(cases) - 1 and len(batch) < 4 and kind == "unix":
                continue
            code = "".join(f"_fx({base64.b64encode(spec).decode()!r}, {bes!r}, {g!r})\n"
                           for (_n, spec, g, _w), bes in batch)
            lines = [ln.split() for ln in c.exec(code, timeout=300).splitlines() if ln.startswith("X ")]
            expected = [(name, i, be, want[i]) for (name, _s, _g, want), bes in batch
                        for be in bes for i in range(len(want))]
            assert len(lines) == len(expected)
            for (_x, used, crc, q), (name, i, be, (want_crc, want_q)) in zip(lines, expected):
                assert used == be, name
                assert (crc, q) == (want_crc, want_q), f"{kind} {be}: {name}, window {i}"
                checked += 1
            batch = []
    assert checked > (350 if kind == "unix" else 150 if kind in ("m0", "m3") else 25)
    if "native" not in backends:
        pytest.skip(f"viper and pure checked ({checked} windows); no natmod built for {board.arch}")


# -- bad spec bytes ---------------------------------------------------------------------------------

FUZZ_RUNNER = BOARD_GEN + """
def _fuzz(spec, muts, backends):
    spec = binascii.a2b_base64(spec)
    for m in muts:
        b = bytearray(spec)
        for pos, val in m:
            b[pos] = val
        try:
            fxs = [Featurizer(b, be) for be in backends]
            r = 'ok'
        except ValueError:
            r = 'err'
        except Exception as e:
            r = 'X' + type(e).__name__
        run = '-'
        if r == 'ok' and fxs[0].window * fxs[0].channels <= 4096:
            run = 'ok'
            w = array('h', bytearray(2 * fxs[0].window * fxs[0].channels))
            _fill(w, ('r', 7, 0))
            out = bytearray(fxs[0].n_features)
            for fx in fxs:
                try:
                    fx.compute(w, out)
                except ValueError:
                    pass
                except Exception as e:
                    run = 'X' + type(e).__name__
        fxs = None
        print('Z', r, run)
    gc.collect()
"""


@pytest.mark.parametrize("kind", RUNTIME_BOARDS)
def test_corrupt_spec_bytes_raise_value_error_as_the_host_refuses(kind):
    board = runtime_board(kind)
    backends = [b for b in backends_on(board) if b != "pure"]
    rng = np.random.default_rng(11)
    x = rng.integers(-3000, 3000, size=(20, 35, 3)).astype(np.int16)
    spec = FeatureSpec.from_dict({"blocks": ALL}, sample_rate_hz=100.0, channel_names=["x", "y", "zz"]).fit(x)
    data = spec.to_bytes()
    n = 150 if kind == "unix" else 50
    muts = []
    for _ in range(n):
        m = [(int(rng.integers(len(data))), int(rng.integers(256))) for _ in range(int(rng.integers(1, 4)))]
        muts.append(m)
    host = []
    for m in muts:
        b = bytearray(data)
        for pos, val in m:
            b[pos] = val
        try:
            FeatureSpec.from_bytes(bytes(b))
            host.append("ok")
        except FeatureError:
            host.append("err")
    with connect(board, backends, FUZZ_RUNNER) as c:
        out = []
        for i in range(0, n, 25):
            code = f"_fuzz({base64.b64encode(data).decode()!r}, {muts[i:i + 25]!r}, {backends!r})\n"
            out += [ln.split() for ln in c.exec(code, timeout=120).splitlines() if ln.startswith("Z ")]
    assert len(out) == n
    assert [r for _z, r, _run in out] == host        # refused exactly when the host refuses
    assert all(run in ("ok", "-") for _z, _r, run in out)  # accepted specs compute (or say ValueError)
    assert host.count("err") > n // 4 and host.count("ok") > 3


# -- no allocation ---------------------------------------------------------------------------------

ALLOC_RUNNER = BOARD_GEN + """
import micropython
import mpml.model as M
def _alloc(spec, be):
    fx = Featurizer(binascii.a2b_base64(spec), be)
    w = array('h', bytearray(2 * fx.window * fx.channels))
    _fill(w, ('r', 5, 0))
    out = bytearray(fx.n_features)
    fx.compute(w, out)
    gc.collect()
    r = 'none'
    micropython.heap_lock()
    try:
        for _ in range(3):
            fx.compute(w, out)
    except MemoryError:
        r = 'allocates'
    finally:
        micropython.heap_unlock()
    print('A', fx.backend, r)
def _alloc_model(blob, be):
    m = M.load(binascii.a2b_base64(blob), be)
    fx = m.featurizer
    w = array('h', bytearray(2 * fx.window * fx.channels))
    _fill(w, ('r', 6, 0))
    out = bytearray(m.outputs[0].nbytes)
    m.run_window(w, out)
    gc.collect()
    r = 'none'
    micropython.heap_lock()
    try:
        m.run_window(w, out)
    except MemoryError:
        r = 'allocates'
    finally:
        micropython.heap_unlock()
    print('A', m.backend, fx.backend, r)
"""


@pytest.mark.parametrize("kind", RUNTIME_BOARDS)
def test_compute_allocates_nothing(kind):
    board = runtime_board(kind)
    backends = [b for b in backends_on(board) if b != "pure"]
    x = np.random.default_rng(3).integers(-20000, 20000, size=(8, 128, 3)).astype(np.int16)
    spec = FeatureSpec.from_dict({"blocks": [{"raw": {"decimate": 8}}, {"stats": {}},
                                             {"bands": {"fft": 64, "bands": 8}}]}).fit(x)
    g = mlp(sizes=(spec.n_features, 8, 4))  # a small blob: its base64 is a constant of the board code
    g.features = spec.to_bytes()
    blob = base64.b64encode(write_blob(g)).decode()
    with connect(board, backends, ALLOC_RUNNER) as c:
        lines = []
        for be in backends:  # one call per round trip: a long source does not fit a 140 KiB heap
            for code in (f"_alloc({base64.b64encode(spec.to_bytes()).decode()!r}, {be!r})\n",
                         f"_alloc_model({blob!r}, {be!r})\n"):
                lines += [ln.split() for ln in c.exec(code).splitlines() if ln.startswith("A ")]
    assert lines == [x for be in backends for x in (["A", be, "none"], ["A", be, be, "none"])]


# -- a trained model, end to end -------------------------------------------------------------------

E2E_RUNNER = """
import binascii
from array import array
import mpml.model as M
def _e2e(m, w, path):
    out = bytearray(m.outputs[0].nbytes)
    with open(path, 'rb') as f:
        while f.readinto(w) == 2 * len(w):
            m.run_window(w, out)
            y = m.predict_window(w)
            print('E', m.backend, m.featurizer.backend, binascii.hexlify(out).decode(), repr(y[0]), len(y))
"""


@pytest.fixture(scope="module")
def trained():
    """The vibration_anomaly recipe (FFT bands + stats) trained briefly on the watch data."""
    from mpml import reference
    from mpml.blob import write_blob
    from mpml.data import builtin
    from mpml.recipes import load_recipe, train

    r = load_recipe("vibration_anomaly")
    r.train["epochs"] = 2
    r.data["normal"] = "PEN"
    res = train(r, builtin("watch"), verbose=False)
    g, spec = res.graph, res.spec
    x = res.prepared.test.x[::97][:5]
    shape = g.tensors[g.inputs[0].tensor].shape
    out_t = g.tensors[g.outputs[0].tensor]
    want = []
    for w in x:
        y = reference.run(g, [spec.transform(w)[0].reshape(shape)])[0]
        deq = (y.astype(np.float32).reshape(-1)[0] - np.float32(out_t.zero_point)) * np.float32(out_t.scale)
        want.append((y.tobytes().hex(), float(deq), y.size))
    return write_blob(g), x, want


@pytest.mark.parametrize("kind", RUNTIME_BOARDS)
def test_trained_model_predicts_windows_as_the_host(kind, trained):
    blob, x, want = trained
    board = runtime_board(kind)
    backends = [b for b in backends_on(board) if b != "pure" or kind == "unix"]
    with Connection(board.port, timeout=60) as c:
        # files: as base64 in the board code, 9 KB of blob and 3 KB windows do not fit an m0's heap
        write_file(c, "/fx_e2e.mpml", blob)
        write_file(c, "/fx_e2e.i16", x.astype("<i2").tobytes())
    lines = []
    for be in backends:  # a fresh heap per backend: an m0 holds one backend's modules and the model well
        with Connection(board.port, timeout=120) as c:
            # the backend's modules (the C module is one 22 KB block) and the window buffer (as a
            # sampler would) first, while the heap is in one piece
            code = (f"from mpml.featurize import _pick\n_pick({be!r})\n"
                    f"from array import array\n_w = array('h', bytearray({2 * x[0].size}))\n" + E2E_RUNNER
                    + f"_e2e(M.load('/fx_e2e.mpml', {be!r}), _w, '/fx_e2e.i16')\n")
            lines += [ln.split() for ln in c.exec(code, timeout=300).splitlines() if ln.startswith("E ")]
    expected = [(be, w) for be in backends for w in want]
    assert len(lines) == len(expected)
    for (_e, used, fx_used, got, y0, n), (be, (hexq, deq, size)) in zip(lines, expected):
        assert used == be and fx_used == be
        assert got == hexq, f"{kind} {be}"
        assert int(n) == size and abs(float(y0) - deq) <= 1e-6 * max(1.0, abs(deq))


# -- the 64-bit steps at their bounds ----------------------------------------------------------------

def _sums(x: np.ndarray) -> tuple[int, int]:
    v = x.astype(np.int64)
    return int(v.sum()), int((v * v).sum())


def _bound_windows(length: int) -> list[np.ndarray]:
    """Windows of one channel that take S, Q, L Q and L Q - S^2 to their extremes (2^30, 2^45, 2^60)."""
    rng = np.random.default_rng(length)
    t = np.arange(length)
    return [np.full(length, -32768), np.full(length, 32767), np.where(t % 2, 32767, -32768),
            np.where(t < length // 2, 32767, -32768), np.where(t == 0, 32767, -32768),
            rng.integers(-32768, 32768, length), rng.integers(-3, 4, length),
            np.round(32767 * np.cos(2 * np.pi * 3 * t / 16)), np.full(length, 1)]


VIPER_ROOTS = """
from array import array
from mpml import _fxviper as V
def _roots(cases):
    w = array('i', [0] * 10)
    for L, s, ql, qh in cases:
        w[3] = ql
        w[4] = qh
        w[5] = s
        V._vstat_roots(w, L)
        w[8] = s
        V._vdiv16(w, 8, L)
        print('V', w[1], w[2], w[8])
"""


@pytest.mark.parametrize("kind", RUNTIME_BOARDS)
def test_viper_wide_steps_at_their_bounds(kind):
    """mean, std and rms from (L, S, Q) in viper's 15-bit limbs, on 32-bit words (m0, m3) as on 64:
    windows of 32768 samples, which do not fit these boards' heaps, reach L Q = 2^60."""
    from mpml.shared import featurize as fz

    cases, want = [], []
    for length in (1, 2, 3, 1000, 32767, 32768):
        for x in _bound_windows(length):
            s, q = _sums(x)
            cases.append((length, s, q & 0x7FFF, q >> 15))
            want.append([str(fz.div_round(16 * fz.isqrt(length * q - s * s), length)),
                         str(fz.div_round(16 * fz.isqrt(length * q), length)), str(fz.div_round(16 * s, length))])
    board = runtime_board(kind)
    with connect(board, ["viper"], VIPER_ROOTS) as c:
        got = [ln.split()[1:] for ln in c.exec(f"_roots({cases!r})\n").splitlines() if ln.startswith("V ")]
    assert got == want


def test_c_stats_of_32768_samples_on_a_cortex_m0():
    """The C kernels built for a Cortex-M0 (no 64-bit multiply, divide or shift helpers) on windows
    of 32768 samples, where L Q - S^2 reaches 2^60, equal the host; run in Unicorn."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "bench"))
    import features as bench

    sim = bench.m0_sim()
    xs = np.stack([w.astype(np.int16) for w in _bound_windows(32768)])[:, :, None]
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {}}, {"raw": {"decimate": 32768}},
                                             {"bands": {"fft": 1024, "bands": [[0, 1], [1, 513]]}}]},
                                 window_length=32768, n_channels=1).fit(xs)
    want = spec.features(xs)
    for i, x in enumerate(xs):
        got, _ = bench.m0_features(sim, spec, x)
        assert got.tolist() == want[i].tolist(), f"window {i}"
