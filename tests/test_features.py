"""The feature spec: numpy (vectorised) equals docs/features.md done literally (firmware/mpml/featurize.py),
on random and extreme windows; fit/transform; dict and bytes round trips, through a real blob.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mpml.blob import read_blob, write_blob
from mpml.data import builtin, split, windows
from mpml.features import FeatureError, FeatureSpec
from mpml.features import intmath as im
from mpml.reference.fixedpoint import multiply_by_quantized_multiplier, rounding_divide_by_pot
from mpml.shared import featurize as scalar  # the board's module: docs/features.md literally
from mpml.testing.graphs import mlp

ALL = {"blocks": [{"raw": {"decimate": 3}}, {"stats": {}},
                  {"bands": {"fft": 16, "bands": [[0, 1], [1, 3], [3, 9]]}},
                  {"bands": {"channels": [1], "fft": 8, "bands": 2, "window": "rect", "remove_mean": False}}]}


def extreme_windows(rng, n: int, length: int, channels: int) -> np.ndarray:
    x = rng.integers(-32768, 32768, size=(n, length, channels)).astype(np.int16)
    x[0] = -32768
    x[1] = 32767
    x[2, ::2], x[2, 1::2] = -32768, 32767          # full-scale Nyquist: the FFT's largest bin
    x[3] = 0
    x[4, : length // 2], x[4, length // 2:] = 32767, -32768
    t = np.arange(length)
    x[5] = np.round(32767 * np.cos(2 * np.pi * t * 3 / 16))[:, None]  # full-scale tone on a bin
    x[6] = rng.integers(-3, 4, size=(length, channels))               # tiny signals
    x[7, :, 0] = 32767
    x[7, :, -1] = -32768
    return x


# -- the integer steps -----------------------------------------------------------------------------

def test_integer_steps_match_their_literal_definitions():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(-2**40, 2**40, 3000), np.arange(-300, 300)])
    for b in (1, 2, 3, 7, 16, 128, 1000):
        assert im.div_round(a, b).tolist() == [scalar.div_round(int(v), b) for v in a]
    x = np.concatenate([rng.integers(-2**31, 2**31, 20000), np.arange(-4000, 4000), [-2**31, 2**31 - 1]])
    for e in (1, 2, 15, 16, 31):
        want = rounding_divide_by_pot(x, e)
        assert np.array_equal(im.rdp(x, e), want)
        assert [scalar.rdp(int(v), e) for v in x[::97]] == want[::97].tolist()
    v = np.concatenate([np.arange(0, 5000), rng.integers(0, 2**62, 3000), [2**62 - 1, 2**60, (2**30 + 1)**2 - 1]])
    r = im.isqrt(v)
    assert all(r[k] == math.isqrt(int(v[k])) for k in range(len(v)))
    assert [scalar.isqrt(int(t)) for t in v[::13]] == r[::13].tolist()
    w = np.concatenate([np.arange(1, 5000), rng.integers(1, 2**63 - 1, 3000),
                        [2**k for k in range(63)], [2**k - 1 for k in range(1, 63)], [2**63 - 1]])
    got = im.log2q(w)
    assert [scalar.log2q(int(t)) for t in w] == got.tolist()
    assert np.abs(got / 256 - np.log2(w.astype(np.float64))).max() < 2 ** -5  # 6 mantissa bits
    assert im.LOG2_TABLE == scalar.LOG2_TABLE


def test_fft_follows_the_float_fft():
    rng = np.random.default_rng(1)
    for n in (4, 16, 64, 256):
        v = rng.integers(-32768, 32769, size=(50, n))
        re, imag = im.fft_q15(v, im.twiddles(n))
        ref = np.fft.fft(v, axis=1) / n
        bits = int(math.log2(n))
        assert np.abs(re - ref.real).max() <= bits and np.abs(imag - ref.imag).max() <= bits
        for row in range(3):
            sre, sim = scalar.fft_q15(v[row].tolist(), [tuple(t) for t in im.twiddles(n).tolist()], bits)
            assert sre == re[row].tolist() and sim == imag[row].tolist()


# -- scalar (the doc, literally) == vectorised -----------------------------------------------------

@pytest.mark.parametrize("spec_dict,length,channels", [
    (ALL, 35, 3),
    ({"blocks": [{"stats": {"channels": [2, 0], "stats": ["zero_crossings", "rms", "std", "peak_to_peak"]}},
                 {"bands": {"fft": 64, "bands": [[1, 4], [4, 8], [8, 16], [16, 33]]}}]}, 128, 3),
    ({"blocks": [{"raw": {}}]}, 8, 8),
    ({"blocks": [{"stats": {"stats": ["mean", "std"]}}, {"bands": {"fft": 4, "bands": [[0, 3]]}}]}, 1 + 4, 1),
])
def test_scalar_equals_vectorised(spec_dict, length, channels):
    rng = np.random.default_rng(length)
    x = extreme_windows(rng, 24, length, channels)
    spec = FeatureSpec.from_dict(spec_dict, window_length=length, n_channels=channels).fit(x[8:])
    data = spec.to_bytes()
    f = spec.features(x)
    q = spec.transform(x)
    assert f.shape == (24, spec.n_features) and f.dtype == np.int32 and q.dtype == np.int8
    for i in range(len(x)):
        fs = scalar.features(data, x[i].tolist())  # asserts every int32/int64 bound of docs/features.md
        assert fs == f[i].tolist(), f"window {i}"
        assert scalar.quantize(data, fs) == q[i].tolist(), f"window {i}"


def test_stats_values():
    x = np.array([[3], [-1], [4], [-1], [5], [-9], [2], [6]], np.int16)
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {}}]}, window_length=8, n_channels=1)
    got = dict(zip([n.split(".")[1] for n in spec.feature_names], spec.features(x)[0].tolist()))
    v = x[:, 0].astype(float)
    assert got["mean"] == round(16 * v.mean()) and got["min"] == -9 and got["max"] == 6
    assert got["peak_to_peak"] == 15 and got["zero_crossings"] == 6
    assert abs(got["std"] - 16 * v.std()) <= 1 and abs(got["rms"] - 16 * np.sqrt((v * v).mean())) <= 1


def test_band_energy_lands_in_its_band():
    n, fs = 64, 50.0
    t = np.arange(128)
    spec = FeatureSpec.from_dict({"blocks": [{"bands": {"fft": n, "bands_hz": [[0.5, 3], [3, 6], [6, 12],
                                                                                  [12, 25.1]]}}]},
                                 window_length=128, n_channels=1, sample_rate_hz=fs)
    for hz, band in ((2.0, 0), (4.7, 1), (9.0, 2), (18.0, 3)):
        x = np.round(8000 * np.sin(2 * np.pi * hz * t / fs)).astype(np.int16)[None, :, None]
        f = spec.features(x)[0]
        assert int(np.argmax(f)) == band and f[band] - np.sort(f)[-2] > 4 * 256  # > 12 dB above the rest


# -- quantization ----------------------------------------------------------------------------------

def test_fit_standardizes_in_one_scale():
    w = builtin("watch")
    ws = windows(w, 128, 64)
    train, _val, test = split(ws, by="subject", seed=0)
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {}}, {"bands": {"fft": 64, "bands": 6}}]},
                                 sample_rate_hz=w.sample_rate_hz, channel_names=w.channels)
    spec.fit(train)
    assert (spec.input_scale, spec.input_zero_point) == (1 / 32, 0)
    assert spec.n_features == 6 * 7 + 6 * 6 == len(spec.feature_names)
    assert spec.feature_names[0] == "ax.mean" and spec.feature_names[-1].startswith("wz.")
    z = spec.transform_float(train)
    live = spec.multipliers > 0
    assert np.abs(z.mean(axis=0)[live]).max() < 0.15
    sd = z.std(axis=0)[live]
    assert np.median(sd) > 0.98 and sd.min() > 0.7 and sd.max() < 1.05  # heavy tails clip at +-4 sigma
    assert (np.abs(spec.transform(train)) >= 127).mean() < 0.005       # and clipping is rare
    # by hand for one feature: clamp(MBQM(f - offset, m, shift) + zp)
    f = spec.features(test)
    k = 9
    want = np.clip(multiply_by_quantized_multiplier(f[:, k].astype(np.int64) - spec.offsets[k],
                                                    spec.multipliers[k], spec.shifts[k]), -128, 127)
    assert np.array_equal(spec.transform(test)[:, k], want)
    data = spec.to_bytes()
    for i in range(0, len(test), max(1, len(test) // 5)):
        assert scalar.quantize(data, scalar.features(data, test.x[i].tolist())) == spec.transform(test.x[i])[0].tolist()


def test_constant_feature_and_multiplier_cap():
    x = np.zeros((10, 16, 2), np.int16)
    x[:, :, 1] = np.arange(10)[:, None] % 2   # channel 1: mean differs by 16/16 = 1 count
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {"stats": ["mean", "min"]}}]}).fit(x)
    assert spec.multipliers[0] == 0 and spec.multipliers[1] == 0      # channel 0 constant: always zp
    assert spec.shifts.max() <= 9                                      # real multiplier <= 256
    assert np.all(spec.transform(x)[:, :2] == 0)


def test_raw_only_spec_is_a_cnn_input():
    d = builtin("digits")
    w = windows(d, 8)
    spec = FeatureSpec.from_dict({"blocks": [{"raw": {}}]}, channel_names=d.channels).fit(w)
    assert spec.output_shape == (8, 8) and spec.n_features == 64 and spec.n_slots == 8
    q = spec.transform(w, shaped=True)
    assert q.shape == (1797, 8, 8) and np.array_equal(q.reshape(1797, 64), spec.transform(w))
    # one offset / multiplier per channel (column), shared along time: a convolution sees one scale
    col = w.x[:, :, 3].astype(float)
    assert spec.offsets[3] == round(col.mean())
    dec = FeatureSpec.from_dict({"blocks": [{"raw": {"decimate": 2, "channels": [0, 2]}}]},
                                window_length=9, n_channels=3)
    assert dec.output_shape == (4, 2)
    xs = np.arange(27, dtype=np.int16).reshape(1, 9, 3)
    # mean of sample pairs, rounded half away from zero: (0+3)/2 -> 2, (2+5)/2 -> 4, ...
    assert dec.features(xs)[0].tolist() == [2, 4, 8, 10, 14, 16, 20, 22]


# -- serialization ---------------------------------------------------------------------------------

def test_dict_and_bytes_round_trip():
    rng = np.random.default_rng(3)
    x = rng.integers(-2000, 2000, size=(50, 35, 3)).astype(np.int16)
    spec = FeatureSpec.from_dict(ALL, sample_rate_hz=100.0, channel_names=["x", "y", "z"])
    unfitted = FeatureSpec.from_dict(ALL, window_length=35, n_channels=3)
    assert FeatureSpec.from_bytes(unfitted.to_bytes()) == unfitted and not unfitted.fitted
    spec.fit(x)
    d = json.loads(json.dumps(spec.to_dict()))  # JSON (and TOML) friendly
    again = FeatureSpec.from_dict(d)
    assert again == spec and np.array_equal(again.transform(x), spec.transform(x))
    back = FeatureSpec.from_bytes(spec.to_bytes())
    assert back == spec and back.channel_names == ["x", "y", "z"] and back.sample_rate_hz == 100.0
    assert back.feature_names == spec.feature_names and back.to_dict() == spec.to_dict()
    assert np.array_equal(back.transform(x), spec.transform(x))


def test_spec_travels_in_a_blob():
    w = builtin("watch")
    ws = windows(w, 100, 50)
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {"channels": [0, 1, 2]}},
                                             {"bands": {"channels": [3, 4, 5], "fft": 32, "bands": 4}}]},
                                 sample_rate_hz=50, channel_names=w.channels).fit(ws)
    g = mlp(sizes=(spec.n_features, 16, 7))
    g.features = spec.to_bytes()
    blob = read_blob(write_blob(g))
    got = FeatureSpec.from_bytes(blob.graph.features)
    assert got == spec and np.array_equal(got.transform(ws.x[:200]), spec.transform(ws.x[:200]))


def test_corrupted_bytes_are_feature_errors():
    spec = FeatureSpec.from_dict(ALL, window_length=35, n_channels=3).fit(
        np.random.default_rng(4).integers(-99, 99, size=(5, 35, 3)).astype(np.int16))
    data = spec.to_bytes()
    with pytest.raises(FeatureError, match="bad magic"):
        FeatureSpec.from_bytes(b"XXXX" + data[4:])
    with pytest.raises(FeatureError, match="version 2"):
        FeatureSpec.from_bytes(data[:4] + b"\x02\x00" + data[6:])
    with pytest.raises(FeatureError, match="total size"):
        FeatureSpec.from_bytes(data[:-4])
    rng = np.random.default_rng(5)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        b = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] = rng.integers(256)
        try:
            FeatureSpec.from_bytes(bytes(b))
            outcomes["ok"] += 1
        except FeatureError:
            outcomes["error"] += 1
    assert outcomes["error"] > 50  # and nothing but FeatureError escaped


def test_bad_specs():
    with pytest.raises(FeatureError, match="unknown kind 'mfcc'"):
        FeatureSpec.from_dict({"blocks": [{"mfcc": {}}]})
    with pytest.raises(FeatureError, match="unknown option decim"):
        FeatureSpec.from_dict({"blocks": [{"raw": {"decim": 2}}]})
    with pytest.raises(FeatureError, match="unknown stat median"):
        FeatureSpec.from_dict({"blocks": [{"stats": {"stats": ["median"]}}]}, window_length=8, n_channels=1)
    with pytest.raises(FeatureError, match="fft size 64 is longer than the window"):
        FeatureSpec.from_dict({"blocks": [{"bands": {"fft": 64}}]}, window_length=50, n_channels=1)
    with pytest.raises(FeatureError, match="power of two"):
        FeatureSpec.from_dict({"blocks": [{"bands": {"fft": 48}}]})
    with pytest.raises(FeatureError, match="channel 3 does not exist"):
        FeatureSpec.from_dict({"blocks": [{"stats": {"channels": [3]}}]}, window_length=8, n_channels=3)
    with pytest.raises(FeatureError, match="bands_hz needs the sample rate"):
        FeatureSpec.from_dict({"blocks": [{"bands": {"bands_hz": [[1, 2]]}}]})
    with pytest.raises(FeatureError, match="band \\[40, 50\\] Hz holds no bin"):
        FeatureSpec.from_dict({"blocks": [{"bands": {"fft": 16, "bands_hz": [[40, 50]]}}]}, sample_rate_hz=50)
    spec = FeatureSpec.from_dict({"blocks": [{"stats": {}}]})
    with pytest.raises(FeatureError, match="not fitted"):
        spec.transform(np.zeros((2, 8, 1), np.int16))
    with pytest.raises(FeatureError, match=r"windows of shape \(9, 1\): the spec is for \[8, 1\]"):
        spec.features(np.zeros((2, 9, 1), np.int16))
    with pytest.raises(FeatureError, match="expected int16"):
        spec.features(np.zeros((2, 8, 1), np.float32))
