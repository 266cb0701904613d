"""Live classification (mpml.classify on the board, mpml.device.live / `mpml monitor` on the host).

A replayed recording stands for the sensor (the virtual boards have none).
Models are small and untrained beyond a few epochs: what is checked is that
the board classifies every window the sampler delivers, at the right sample
positions, and that each class (or anomaly score) is what the host computes
for the same window through the same feature spec, not how good the model is.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import runtime_board
from mpml.blob import write_blob
from mpml.device.live import LiveError, classify_live
from mpml.device.models import push_model, rm_model
from mpml.evaluate import int8_outputs
from mpml.features import FeatureSpec

RATE = 100
WINDOW = 64
CHANNELS = 3


def recording(n: int = 900, seed: int = 0) -> np.ndarray:
    """Three channels of tones and noise that change character halfway, int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    x = np.stack([3000 * np.sin(2 * np.pi * (2 + 6 * (t > t[n // 2])) * t),
                  2000 * np.cos(2 * np.pi * 3 * t), 500 * rng.standard_normal(n)], axis=1)
    return np.clip(x + 200 * rng.standard_normal(x.shape), -32768, 32767).astype(np.int16)


def windows_of(x: np.ndarray, starts) -> np.ndarray:
    return np.stack([x[s:s + WINDOW] for s in starts])


def _spec(blocks, x):
    spec = FeatureSpec.from_dict({"blocks": blocks}, sample_rate_hz=RATE, channel_names=["a", "b", "c"])
    spec.fit(windows_of(x, range(0, len(x) - WINDOW, 8)))
    return spec


@pytest.fixture(scope="module")
def classifier():
    """An MLP over stats + FFT bands of 64x3 windows, three classes; its blob carries the spec."""
    from mpml.nn.models import mlp_classifier
    from mpml.quantize import quantize

    x = recording(2000, seed=1)
    spec = _spec([{"stats": {}}, {"bands": {"fft": 32, "bands": 4}}], x)
    w = windows_of(x, range(0, len(x) - WINDOW, 8))
    xf = spec.transform_float(w)
    y = (np.arange(len(w)) * 3 // len(w)).astype(int)
    m = mlp_classifier(spec.n_features, 3, hidden=(16,), seed=0, labels=["low", "mid", "high"])
    m.fit(xf, y, epochs=3, verbose=False)
    g = quantize(m, xf, spec.input_scale, spec.input_zero_point, name="live", labels=["low", "mid", "high"],
                 features=spec.to_bytes())
    return spec, g


@pytest.fixture(scope="module")
def autoencoder():
    from mpml.nn.models import dense_autoencoder
    from mpml.quantize import quantize

    x = recording(2000, seed=2)
    spec = _spec([{"stats": {"stats": ["mean", "std", "rms", "peak_to_peak"]}}], x)
    xf = spec.transform_float(windows_of(x, range(0, len(x) - WINDOW, 8)))
    m = dense_autoencoder(spec.n_features, hidden=(6, 3, 6), seed=0)
    m.fit(xf, epochs=3, verbose=False)
    return spec, quantize(m, xf, spec.input_scale, spec.input_zero_point, name="ae", features=spec.to_bytes())


def _replay(tmp_path, x) -> str:
    f = tmp_path / "live.i16"
    f.write_bytes(x.astype("<i2").tobytes())
    return f"replay:{f},rate={RATE},channels={CHANNELS},speed=4"


@pytest.mark.parametrize("kind", ["unix", "m0"])
def test_every_window_classified_as_the_host_computes_it(kind, classifier, tmp_path):
    spec, g = classifier
    board = runtime_board(kind)
    push_model(board.name, write_blob(g), name="live")
    x = recording(700, seed=3)
    hop = 32
    from mpml.device.board import Board

    with Board.open(board.name, timeout=30) as b:
        run = classify_live(b, "live", _replay(tmp_path, x), hop=hop)
        assert b.conn.eval("6 * 7") == 42  # the same connection goes on after a live run
    starts = [r.start for r in run.results]
    assert starts == list(range(0, len(x) - WINDOW + 1, hop)), "one result per window, every hop samples"
    assert run.dropped == 0 and run.reason == "end of source"
    assert run.labels == ["low", "mid", "high"]
    host = int8_outputs(g, spec.transform(windows_of(x, starts))).argmax(axis=1)
    assert [r.index for r in run.results] == host.tolist()
    assert all(r.label == run.labels[r.index] for r in run.results)
    rm_model(board.name, "live")


def test_smoothing_threshold_and_windows_limit(classifier, autoencoder, tmp_path):
    spec, g = classifier
    board = runtime_board("unix")
    push_model(board.name, write_blob(g), name="live")
    x = recording(700, seed=4)
    run = classify_live(board.name, "live", _replay(tmp_path, x), hop=16, smooth=4, windows=12)
    assert len(run.results) == 12 and run.reason == "windows"
    starts = [r.start for r in run.results]
    out = int8_outputs(g, spec.transform(windows_of(x, starts))).astype(int)
    for k, r in enumerate(run.results):
        s = out[max(0, k - 3):k + 1].sum(axis=0)  # the last four windows' int8 outputs, summed
        assert r.index == int(s.argmax())

    aspec, ag = autoencoder
    push_model(board.name, write_blob(ag), name="ae")
    run = classify_live(board.name, "ae", _replay(tmp_path, x), hop=32, threshold=0.5)
    starts = [r.start for r in run.results]
    from mpml.evaluate import evaluate_anomaly
    host = evaluate_anomaly(ag, aspec.transform_float(windows_of(x, starts))).scores
    board_scores = np.array([r.score for r in run.results])
    # The board computes the score in its float precision and prints it to 3 decimals.
    assert np.allclose(board_scores, host, atol=2e-3)
    assert [r.anomaly for r in run.results] == [bool(s > 0.5) for s in board_scores]
    rm_model(board.name, "ae")
    rm_model(board.name, "live")


def test_a_model_without_a_feature_spec_is_refused_clearly(tmp_path):
    from mpml.testing.graphs import mlp

    board = runtime_board("unix")
    push_model(board.name, write_blob(mlp(sizes=(8, 4))), name="plain")
    with pytest.raises(LiveError, match="no feature spec"):
        classify_live(board.name, "plain", _replay(tmp_path, recording(200)))
    rm_model(board.name, "plain")


def test_monitor_cli(classifier, tmp_path, capsys):
    from mpml.cli import main

    spec, g = classifier
    board = runtime_board("unix")
    push_model(board.name, write_blob(g), name="live")
    x = recording(400, seed=5)
    assert main(["monitor", "live", "--source", _replay(tmp_path, x), "--hop", "64", "--port", board.name]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("#")]
    assert len(lines) == (len(x) - WINDOW) // 64 + 1
    assert "0 samples dropped (end of source)" in out
    rm_model(board.name, "live")
