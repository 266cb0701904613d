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
from mpml.device.package import native_module
from mpml.features import FeatureError, FeatureSpec
from mpml.testing.graphs import mlp

# -- windows both sides can make -------------------------------------------------------------------

BOARD_GEN = """
import binascii, gc
from array import array
from mpml.featurize import Featurizer
def _fill(w, g):
    n = len(w)
    if g[0] == 'r':      # ('r', seed, shift): a 16-bit LCG, values >> shift
        s = g[1]
        sh = g[2]
        for i in range(n):
            s = (s * 75 + 74) % 65537
            w[i] = ((s & 0xFFFF) - 32768) >> sh
    elif g[0] == 's':    # ('s', a, b): a for the first half of the samples, b after
        h = (n // g[3]) // 2 * g[3]
        for i in range(n):
            w[i] = g[1] if i < h else g[2]
    else:                # ('p', [values]): repeated over the interleaved samples
        p = g[1]
        m = len(p)
        for i in range(n):
            w[i] = p[i % m]
"""


def make_window(g: tuple, length: int, channels: int) -> np.ndarray:
    """The window BOARD_GEN's _fill makes for `g`, as int16 [length, channels]."""
    n = length * channels
    if g[0] == "r":
        s, sh = g[1], g[2]
        out = np.empty(n, np.int64)
        for i in range(n):
            s = (s * 75 + 74) % 65537
            out[i] = ((s & 0xFFFF) - 32768) >> sh
    elif g[0] == "s":
        h = (n // g[3]) // 2 * g[3]
        out = np.where(np.arange(n) < h, g[1], g[2])
    else:
        out = np.resize(np.asarray(g[1], np.int64), n)
    return out.astype(np.int16).reshape(length, channels)


def gens(channels: int, seed: int) -> list[tuple]:
    """Full-scale windows (all -32768, all 32767, alternating, a step, a tone on a bin, a value per
    channel) and random ones (full scale and tiny)."""
    tone = [int(round(32767 * math.cos(2 * math.pi * 3 * t / 16))) for t in range(16) for _ in range(channels)]
    g = [("p", [-32768]), ("p", [32767]), ("p", [-32768] * channels + [32767] * channels),
         ("s", 32767, -32768, channels), ("p", tone),
         ("r", seed + 1, 0), ("r", seed + 2, 0), ("r", seed + 3, 13)]
    if channels > 1:
        g.append(("p", [32767] + [0] * (channels - 2) + [-32768]))
    return g


# -- the specs -------------------------------------------------------------------------------------

ALL = [{"raw": {"decimate": 3}}, {"stats": {}},
       {"bands": {"fft": 16, "bands": [[0, 1], [1, 3], [3, 9]]}},
       {"bands": {"channels": [1], "fft": 8, "bands": 2, "window": "rect", "remove_mean": False}}]

# (name, blocks, window length, channels, sample rate, pure backend on qemu boards)
SPECS = [
    ("raw decimate 3, channels [2, 0]", [{"raw": {"decimate": 3, "channels": [2, 0]}}], 50, 3, 0, True),
    ("raw", [{"raw": {}}], 16, 2, 0, True),
    ("raw decimate 4, channels [1, 1, 2]", [{"raw": {"decimate": 4, "channels": [1, 1, 2]}}], 66, 3, 0, True),
    ("raw decimate = length", [{"raw": {"decimate": 7}}], 7, 1, 0, True),
    ("stats, all seven", [{"stats": {}}], 128, 3, 0, True),
    ("stats subset, channels [2, 0]", [{"stats": {"channels": [2, 0], "stats": [
        "zero_crossings", "rms", "std", "peak_to_peak", "mean", "min", "max"]}}], 100, 3, 0, True),
    ("stats of one sample", [{"stats": {}}], 1, 2, 0, True),
    ("bands hann 64, bands_hz", [{"bands": {"fft": 64, "bands_hz": [[0.5, 2], [2, 4], [4, 8], [8, 16],
                                                                   [16, 25.1]]}}], 128, 3, 50.0, True),
    ("bands rect 16, no mean removal", [{"bands": {"fft": 16, "bands": 4, "window": "rect",
                                                   "remove_mean": False}}], 40, 2, 0, True),
    ("bands 4 + stats", [{"stats": {"stats": ["mean", "std"]}}, {"bands": {"fft": 4, "bands": [[0, 3]]}}],
     5, 1, 0, True),
    ("bands rect 256, channel [1]", [{"bands": {"fft": 256, "bands": 16, "window": "rect", "channels": [1]}}],
     512, 2, 0, False),
    ("bands hann 1024", [{"bands": {"fft": 1024, "bands": 12}}], 2048, 1, 0, False),
    ("mixed: raw, stats, two bands", ALL, 35, 3, 0, True),
    ("mixed: bands 256 + rms, peak_to_peak", [{"bands": {"fft": 256, "bands": 16}},
                                              {"stats": {"stats": ["rms", "peak_to_peak"]}}], 256, 3, 0, False),
    ("mixed: raw decimate 2, stats, bands_hz", [{"raw": {"decimate": 2}}, {"stats": {}},
                                                {"bands": {"fft": 64, "bands_hz": [[0.5, 2], [2, 4], [4, 8],
                                                                                   [8, 16]]}}],
     128, 3, 50.0, True),
]
# stats of a long window: L Q - S^2 reaches 2^60 at 32768 samples (the 64-bit limbs of viper)
LONG = ("stats, long window", [{"stats": {}}, {"bands": {"fft": 4, "bands": [[0, 3]]}}], None, 1, 0, False)


def _case(name, blocks, length, channels, fs, seed):
    g = gens(channels, seed)
    x = np.stack([make_window(k, length, channels) for k in g])
    spec = FeatureSpec.from_dict({"blocks": blocks}, window_length=length, n_channels=channels,
                                 sample_rate_hz=fs or None)
    spec.fit(np.concatenate([x, x[5:]]))  # some weight on the random windows
    f = spec.features(x)
    want = [(f"{zlib.crc32(f[i].astype('<i4').tobytes()):08x}", spec.transform(x[i])[0].tobytes().hex())
            for i in range(len(x))]
    return name, spec.to_bytes(), g, want


def backends_on(board) -> list[str]:
    return (["native"] if native_module(board.arch) else []) + ["viper", "pure"]


FX_RUNNER = BOARD_GEN + """
def _fx(spec, backends, gs):
    spec = binascii.a2b_base64(spec)
    fxs = [Featurizer(spec, be) for be in backends]
    w = array('h', bytearray(2 * fxs[0].window * fxs[0].channels))
    out = bytearray(fxs[0].n_features)
    for g in gs:
        _fill(w, g)
        for fx in fxs:
            out[:] = b'\\xaa' * len(out)
            fx.compute(w, out)
            print('X', fx.backend, '%08x' % (binascii.crc32(fx.values) & 0xffffffff), binascii.hexlify(out).decode())
    fxs = w = None
    gc.collect()
"""


@pytest.mark.parametrize("kind", RUNTIME_BOARDS)
def test_features_bit_exact_on_board(kind):
    board = runtime_board(kind)
    backends = backends_on(board)
    long_len = 32768 if kind == "unix" else 8192
    cases = [(*s[:2], s[2] or long_len, *s[3:]) for s in SPECS + [LONG]]
    checked = 0
    with Connection(board.port, timeout=120) as c:
        c.exec(FX_RUNNER)
        batch = []
        for k, (name, blocks, length, channels, fs, pure_ok) in enumerate(cases):
            bes = [b for b in backends if b != "pure" or pure_ok or kind == "unix"]
            batch.append((_case(name, blocks, length, channels, fs, 100 * k), bes))
            if len(batch) < 4 and k < len(cases) - 1:
                continue
            code = "".join(f"_fx({base64.b64encode(spec).decode()!r}, {bes!r}, {g!r})\n"
                           for (_n, spec, g, _w), bes in batch)
            lines = [ln.split() for ln in c.exec(code, timeout=300).splitlines() if ln.startswith("X ")]
            expected = [(name, i, be, want[i]) for (name, _s, _g, want), bes in batch
                        for i in range(len(want)) for be in bes]
            assert len(lines) == len(expected)
            for (_x, used, crc, q), (name, i, be, (want_crc, want_q)) in zip(lines, expected):
                assert used == be, name
                assert (crc, q) == (want_crc, want_q), f"{kind} {be}: {name}, window {i}"
                checked += 1
            batch = []
    assert checked > 300
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
    with Connection(board.port, timeout=120) as c:
        c.exec(FUZZ_RUNNER)
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
    spec = FeatureSpec.from_dict({"blocks": [{"raw": {"decimate": 4}}, {"stats": {}},
                                             {"bands": {"fft": 64, "bands": 8}}]}).fit(x)
    g = mlp(sizes=(spec.n_features, 16, 4))
    g.features = spec.to_bytes()
    blob = base64.b64encode(write_blob(g)).decode()
    with Connection(board.port, timeout=60) as c:
        c.exec(ALLOC_RUNNER)
        code = "".join(f"_alloc({base64.b64encode(spec.to_bytes()).decode()!r}, {be!r})\n"
                       f"_alloc_model({blob!r}, {be!r})\n" for be in backends)
        lines = [ln.split() for ln in c.exec(code).splitlines() if ln.startswith("A ")]
    assert lines == [x for be in backends for x in (["A", be, "none"], ["A", be, be, "none"])]


# -- a trained model, end to end -------------------------------------------------------------------

E2E_RUNNER = """
import binascii, gc
from array import array
import mpml.model as M
def _e2e(blob, backends, windows):
    buf = binascii.a2b_base64(blob)
    for be in backends:
        m = M.load(buf, be)
        out = bytearray(m.outputs[0].nbytes)
        for x in windows:
            w = array('h', binascii.a2b_base64(x))
            m.run_window(w, out)
            y = m.predict_window(w)
            print('E', m.backend, m.featurizer.backend, binascii.hexlify(out).decode(), repr(y[0]), len(y))
        m = None
        gc.collect()
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
    with Connection(board.port, timeout=120) as c:
        c.exec(E2E_RUNNER)
        wins = [base64.b64encode(w.astype("<i2").tobytes()).decode() for w in x]
        code = f"_e2e({base64.b64encode(blob).decode()!r}, {backends!r}, {wins!r})\n"
        lines = [ln.split() for ln in c.exec(code, timeout=300).splitlines() if ln.startswith("E ")]
    expected = [(be, w) for be in backends for w in want]
    assert len(lines) == len(expected)
    for (_e, used, fx_used, got, y0, n), (be, (hexq, deq, size)) in zip(lines, expected):
        assert used == be and fx_used == be
        assert got == hexq, f"{kind} {be}"
        assert int(n) == size and abs(float(y0) - deq) <= 1e-6 * max(1.0, abs(deq))
