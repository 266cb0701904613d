"""`mpml run`, `mpml eval --on-device` and `mpml bench` on the unix and m0 boards.

The board's outputs must be the host reference's, byte for byte: for one
inference (floats quantized on the board, and int8 as given) and for a whole
test set streamed through the board; bench must report latency, per-layer
times, heap and backend honestly for a board with a clock (unix) and one
without (m0); bad input and a model missing on the board end with clear errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import runtime_board
from mpml.blob import save
from mpml.cli import main
from mpml.device import Board
from mpml.device.run import RunError, bench, eval_on_device, host_compare, run_samples
from mpml.reference import run_float
from mpml.testing.graphs import convnet, mlp

KINDS = ("unix", "m0")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    g = mlp(3)
    save(g, d / "mlp.mpml")
    save(convnet(1), d / "convnet.mpml")
    return d, g


def _open(kind):
    return Board.open(runtime_board(kind).port, timeout=60)


@pytest.mark.parametrize("kind", KINDS)
def test_run_floats_and_int8_equal_the_host_reference(kind, models):
    d, g = models
    rng = np.random.default_rng(5)
    t = g.tensors[g.inputs[0].tensor]
    xf = rng.uniform(-20 * t.scale, 20 * t.scale, (3, t.size))
    xf[0, :4] = [0.5 * t.scale, -0.5 * t.scale, 1e9, -1e9]  # halves away from zero, clamping
    xq = rng.integers(-128, 128, (2, t.size)).astype(np.int8)
    with _open(kind) as b:
        rf = run_samples(b, d / "mlp.mpml", xf)
        assert host_compare(b, d / "mlp.mpml", xf, rf).equal
        for x, r in zip(xf, rf):
            want = run_float(g, [x.reshape(t.shape)])[0].reshape(-1)
            assert r.outputs[0].tobytes() == want.astype("<f4").tobytes()
            assert r.top(1)[0][0] == g.outputs[0].labels[int(np.argmax(want))]
        rq = run_samples(b, g, xq, int8=True)
        assert host_compare(b, g, xq, rq, int8=True).equal
        # a model that differs would be flagged: compare convnet's outputs against mlp's graph
        assert not host_compare(b, g, xq, [rq[1], rq[0]], int8=True).equal


def _forest_npz(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from mpml.importers.sklearn import import_estimator

    x, y = load_digits(return_X_y=True)
    est = RandomForestClassifier(n_estimators=6, max_depth=6, random_state=0).fit(x[:1200], y[:1200])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = import_estimator(est, name="digits_forest", labels=[str(k) for k in range(10)])
    save(graph, tmp_path / "forest.mpml")
    np.savez(tmp_path / "test.npz", X=x[1200:1350], y=y[1200:1350])
    return graph


@pytest.mark.parametrize("kind", KINDS)
def test_eval_on_device_equals_the_host_simulation(kind, models, tmp_path, capsys):
    if kind == "unix":  # a forest of trees (int32 outputs, int8 inputs) on 200 digits
        graph = _forest_npz(tmp_path)
        model = tmp_path / "forest.mpml"
    else:  # the float-input MLP on 80 synthetic vectors
        d, graph = models
        model = d / "mlp.mpml"
        rng = np.random.default_rng(9)
        t = graph.tensors[graph.inputs[0].tensor]
        np.savez(tmp_path / "test.npz", X=rng.uniform(-30 * t.scale, 30 * t.scale, (80, t.size)),
                 y=np.array(graph.outputs[0].labels)[rng.integers(0, 4, 80)])
    from mpml.evaluate import evaluate_classifier

    with np.load(tmp_path / "test.npz") as z:
        x, y = z["X"], z["y"]
    host = evaluate_classifier(graph, x, y.astype(str) if kind == "unix" else y)
    png = str(tmp_path / "c.png")
    port = runtime_board(kind).port
    assert main(["eval", str(model), str(tmp_path / "test.npz"), "--on-device", "--port", port, "--png", png]) == 0
    dev = capsys.readouterr().out
    assert "outputs equal the host simulation exactly" in dev, dev
    assert "int8 on the board" in dev
    acc = [ln for ln in dev.splitlines() if ln.startswith("accuracy")]
    assert acc == [f"accuracy {host.accuracy:.4f}"]
    if kind == "unix":
        assert host.accuracy > 0.7  # a real model on real data
    # the API, on rows given directly: a board batch against the reference
    q = np.random.default_rng(2).integers(-128, 128, (25, graph.tensors[graph.inputs[0].tensor].size))
    with _open(kind) as b:
        ev = eval_on_device(b, model, q.astype(graph.tensors[graph.inputs[0].tensor].dtype), graph=graph)
    assert ev.equal and ev.outputs.shape[0] == 25 and ev.execs >= 1


def test_bench_on_the_unix_board_times_every_layer(models, capsys):
    d, _g = models
    port = runtime_board("unix").port
    assert main(["bench", str(d / "convnet.mpml"), "--runs", "60", "--port", port]) == 0
    out = capsys.readouterr().out
    for words in ("backend", "native", "time.ticks_us", "latency median", "spread", "peak heap", "run() allocates 0 B",
                  "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        assert words in out, (words, out)
    with _open("unix") as b:
        r = bench(b, d / "convnet.mpml", runs=80, backend="viper")
    assert r.backend == "viper" and len(r.latency_us) == 80 and r.run_alloc == 0
    assert r.heap_model >= r.blob_bytes + r.arena_bytes
    # one time per planned op (the speed itself is the bench's business, not a test's)
    assert len(r.op_us) == len(r.ops) == 5 and all(t > 0 for t in r.op_us), r.table()


def test_bench_on_the_m0_board_says_how_it_timed(models, capsys):
    d, _g = models
    port = runtime_board("m0").port
    assert main(["bench", str(d / "convnet.mpml"), "--runs", "10", "--no-layers", "--port", port]) == 0
    out = capsys.readouterr().out
    # The qemu boards have a clock (vboard's time module): timed on the board, at the emulator's speed.
    assert "time.ticks_us on the board" in out and "qemu virtual board" in out and "not a real chip's" in out
    assert "latency median" in out and "run() allocates 0 B" in out and "backend" in out


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_and_missing_model_are_clear_errors(kind, models, tmp_path, capsys):
    d, g = models
    port = runtime_board(kind).port
    (tmp_path / "short.csv").write_text(",".join(["0.1"] * 63) + "\n")
    assert main(["run", str(d / "mlp.mpml"), str(tmp_path / "short.csv"), "--port", port]) == 1
    assert "input 'x' takes 64 values [1, 64], got 63" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text(" ".join(["1"] * 64))
    assert main(["run", "no_such_model", str(tmp_path / "x.txt"), "--port", port]) == 1
    err = capsys.readouterr().err
    assert "no model 'no_such_model' on the board" in err and "mpml push-model" in err
    if kind == "m0":
        return  # the rest is the same code on every board; the m0's link is slow
    assert main(["run", str(d / "mlp.mpml"), str(tmp_path / "x.txt"), "--int8", "--host", "--port", port]) == 0
    out = capsys.readouterr().out
    assert "host reference: identical" in out and "top 3: class" in out
    with _open(kind) as b:
        with pytest.raises(RunError, match="outside int8"):
            run_samples(b, g, [300] * 64, int8=True)
        with pytest.raises(RunError, match="non-integers"):
            run_samples(b, g, [0.5] * 64, int8=True)
