"""The host reference's arithmetic: rounding steps, TREE_ENSEMBLE, input checks.

The op kernels are checked against TFLM in test_tflite_import.py; here the
vectorised rounding helpers are checked against a plain scalar transcription
of docs/ops.md, and TREE_ENSEMBLE (not a TFLite op) against a recursive walk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpml import ops
from mpml.graph import Edge, Graph, Op, Tensor
from mpml.reference import ReferenceRunError, quantize, dequantize, run
from mpml.reference import fixedpoint as fp
from mpml.reference import tflm

I32 = st.integers(-(1 << 31), (1 << 31) - 1)
DETERMINISTIC = settings(derandomize=True, max_examples=300, deadline=None)


# Scalar transcriptions of docs/ops.md, with Python's unbounded ints.

def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _c_div(ab + nudge, 1 << 31)


def rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    shifted = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)
    return rdbpot(srdhm(shifted, m), right)


@DETERMINISTIC
@given(I32, I32)
def test_saturating_rounding_doubling_high_mul(a: int, b: int) -> None:
    assert int(fp.SaturatingRoundingDoublingHighMul(a, b)) == srdhm(a, b)


def test_srdhm_saturates_and_rounds_halves_up() -> None:
    assert int(fp.SaturatingRoundingDoublingHighMul(-(1 << 31), -(1 << 31))) == (1 << 31) - 1
    assert int(fp.SaturatingRoundingDoublingHighMul(1, 1 << 30)) == 1  # 0.5 -> 1
    assert int(fp.SaturatingRoundingDoublingHighMul(-1, 1 << 30)) == 0  # -0.5 -> 0: the nudge is 1 - 2^30
    assert int(fp.SaturatingRoundingDoublingHighMul(-3, 1 << 30)) == -1  # -1.5 -> -1


@DETERMINISTIC
@given(I32, st.integers(0, 31))
def test_rounding_divide_by_pot(x: int, e: int) -> None:
    assert int(fp.RoundingDivideByPOT(x, e)) == rdbpot(x, e)


@DETERMINISTIC
@given(st.integers(-(1 << 20), 1 << 20), st.integers(1 << 30, (1 << 31) - 1), st.integers(-31, 8))
def test_multiply_by_quantized_multiplier(x: int, m: int, shift: int) -> None:
    assert int(fp.MultiplyByQuantizedMultiplier(x, m, shift)) == mbqm(x, m, shift)


def test_helpers_are_vectorised_per_channel() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 24), 1 << 24, size=(5, 7))
    m = rng.integers(1 << 30, (1 << 31) - 1, size=7)
    s = rng.integers(-12, 3, size=7)
    got = fp.MultiplyByQuantizedMultiplier(x, m, s)
    want = [[mbqm(int(x[i, j]), int(m[j]), int(s[j])) for j in range(7)] for i in range(5)]
    assert got.tolist() == want


def test_quantize_multiplier_as_tflm() -> None:
    assert tflm.quantize_multiplier(0.0) == (0, 0)
    assert tflm.quantize_multiplier(0.5) == (1 << 30, 0)
    assert tflm.quantize_multiplier(1.0) == (1 << 30, 1)
    assert tflm.quantize_multiplier(2.0 ** -40) == (0, 0)  # flushed, as TFLM
    # Rounding up to 2^31 renormalises.
    assert tflm.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    m, s = tflm.quantize_multiplier(0.1)
    assert s == -3 and m == round(0.8 * (1 << 31))


def test_activation_ranges_as_tflm() -> None:
    assert tflm.activation_range("NONE", 0.1, 3) == (-128, 127)
    assert tflm.activation_range("RELU", 0.1, -20) == (-20, 127)
    assert tflm.activation_range("RELU6", 0.05, -128) == (-128, -8)
    assert tflm.activation_range("RELU_N1_TO_1", 0.001, 0) == (-128, 127)


def test_float_edges_round_halves_away_and_clamp() -> None:
    assert quantize([0.5, -0.5, 1.5, -1.5, 1e9, -1e9, np.nan], 1.0, 0).tolist() == [1, -1, 2, -2, 127, -128, 0]
    # float32(0.25) / float32(0.1) rounds to 2.5 in float32; halves go away from zero: 3, then + zp
    assert quantize([0.25], 0.1, -1).tolist() == [2]
    assert dequantize(np.array([-128, 0, 127], np.int8), 0.5, 10).tolist() == [-69.0, -5.0, 58.5]


def test_softmax_table_shape_and_zero_tail() -> None:
    exp_sum, exp = tflm.softmax_tables(1.0, 0.5)
    assert exp[0] == (1 << 31) - 1 and exp_sum[0] == 1 << 19  # exp(0) = 1
    assert (np.diff(exp.astype(np.int64)) <= 0).all()
    assert exp[-1] == 0 and exp_sum[-1] == 0  # beyond diff_min


# -- TREE_ENSEMBLE ---------------------------------------------------------------------------------

def _random_forest(rng, n_trees: int, n_features: int, n_outputs: int, in_bytes: int):
    nodes, roots, leaves = [], [], []

    def grow(depth: int) -> int:
        if depth == 0 or rng.random() < 0.25:
            leaves.append(rng.integers(-1000, 1000, size=n_outputs))
            return ops.TREE_LEAF_FLAG | (len(leaves) - 1)
        k = len(nodes)
        lim = 127 if in_bytes == 1 else 30000
        nodes.append([int(rng.integers(-lim, lim)), int(rng.integers(0, n_features)), 0, 0])
        nodes[k][2] = grow(depth - 1)
        nodes[k][3] = grow(depth - 1)
        return k

    for _ in range(n_trees):
        while True:
            root = grow(int(rng.integers(1, 6)))
            if not root & ops.TREE_LEAF_FLAG:
                break
        roots.append(root)
    return nodes, roots, np.array(leaves, np.int16)


def _walk(nodes, node: int, x) -> int:
    threshold, feature, left, right = nodes[node]
    child = left if x[feature] <= threshold else right
    return child if child & ops.TREE_LEAF_FLAG else _walk(nodes, child, x)


def _tree_graph(nodes, roots, leaves, n_features: int, in_bytes: int) -> Graph:
    n_leaves, n_outputs = leaves.shape
    rec = np.array([tuple(n) for n in nodes], dtype=[("t", "<i2"), ("f", "<u2"), ("l", "<u2"), ("r", "<u2")])
    tensors = [
        Tensor("x", "int8" if in_bytes == 1 else "int16", (n_features,)),
        Tensor("nodes", "uint8", (len(nodes) * ops.TREE_NODE_BYTES,), data=np.frombuffer(rec.tobytes(), np.uint8)),
        Tensor("roots", "uint16", (len(roots),), data=np.array(roots, np.uint16)),
        Tensor("leaves", "int16", leaves.shape, data=leaves),
        Tensor("y", "int32", (n_outputs,)),
    ]
    op = Op(ops.TREE_ENSEMBLE, [0, 1, 2, 3], [4], [len(roots), n_features, n_outputs, len(nodes), n_leaves, in_bytes])
    graph = Graph("forest", tensors, [op], [Edge(0, float_io=False)], [Edge(4, float_io=False)])
    graph.validate()
    return graph


@pytest.mark.parametrize("in_bytes", [1, 2])
def test_tree_ensemble_equals_a_recursive_walk(in_bytes: int) -> None:
    rng = np.random.default_rng(in_bytes)
    for _ in range(20):
        n_features, n_outputs = int(rng.integers(1, 10)), int(rng.integers(1, 4))
        nodes, roots, leaves = _random_forest(rng, int(rng.integers(1, 8)), n_features, n_outputs, in_bytes)
        graph = _tree_graph(nodes, roots, leaves, n_features, in_bytes)
        for _ in range(10):
            lim = 128 if in_bytes == 1 else 32768
            x = rng.integers(-lim, lim, size=n_features).astype("int8" if in_bytes == 1 else "int16")
            want = sum(leaves[_walk(nodes, r, x) & ~ops.TREE_LEAF_FLAG].astype(np.int64) for r in roots)
            (got,) = run(graph, [x])
            assert got.dtype == np.int32 and got.tolist() == list(want)


def test_tree_ensemble_refuses_a_cycle() -> None:
    nodes = [[0, 0, 1, 1], [0, 0, 0, 0]]  # 0 -> 1 -> 0 ...
    graph = _tree_graph(nodes, [0], np.zeros((1, 1), np.int16), 1, 1)
    with pytest.raises(ReferenceRunError, match="cycle"):
        run(graph, [np.zeros(1, np.int8)])


# -- inputs ----------------------------------------------------------------------------------------

def test_run_checks_inputs() -> None:
    graph = Graph("r", [Tensor("a", "int8", (2, 3)), Tensor("b", "int8", (6,))], [Op(ops.RESHAPE, [0], [1], [6])],
                  [Edge(0, float_io=False)], [Edge(1, float_io=False)])
    (y,) = run(graph, [np.arange(6).reshape(2, 3)])
    assert y.dtype == np.int8 and y.shape == (6,) and y.tolist() == list(range(6))
    with pytest.raises(ReferenceRunError, match="5 values"):
        run(graph, [np.zeros(5, np.int8)])
    with pytest.raises(ReferenceRunError, match="outside int8"):
        run(graph, [np.full(6, 300)])
    with pytest.raises(ReferenceRunError, match="run_float"):
        run(graph, [np.zeros(6, np.float32)])


def test_average_pool_rounds_halves_away_from_zero() -> None:
    # One 1x2 window: (1 + 2) / 2 = 1.5 -> 2 and (-1 - 2) / 2 = -1.5 -> -2 (TFLM's rounding).
    p = [1, 1, 2, 2, 1, 1, 1, 2, 1, 2, 0, 0, -128, 127]
    graph = Graph("p", [Tensor("x", "int8", (1, 1, 2, 2)), Tensor("y", "int8", (1, 1, 1, 2))],
                  [Op(ops.AVERAGE_POOL_2D, [0], [1], p)], [Edge(0, float_io=False)], [Edge(1, float_io=False)])
    (y,) = run(graph, [np.array([1, -1, 2, -2], np.int8)])
    assert y.reshape(-1).tolist() == [2, -2]


# -- values no host writes --------------------------------------------------------------------------

def _typed_slots(code: int, p: list[int], bufs: list[bytes]) -> list[np.ndarray]:
    """A kernel case's raw input buffers as the reference's typed arrays."""
    i32 = "<i4"
    kinds = {
        ops.FULLY_CONNECTED: ["i1", "u1", i32, i32, i32],
        ops.CONV_2D: ["i1", "u1", i32, i32, i32],
        ops.DEPTHWISE_CONV_2D: ["i1", "i1", i32, i32, i32],
        ops.SOFTMAX: ["i1", i32, i32],
        ops.LOGISTIC: ["i1", "i1"],
        ops.TANH: ["i1", "i1"],
        ops.ADD: ["i1", "i1"],
    }.get(code, ["i1"])
    if code == ops.TREE_ENSEMBLE:
        kinds = ["i1" if p[5] == 1 else "<i2", "u1", "<u2", "<i2"]
    return [np.frombuffer(b, dtype=k) for b, k in zip(bufs, kinds)]


def test_reference_equals_the_device_kernels_on_hostile_params():
    """Shifts beyond ±31, huge zero points, all-padding windows, one-leaf trees, cycles:
    the reference makes the same choices as _pure.py (and so the C and viper kernels)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "kernels"))
    import cases  # tests/kernels/cases.py: the kernels' own seeded cases, hostile ones included
    from mpml.shared import device_module

    pure = device_module("_pure")
    from mpml import reference

    checked = 0
    for c in cases.all_cases(seed=11, per_op=12):
        code, _fname, p, bufs = c
        want = cases.expected(pure, c)
        try:
            out = reference.KERNELS[code](list(p), *_typed_slots(code, p, bufs[:-1]))
            got = np.asarray(out).astype("<i4" if code == ops.TREE_ENSEMBLE else "i1").tobytes().hex()
        except ValueError:
            got = "E"
        assert (got == "E") == want.startswith("E:"), (ops.name(code), p, want, got)
        if got != "E":
            assert got == want, (ops.name(code), p)
        checked += 1
    assert checked > 100
