"""mpml.quantize: float models to int8 graphs that run in the reference and on a board, with the accuracy bar."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest

from mpml import nn, ops
from mpml.blob import read_blob, write_blob
from mpml.nn import layers as L
from mpml.quantize import QuantizeError, choose_qparams, compare, predict, quantize, quantize_weights, run_batch
from mpml.reference import quantize as quantize_input, run, run_float

SCALE, ZP = 1 / 32, 0  # the feature spec's common int8 input quantization


def _grid(x) -> np.ndarray:
    """Float inputs on the int8 grid of the model's input (what the features produce)."""
    return (np.clip(np.round(np.asarray(x) / SCALE) + ZP, -128, 127) - ZP).astype(np.float32) * np.float32(SCALE)


def _random_biases(model: nn.Sequential, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.normal(0, 0.2, layer.params["bias"].shape)


def _every_layer_model() -> nn.Sequential:
    m = nn.Sequential([
        L.Conv1D(6, 3, strides=2, padding="same", activation="relu"),
        L.DepthwiseConv1D(3, depth_multiplier=2, padding="valid", dilation=2),
        L.Conv1D(5, 1, activation="relu6"),
        L.AvgPool1D(3, strides=2, padding="same"),
        L.MaxPool1D(2),
        L.Flatten(),
        L.Dense(7, "relu"),
        L.Dense(4),
        L.Softmax(),
    ], (24, 3), seed=5, labels=["a", "b", "c", "d"])
    _random_biases(m)
    return m


def test_qparams_and_weights() -> None:
    s, z = choose_qparams(0.0, 6.0)  # a ReLU output: zero at the bottom
    assert z == -128 and s == pytest.approx(6 / 255) and s == float(np.float32(s))
    s, z = choose_qparams(-1.0, 3.0)
    assert abs(round(0 / s) + z - z) == 0 and -128 <= z <= 127
    assert (-1.0 / s + z) >= -128.5 and (3.0 / s + z) <= 127.5
    s, z = choose_qparams(0.5, 2.0)  # the range always holds 0
    assert z == -128
    w = np.array([[1.0, -0.5], [0.0, 0.0], [0.2, 0.1]])
    q, scales = quantize_weights(w, axis=0)
    assert q.dtype == np.int8 and q.tolist() == [[127, -64], [0, 0], [127, 64]]
    np.testing.assert_allclose(scales, [1 / 127, 1.0, 0.2 / 127], rtol=1e-6)


def test_every_layer_maps_to_one_op_and_runs_in_the_reference() -> None:
    m = _every_layer_model()
    rng = np.random.default_rng(0)
    x = _grid(rng.normal(0, 1, (64, 24, 3)))
    g = quantize(m, x, SCALE, ZP, name="every")
    assert [op.name for op in g.ops] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "AVERAGE_POOL_2D",
                                         "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED",
                                         "SOFTMAX"]
    t_in = g.tensors[g.inputs[0].tensor]
    assert (t_in.scale, t_in.zero_point, t_in.shape) == (float(np.float32(SCALE)), ZP, (1, 1, 24, 3))
    assert g.inputs[0].float_io and g.outputs[0].float_io
    assert g.outputs[0].labels == ["a", "b", "c", "d"]
    t_out = g.tensors[g.outputs[0].tensor]
    assert (t_out.scale, t_out.zero_point) == (1 / 256, -128)
    dw = g.ops[1]
    p = dict(zip(ops.OPS[dw.code][3], dw.params))
    assert (p["depth_mult"], p["dil_w"], p["in_h"], p["k_h"]) == (2, 2, 1, 1)
    # the fused RELU6 is the output quantization's range of [0, 6]
    p = dict(zip(ops.OPS[ops.CONV_2D][3], g.ops[2].params))
    t = g.tensors[g.ops[2].outputs[0]]
    assert p["act_min"] == t.zero_point == -128 and p["act_max"] == min(127, -128 + round(6 / t.scale))

    # batched reference == the reference one window at a time (what the board computes)
    q = quantize_input(x[:6], SCALE, ZP)
    batched = run_batch(g, q)
    single = np.stack([run(g, [row.reshape(t_in.shape)])[0].reshape(-1) for row in q])
    assert batched.reshape(6, -1).tobytes() == single.tobytes()
    # and the float edges as Model.predict converts them
    np.testing.assert_array_equal(predict(g, x[:6]).reshape(6, -1),
                                  np.stack([run_float(g, [row.reshape(t_in.shape)])[0].reshape(-1) for row in x[:6]]))
    # close to the float model
    r = compare(m, g, x)
    assert r.agreement >= 0.9 and r.max_abs_diff < 0.1, r.table()
    # a blob written and read back runs the same
    back = read_blob(write_blob(g)).graph
    assert run_batch(back, q).tobytes() == batched.tobytes()


def test_global_pool_cnn_and_autoencoder() -> None:
    rng = np.random.default_rng(1)
    m = nn.cnn1d_classifier(32, 2, 3, filters=(4, 8), kernel_size=3, seed=1, dense=6)
    _random_biases(m, 1)
    x = _grid(rng.normal(0, 1, (50, 32, 2)))
    g = quantize(m, x, SCALE, ZP)
    assert "AVERAGE_POOL_2D" in [op.name for op in g.ops]
    assert compare(m, g, x).agreement >= 0.9

    basis = rng.normal(size=(2, 10))
    normal = _grid(rng.normal(size=(300, 2)) @ basis * 0.7)
    odd = _grid(rng.normal(0, 1.5, (40, 10)))
    ae = nn.dense_autoencoder(10, (12, 2, 12), seed=0)
    ae.fit(normal[:250], epochs=30, batch_size=16, lr=3e-3, verbose=False)
    ga = quantize(ae, normal[:250], SCALE, ZP)
    assert ga.outputs[0].float_io and ga.outputs[0].labels == []
    xt = np.concatenate([normal[250:], odd])
    yt = np.r_[np.zeros(50), np.ones(40)]
    r = compare(ae, ga, xt, yt)
    assert r.task == "autoencoder" and r.int8_auc > 0.9, r.table()
    # on data like the calibration set the scores agree; anomalies saturate the int8 output
    # (their reconstruction leaves the calibrated range) but still rank above normal windows
    assert compare(ae, ga, normal[250:]).score_corr > 0.99
    assert abs(r.float_auc - r.int8_auc) < 0.05
    assert "ROC AUC" in r.table()


def test_saved_model_quantizes_to_the_same_blob(tmp_path) -> None:
    m = _every_layer_model()
    x = _grid(np.random.default_rng(2).normal(0, 1, (32, 24, 3)))
    path = m.save(tmp_path / "float.npz")
    assert write_blob(quantize(nn.load(path), x, SCALE, ZP)) == write_blob(quantize(m, x, SCALE, ZP))


def test_percentile_calibration_clips_outliers() -> None:
    m = nn.mlp_classifier(4, 2, (8,), seed=0)
    x = _grid(np.random.default_rng(3).normal(0, 0.5, (500, 4)))
    x[0] = 3.9  # one outlier
    wide = quantize(m, x, SCALE, ZP)
    narrow = quantize(m, x, SCALE, ZP, method="percentile", percentile=99.0)
    assert narrow.tensors[narrow.ops[0].outputs[0]].scale < wide.tensors[wide.ops[0].outputs[0]].scale


def test_refuses_what_it_cannot_quantize() -> None:
    m = nn.mlp_classifier(4, 2, (3,))
    x = np.zeros((4, 4), np.float32)
    with pytest.raises(QuantizeError, match="labels"):
        quantize(m, x, SCALE, ZP, labels=["one"])
    with pytest.raises(QuantizeError, match="NaN"):
        quantize(m, np.full((4, 4), np.nan), SCALE, ZP)
    with pytest.raises(QuantizeError, match="calibration data"):
        quantize(m, np.zeros((4, 5)), SCALE, ZP)
    with pytest.raises(QuantizeError, match="zero point"):
        quantize(m, x, SCALE, 200)

    class Odd(L.Layer):
        kind = "Odd"

    odd = nn.Sequential([Odd(), L.Dense(2), L.Softmax()], (4,))
    with pytest.raises(QuantizeError, match="layer 0 Odd"):
        quantize(odd, x, SCALE, ZP)


def test_digits_int8_mlp_bar() -> None:
    """The issue's bar: an int8 MLP on scikit-learn's digits >= 95 % test accuracy, within 1 point of float."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.2, random_state=0, stratify=d.target)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = _grid((xtr - mu) / sd), _grid((xte - mu) / sd)
    xt, xv, yt, yv = train_test_split(xtr, ytr, test_size=0.15, random_state=0, stratify=ytr)
    m = nn.mlp_classifier(64, 10, (64, 32), seed=0, labels=[str(k) for k in range(10)])
    m.fit(xt, yt, validation_data=(xv, yv), epochs=60, patience=10, l2=1e-4, verbose=False)
    g = quantize(m, xt, SCALE, ZP, name="digits")
    r = compare(m, g, xte, yte)
    assert r.int8_acc >= 0.95, r.table()
    assert r.int8_acc >= r.float_acc - 0.01, r.table()


RUNNER = """
import binascii, struct, gc
import mpml.model as M
def _q(blob, backends, ins, floats):
    buf = binascii.a2b_base64(blob)
    for be in backends:
        m = M.load(buf, be)
        out = bytearray(%d)
        for h in ins:
            m.run([binascii.unhexlify(h)], [out])
            print('R', m.backend, binascii.hexlify(out).decode())
        for h in floats:
            raw = binascii.unhexlify(h)
            y = m.predict(list(struct.unpack('<%%df' %% (len(raw) // 4), raw)))
            print('F', m.backend, binascii.hexlify(struct.pack('<%%df' %% len(y), *y)).decode())
        m = None
        gc.collect()
"""


def test_quantized_cnn_on_the_unix_board_equals_the_reference() -> None:
    from conftest import backends_for, runtime_board
    from mpml.device import Connection

    rng = np.random.default_rng(4)
    m = nn.cnn1d_classifier(64, 3, 5, filters=(8, 12), kernel_size=5, seed=4, dense=8,
                            labels=["a", "b", "c", "d", "e"])
    _random_biases(m, 4)
    x = _grid(rng.normal(0, 1.2, (40, 64, 3)))
    g = quantize(m, x, SCALE, ZP, name="cnn")
    blob = write_blob(g)
    q = quantize_input(x[:4], SCALE, ZP).reshape(4, -1)
    want_int8 = run_batch(g, q).reshape(4, -1)
    want_float = [run_float(g, [xx.reshape(1, 1, 64, 3)])[0].astype("<f4").tobytes() for xx in x[4:6]]

    board = runtime_board("unix")
    backends = backends_for(board)
    with Connection(board.port, timeout=90) as c:
        c.exec(RUNNER % 5)
        out = c.exec(f"_q({base64.b64encode(blob)!r}, {backends!r}, {[r.tobytes().hex() for r in q]!r}, "
                     f"{[xx.astype('<f4').tobytes().hex() for xx in x[4:6]]!r})\n")
    lines = [ln.split() for ln in out.splitlines() if ln[:2] in ("R ", "F ")]
    assert len(lines) == len(backends) * 6, out
    for k, be in enumerate(backends):
        mine = lines[k * 6:(k + 1) * 6]
        assert all(used == be for _t, used, _h in mine)
        for (_t, _b, got), want in zip(mine[:4], want_int8):
            assert bytes.fromhex(got) == want.tobytes(), f"{be}: board int8 differs from the reference"
        for (_t, _b, got), want in zip(mine[4:], want_float):
            assert bytes.fromhex(got) == want, (f"{be}: predict {struct.unpack('<5f', bytes.fromhex(got))} "
                                                f"!= reference {struct.unpack('<5f', want)}")
