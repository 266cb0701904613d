"""mpml.nn: gradients against finite differences, repeatability, early stopping, save/load, progress."""

from __future__ import annotations

import io

import numpy as np
import pytest

from mpml import nn
from mpml.nn import layers as L


def _grad_check(layer: L.Layer, in_shape, seed: int = 0, batch: int = 2) -> None:
    """Analytic gradients (input and parameters) of sum(r * layer(x)) against central differences."""
    rng = np.random.default_rng(seed)
    layer.build(in_shape, rng)
    for p in layer.params.values():  # non-zero biases so activations' kinks are not all at 0
        p[...] = rng.normal(0, 0.5, p.shape)
    x = rng.normal(0, 1, (batch,) + tuple(in_shape)).astype(np.float32)
    r = rng.normal(0, 1, (batch,) + layer.output_shape).astype(np.float32)

    def f() -> float:
        return float((layer.forward(x).astype(np.float64) * r).sum())

    layer.forward(x, training=True)
    dx = layer.backward(r)
    eps = 1e-2
    checks = [("x", x, dx)] + [(k, layer.params[k], layer.grads[k]) for k in layer.params]
    for name, arr, grad in checks:
        assert grad.shape == arr.shape, name
        num = np.zeros(arr.shape, np.float64)
        flat, nflat = arr.reshape(-1), num.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = f()
            flat[i] = old - eps
            down = f()
            flat[i] = old
            nflat[i] = (up - down) / (2 * eps)
        err = np.abs(num - grad).max() / max(np.abs(num).max(), 1e-3)
        assert err < 2e-2, f"{layer!r} d/d{name}: relative error {err:.3g}"


@pytest.mark.parametrize("layer,shape", [
    (L.Dense(5, "relu"), (4,)),
    (L.Dense(3, "relu6"), (6,)),
    (L.Dense(3), (4,)),
    (L.Conv1D(4, 3, activation="relu"), (7, 3)),
    (L.Conv1D(3, 3, strides=2, padding="same", dilation=1), (8, 2)),
    (L.Conv1D(3, 2, strides=2, padding="same"), (7, 2)),
    (L.Conv1D(2, 3, padding="valid", dilation=2, activation="relu6"), (9, 2)),
    (L.Conv1D(5, 1), (6, 3)),
    (L.DepthwiseConv1D(3, depth_multiplier=2, activation="relu"), (6, 3)),
    (L.DepthwiseConv1D(4, strides=2, padding="valid"), (9, 2)),
    (L.DepthwiseConv1D(3, padding="same", dilation=2), (8, 2)),
    (L.MaxPool1D(2), (6, 3)),
    (L.MaxPool1D(3, strides=2, padding="same"), (8, 2)),
    (L.AvgPool1D(2), (7, 3)),
    (L.AvgPool1D(3, strides=2, padding="same"), (8, 2)),
    (L.GlobalAvgPool1D(), (5, 3)),
    (L.Flatten(), (4, 3)),
    (L.Softmax(), (5,)),
], ids=lambda v: repr(v) if isinstance(v, L.Layer) else str(v))
def test_layer_gradients(layer, shape) -> None:
    _grad_check(layer, shape)


def test_conv1d_equals_direct_convolution() -> None:
    # im2col against the textbook sum, with TFLM's SAME padding split (odd extra on the right).
    rng = np.random.default_rng(1)
    layer = L.Conv1D(3, 4, strides=2, padding="same")
    layer.build((9, 2), rng)
    x = rng.normal(size=(2, 9, 2)).astype(np.float32)
    y = layer.forward(x)
    w, b = layer.params["kernel"], layer.params["bias"]
    pl = layer.pad_left
    want = np.zeros_like(y)
    for o in range(layer.out_len):
        for k in range(4):
            i = o * 2 - pl + k
            if 0 <= i < 9:
                want[:, o] += x[:, i] @ w[k]
    np.testing.assert_allclose(y, want + b, rtol=1e-5, atol=1e-5)
    assert (layer.out_len, pl) == (5, 1)


def test_crossentropy_gradient_through_a_model() -> None:
    # The fused softmax + class-weighted cross-entropy gradient, against finite differences of the loss.
    rng = np.random.default_rng(2)
    model = nn.Sequential([L.Conv1D(3, 3, activation="relu"), L.GlobalAvgPool1D(), L.Dense(4), L.Softmax()],
                          (6, 2), seed=3)
    x = rng.normal(size=(5, 6, 2)).astype(np.float32)
    y = np.array([0, 1, 3, 2, 1])
    cw = np.array([1.0, 2.0, 0.5, 1.5], np.float32)
    out = model.forward(x, training=True)
    _value, g = model._loss("crossentropy", out, y, cw)
    for layer in reversed(model.layers[:-1]):
        g = layer.backward(g)
    for k in (0, 2):  # the conv (under relu and pooling) and the logits layer
        w, analytic = model.layers[k].params["kernel"], model.layers[k].grads["kernel"]
        num = np.zeros_like(w)
        eps = 1e-3
        for idx in np.ndindex(w.shape):
            old = w[idx]
            w[idx] = old + eps
            up = model._loss("crossentropy", model.forward(x), y, cw)[0]
            w[idx] = old - eps
            down = model._loss("crossentropy", model.forward(x), y, cw)[0]
            w[idx] = old
            num[idx] = (up - down) / (2 * eps)
        assert np.abs(num - analytic).max() < 2e-2 * np.abs(analytic).max()


def _blobs(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2, (3, 8))
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.normal(0, 1, (n, 8))).astype(np.float32), y


def test_a_fixed_seed_repeats_a_run_bit_for_bit() -> None:
    x, y = _blobs()
    runs = []
    for seed in (7, 7, 8):
        m = nn.mlp_classifier(8, 3, (16,), seed=seed)
        m.fit(x, y, epochs=3, batch_size=16, l2=1e-3, class_weight="balanced", verbose=False)
        runs.append(np.concatenate([p.reshape(-1) for layer in m.layers for p in layer.params.values()]))
    assert runs[0].tobytes() == runs[1].tobytes()
    assert runs[0].tobytes() != runs[2].tobytes()


def test_early_stopping_restores_the_best_weights() -> None:
    x, y = _blobs(200, seed=3)
    y = y.copy()
    y[:100] = np.random.default_rng(0).integers(0, 3, 100)  # label noise, so it overfits
    xv, yv = _blobs(100, seed=4)
    m = nn.mlp_classifier(8, 3, (64, 64), seed=0)
    h = m.fit(x, y, validation_data=(xv, yv), epochs=200, batch_size=8, lr=1e-2, patience=3, verbose=False)
    assert h.stopped_early and h.epochs < 200
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best + 1 and h.epochs == h.best_epoch + 3
    val_loss, val_acc = m.evaluate(xv, yv)
    assert val_loss == pytest.approx(h.val_loss[best], rel=1e-5)
    assert val_acc == h.val_acc[best]


def test_learns_and_class_weights() -> None:
    x, y = _blobs(400)
    m = nn.mlp_classifier(8, 3, (16,), seed=1)
    m.fit(x[:300], y[:300], epochs=20, verbose=False)
    assert (m.predict_classes(x[300:]) == y[300:]).mean() > 0.9
    w = nn.class_weights(np.array([0, 0, 0, 1]), 3, "balanced")
    np.testing.assert_allclose(w, [4 / 9, 4 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(nn.class_weights(y, 3, {1: 2.0}), [1, 2, 1])


def test_cnn_trains_on_a_1d_signal() -> None:
    # Two classes told apart by frequency: a 1-D CNN with a separable block learns it.
    rng = np.random.default_rng(0)
    t = np.arange(32)
    y = rng.integers(0, 2, 240)
    f = np.where(y == 0, 0.1, 0.3)[:, None]
    x = np.sin(2 * np.pi * f * t + rng.uniform(0, 6, (240, 1)))[..., None] + rng.normal(0, 0.3, (240, 32, 1))
    x = np.concatenate([x, -x], axis=2).astype(np.float32)
    m = nn.cnn1d_classifier(32, 2, 2, filters=(4, 8), kernel_size=3, seed=0)
    m.fit(x[:200], y[:200], epochs=15, batch_size=16, lr=3e-3, verbose=False)
    assert (m.predict_classes(x[200:]) == y[200:]).mean() >= 0.9


def test_autoencoder_scores_anomalies_higher() -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 12))
    normal = (rng.normal(size=(400, 2)) @ basis + rng.normal(0, 0.05, (400, 12))).astype(np.float32)
    odd = rng.normal(0, 1.5, (50, 12)).astype(np.float32)
    m = nn.dense_autoencoder(12, (16, 2, 16), seed=0)
    m.fit(normal[:300], epochs=40, batch_size=16, lr=3e-3, verbose=False)
    s_normal = nn.anomaly_scores(normal[300:], m.predict(normal[300:]))
    s_odd = nn.anomaly_scores(odd, m.predict(odd))
    assert np.median(s_odd) > 5 * np.median(s_normal)


def test_save_and_load(tmp_path) -> None:
    m = nn.cnn1d_classifier(16, 3, 4, filters=(4, 6), kernel_size=3, dense=5, seed=2, labels=list("abcd"))
    m.meta["input_quantization"] = {"scale": 1 / 32, "zero_point": 0}
    path = m.save(tmp_path / "m.npz")
    back = nn.load(path)
    x = np.random.default_rng(0).normal(size=(3, 16, 3)).astype(np.float32)
    assert back.predict(x).tobytes() == m.predict(x).tobytes()
    assert back.architecture() == m.architecture()
    assert back.labels == list("abcd") and back.meta["input_quantization"]["zero_point"] == 0
    with np.load(path, allow_pickle=False) as z:
        assert {"architecture", "L0.kernel", "L0.bias"} <= set(z.files)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        nn.load(tmp_path / "bad.npz")


def test_progress_line_and_silence() -> None:
    x, y = _blobs(64)
    out = io.StringIO()
    m = nn.mlp_classifier(8, 3, (4,), seed=0)
    m.fit(x, y, validation_data=(x, y), epochs=2, verbose=True, stream=out)
    lines = out.getvalue().strip("\r\n").split("\n")
    assert len(lines) == 2
    for k, line in enumerate(lines, 1):
        assert line.lstrip("\r").startswith(f"epoch {k}/2")
        for word in ("loss", "acc", "val_loss", "val_acc"):
            assert f" {word} " in line
        assert line.rstrip().endswith("s")
    quiet = io.StringIO()
    m.fit(x, y, epochs=1, verbose=False, stream=quiet)
    assert quiet.getvalue() == ""


def test_bad_input_is_refused() -> None:
    m = nn.mlp_classifier(4, 2, (3,))
    with pytest.raises(ValueError, match="input shape"):
        m.fit(np.zeros((3, 5)), [0, 1, 0], verbose=False)
    with pytest.raises(ValueError, match="NaN"):
        m.fit(np.full((3, 4), np.nan), [0, 1, 0], verbose=False)
    with pytest.raises(ValueError, match="class indices"):
        m.fit(np.zeros((3, 4)), [0, 1, 2], verbose=False)
    with pytest.raises(ValueError, match="Flatten"):
        nn.Sequential([nn.Dense(3)], (4, 2))
    with pytest.raises(ValueError, match="activation"):
        nn.Dense(3, "tanh")
