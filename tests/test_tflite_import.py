"""Imported TFLite models compute exactly what the TFLM interpreter computes.

Random int8 models of every op (shapes, strides, SAME/VALID padding,
dilations, depth multipliers, per-channel scales, zero points, fused
activations) and small multi-op models are generated from fixed seeds, run in
TFLM (the oracle) and through the importer in the host reference; the int8
outputs must be identical, and float-edge models identical in float32.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="the tflite-micro package (the TFLM interpreter) is not installed")

from mpml import ops  # noqa: E402
from mpml.blob import read_blob, write_blob  # noqa: E402
from mpml.importers.tflite import TFLiteImportError, import_tflite  # noqa: E402
from mpml.reference import run, run_float  # noqa: E402
from mpml.testing import tflite_models as tm  # noqa: E402

OP = tm.OP
SEEDS = range(12)


def _inputs(graph, rng, float_io: bool, full_range: bool = False) -> list[np.ndarray]:
    xs = []
    for edge in graph.inputs:
        t = graph.tensors[edge.tensor]
        if full_range:  # every int8 value once
            xs.append(np.arange(-128, 128, dtype=np.int8).reshape(t.shape))
        elif float_io:
            # Wide enough that some values clamp at the int8 limits.
            xs.append((rng.normal(size=t.shape) * 70 * t.scale + rng.normal() * t.scale * 20).astype(np.float32))
        else:
            xs.append(rng.integers(-128, 128, size=t.shape).astype(np.int8))
    return xs


def _same_as_tflm(model: bytes, rng, float_io: bool = False, full_range: bool = False, name: str = "m") -> None:
    graph = import_tflite(model, name)
    xs = _inputs(graph, rng, float_io, full_range)
    want = tm.run_tflm(model, xs)
    got = (run_float if float_io else run)(graph, xs)
    assert len(want) == len(got)
    for k, (w, g) in enumerate(zip(want, got)):
        assert w.dtype == g.dtype, f"output {k}: TFLM gives {w.dtype}, reference {g.dtype}"
        diff = np.flatnonzero(w.reshape(-1) != g.reshape(-1))
        assert diff.size == 0, (f"{name} output {k}: {diff.size} of {w.size} values differ from TFLM, first at "
                                f"{diff[0]}: TFLM {w.reshape(-1)[diff[0]]}, reference {g.reshape(-1)[diff[0]]}; "
                                f"ops {[op.name for op in graph.ops]}")


@pytest.mark.parametrize("kind", tm.RANDOM_MODELS)
def test_every_op_matches_tflm(kind: str) -> None:
    for seed in SEEDS:
        rng = np.random.default_rng([seed, tm.RANDOM_MODELS.index(kind)])
        model = tm.random_model(kind, rng)
        for _ in range(2):
            _same_as_tflm(model, rng, full_range=kind in ("LOGISTIC", "TANH"), name=f"{kind} seed {seed}")


@pytest.mark.parametrize("kind", ["FULLY_CONNECTED", "CONV_2D", "SOFTMAX", "LOGISTIC"])
def test_float_edges_match_tflm_in_float32(kind: str) -> None:
    for seed in range(6):
        rng = np.random.default_rng([seed, 100])
        model = tm.random_model(kind, rng, float_io=True)
        graph = import_tflite(model)
        assert all(e.float_io for e in graph.inputs + graph.outputs)
        _same_as_tflm(model, rng, float_io=True, name=f"{kind} float seed {seed}")


@pytest.mark.parametrize("seed", range(8))
def test_multi_op_models_match_tflm(seed: int) -> None:
    rng = np.random.default_rng([seed, 200])
    _same_as_tflm(tm.random_chain(rng), rng, name=f"chain {seed}")
    _same_as_tflm(tm.random_residual(rng), rng, name=f"residual {seed}")
    _same_as_tflm(tm.random_chain(rng, float_io=True), rng, float_io=True, name=f"float chain {seed}")


@pytest.mark.parametrize("make", [tm.cnn_1d, tm.cnn_2d, tm.mlp])
def test_representative_models_match_tflm(make) -> None:
    rng = np.random.default_rng(7)
    _same_as_tflm(make(), rng, float_io=True, name=make.__name__)


def test_blob_round_trip_runs_the_same() -> None:
    rng = np.random.default_rng(300)
    model = tm.random_chain(rng, float_io=True)
    graph = import_tflite(model, "chain")
    blob = read_blob(write_blob(graph))
    xs = _inputs(graph, rng, float_io=True)
    for a, b in zip(run_float(graph, xs), run_float(blob.graph, xs)):
        assert np.array_equal(a, b)
    assert [e.float_io for e in blob.graph.inputs + blob.graph.outputs] == [True, True]


def test_imported_layouts_follow_the_blob_format() -> None:
    graph = import_tflite(tm.cnn_2d(), "cnn")
    from mpml import blobfmt
    for op in graph.ops:
        if op.code in (ops.FULLY_CONNECTED, ops.CONV_2D):
            w, b = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            assert w.dtype == "uint8" and w.flags == blobfmt.TF_OFFSET_BINARY | blobfmt.TF_BLOCKED
            assert b.flags == blobfmt.TF_BIAS_FOLDED
        if op.code == ops.DEPTHWISE_CONV_2D:
            assert graph.tensors[op.inputs[1]].dtype == "int8"


# -- refusals ------------------------------------------------------------------------------------

def _unsupported_model() -> bytes:
    """A model with four different problems: a MUL, a float FC, an int16 tensor and a broadcasting ADD."""
    rng = np.random.default_rng(0)
    net = tm.Net(rng)
    m = net.m
    x = net.input((1, 4))
    y = net.activation((1, 4))
    m.op(OP.MUL, [x.index, x.index], [y.index], ("MulOptions", {}))
    f_in = m.tensor("float_in", (1, 4), "float32")
    f_w = m.tensor("float_w", (3, 4), "float32", data=np.ones((3, 4), np.float32))
    f_out = m.tensor("float_out", (1, 3), "float32")
    m.inputs.append(f_in)
    m.op(OP.FULLY_CONNECTED, [f_in, f_w, -1], [f_out], ("FullyConnectedOptions", {}))
    m.outputs.append(f_out)
    s16 = m.tensor("wide", (1, 4), "int16", scale=0.01, zero_point=0)
    m.op(OP.QUANTIZE, [y.index], [s16])
    m.outputs.append(s16)
    a = net.activation((1, 4))
    b = net.activation((1, 1))
    m.inputs += [a.index, b.index]
    z = net.activation((1, 4))
    m.op(OP.ADD, [a.index, b.index], [z.index], ("AddOptions", {}))
    m.outputs.append(z.index)
    net.output(y)
    return m.build()


def test_refusal_lists_every_problem_with_its_place() -> None:
    with pytest.raises(TFLiteImportError) as info:
        import_tflite(_unsupported_model(), "bad", source="bad.tflite")
    message = str(info.value)
    assert message.startswith("cannot import bad.tflite:")
    assert "op 0 MUL: op MUL is not supported" in message
    assert "op 1 FULLY_CONNECTED" in message and "float32" in message and "not fully int8-quantized" in message
    assert "op 2 QUANTIZE" in message and "int16" in message and "'wide'" in message
    assert "op 3 ADD: broadcasting ADD" in message
    assert "model input tensor" in message and "'float_in'" in message
    assert len(info.value.problems) >= 5


def test_refuses_a_file_that_is_not_tflite() -> None:
    with pytest.raises(TFLiteImportError, match="not a TFLite flatbuffer"):
        import_tflite(b"\0" * 64)


def test_refuses_tanh_fused_activation() -> None:
    net = tm.Net(np.random.default_rng(1))
    x = net.input((1, 8))
    y = net.fully_connected(x, 4)
    net.m.ops[-1].options[1]["FusedActivationFunction"] = 4  # TANH
    net.output(y)
    with pytest.raises(TFLiteImportError, match="op 0 FULLY_CONNECTED: fused activation TANH is not supported"):
        import_tflite(net.build())


# -- the command -----------------------------------------------------------------------------------

def test_mpml_import_command(tmp_path) -> None:
    src = tmp_path / "gesture.tflite"
    model = tm.cnn_1d(seed=3)
    src.write_bytes(model)
    labels = tmp_path / "labels.txt"
    labels.write_text("idle\nwave\ncircle\nshake\ntap\nflip\n")
    out = tmp_path / "gesture.mpml"
    r = subprocess.run([sys.executable, "-m", "mpml", "import", str(src), "-o", str(out), "--labels", str(labels)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(out) in r.stdout and "CONV_2D" in r.stdout
    blob = read_blob(out.read_bytes())
    assert blob.graph.name == "gesture"
    assert blob.graph.outputs[0].labels == ["idle", "wave", "circle", "shake", "tap", "flip"]
    rng = np.random.default_rng(4)
    xs = _inputs(blob.graph, rng, float_io=True)
    assert np.array_equal(tm.run_tflm(model, xs)[0], run_float(blob.graph, xs)[0])

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_unsupported_model())
    r = subprocess.run([sys.executable, "-m", "mpml", "import", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "cannot import" in r.stderr and "op 0 MUL" in r.stderr and "op 3 ADD" in r.stderr
    assert not (tmp_path / "bad.mpml").exists()


def test_refuses_params_beyond_mpml_limits() -> None:
    net = tm.Net(np.random.default_rng(2))
    x = net.input((1, ops.MAX_DIM + 1))
    net.output(net.fully_connected(x, 2))
    with pytest.raises(TFLiteImportError, match="op 0 FULLY_CONNECTED: param 1 out of range"):
        import_tflite(net.build())
