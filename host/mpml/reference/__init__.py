"""The host reference: runs a `Graph` exactly as the board does, in numpy.

One function per op, each following docs/ops.md on the graph's stored
layouts (blocked offset-binary weights, folded biases, lookup tables, tree
records) and its int32 params, so the result is bit for bit what every
device backend computes, and what TFLM computes on an imported model. This is
the single place the host predicts a board's output from.

    run(graph, [x_int8, ...])         -> [y, ...]   int8 (int32 for TREE_ENSEMBLE)
    run_float(graph, [x_float, ...])  -> [y, ...]   float edges converted as TFLM does
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from mpml import ops
from mpml.graph import Graph, Op, unblock_weights

from . import fixedpoint as fp
from .fixedpoint import (
    MultiplyByQuantizedMultiplier, RoundingDivideByPOT, SaturatingRoundingDoublingHighMul,
    multiply_by_quantized_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
)

__all__ = [
    "ReferenceRunError", "run", "run_float", "quantize", "dequantize", "KERNELS",
    "SaturatingRoundingDoublingHighMul", "RoundingDivideByPOT", "MultiplyByQuantizedMultiplier",
]


class ReferenceRunError(ValueError):
    """A graph or input the reference cannot run, with the reason."""


_MBQM = multiply_by_quantized_multiplier


def _as_int8(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.int64).astype(np.int8)


def _clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.minimum(np.maximum(x, lo), hi)


def _c_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # C integer division: truncates toward zero.
    q = np.abs(num) // den
    return np.where(num < 0, -q, q)


# -- kernels: kernel(params, *input buffers) -> output buffer (flat) ---------------------------
#
# Inputs arrive as flat numpy arrays of the tensors' dtypes; constants are
# the stored tensor data (weights still blocked and offset binary).

def fully_connected(p: Sequence[int], x, weights, bias, mult, shift) -> np.ndarray:
    b, i, o, out_offset, act_min, act_max = p
    u = unblock_weights(weights, o, i).astype(np.int64) + ops.WEIGHT_OFFSET  # stored bytes
    xb = x.astype(np.int64).reshape(b, i)
    # Σ x*w = Σ x*u - 128 Σ x (docs/ops.md); int32 accumulator, wrapping as in C.
    acc = fp.wrap32(bias.astype(np.int64) + xb @ u.T - ops.WEIGHT_OFFSET * xb.sum(axis=1, keepdims=True))
    y = _MBQM(acc, mult.astype(np.int64), shift.astype(np.int64)) + out_offset
    return _as_int8(_clamp(y, act_min, act_max)).reshape(-1)


def _patches(x: np.ndarray, p: Sequence[int], in_zp: int) -> np.ndarray:
    """[b, oh, ow, kh, kw, c] input taps of every output position, `in_zp` at padded taps.

    Indexed rather than padded, so any padding (even a hostile negative one) means
    exactly what docs/ops.md says: a tap outside the input reads `in_zp`.
    """
    b, ih, iw, c, oh, ow, _oc, kh, kw, sh, sw, dh, dw, pt, pl = p[:15]
    x = x.astype(np.int64).reshape(b, ih, iw, c)
    iy = (np.arange(oh) * sh - pt)[:, None] + (np.arange(kh) * dh)[None, :]  # [oh, kh]
    ix = (np.arange(ow) * sw - pl)[:, None] + (np.arange(kw) * dw)[None, :]  # [ow, kw]
    rows = np.clip(iy, 0, ih - 1)[:, None, :, None]
    cols = np.clip(ix, 0, iw - 1)[None, :, None, :]
    valid = (((iy >= 0) & (iy < ih))[:, None, :, None] & ((ix >= 0) & (ix < iw))[None, :, None, :])
    return np.where(valid[None, :, :, :, :, None], x[:, rows, cols, :], in_zp)


def _int8_param(v: int) -> int:
    """An input zero point is an int8; the kernels read a hostile wider one by its low byte."""
    return ((int(v) & 0xFF) ^ 0x80) - 0x80


def conv_2d(p: Sequence[int], x, weights, bias, mult, shift) -> np.ndarray:
    b, _ih, _iw, c, oh, ow, oc, kh, kw = p[:9]
    in_zp, out_offset, act_min, act_max = p[15:19]
    in_zp = _int8_param(in_zp)
    cols = _patches(x, p, in_zp).reshape(b * oh * ow, kh * kw * c)  # im2col, taps in (fy, fx, c) order
    u = unblock_weights(weights, oc, kh * kw * c).astype(np.int64) + ops.WEIGHT_OFFSET
    acc = fp.wrap32(bias.astype(np.int64) + cols @ u.T - ops.WEIGHT_OFFSET * cols.sum(axis=1, keepdims=True))
    y = _MBQM(acc, mult.astype(np.int64), shift.astype(np.int64)) + out_offset
    return _as_int8(_clamp(y, act_min, act_max)).reshape(-1)


def depthwise_conv_2d(p: Sequence[int], x, weights, bias, mult, shift) -> np.ndarray:
    b, _ih, _iw, c, oh, ow, oc, kh, kw = p[:9]
    depth_mult, in_zp, out_offset, act_min, act_max = p[15:20]
    in_zp = _int8_param(in_zp)
    taps = _patches(x, p, in_zp)  # [b, oh, ow, kh, kw, c]
    taps = taps[..., np.arange(oc) // depth_mult]  # output channel o reads input channel o // depth_mult
    w = weights.astype(np.int64).reshape(kh, kw, oc)
    acc = fp.wrap32(bias.astype(np.int64) + np.einsum("bhwyxo,yxo->bhwo", taps, w))
    y = _MBQM(acc, mult.astype(np.int64), shift.astype(np.int64)) + out_offset
    return _as_int8(_clamp(y, act_min, act_max)).reshape(-1)


def _pool(p: Sequence[int], x, reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    b, ih, iw, c, oh, ow, fh, fw, sh, sw, pt, pl, act_min, act_max = p
    x = x.astype(np.int64).reshape(b, ih, iw, c)
    iy = (np.arange(oh) * sh - pt)[:, None] + np.arange(fh)[None, :]  # [oh, fh]
    ix = (np.arange(ow) * sw - pl)[:, None] + np.arange(fw)[None, :]
    vy = (iy >= 0) & (iy < ih)
    vx = (ix >= 0) & (ix < iw)
    win = x[:, np.clip(iy, 0, ih - 1)[:, None, :, None], np.clip(ix, 0, iw - 1)[None, :, None, :], :]
    valid = (vy[:, None, :, None] & vx[None, :, None, :])[None, :, :, :, :, None]  # [1, oh, ow, fh, fw, 1]
    y = reduce(win, valid)
    return _as_int8(_clamp(y, act_min, act_max)).reshape(-1)


def average_pool_2d(p: Sequence[int], x) -> np.ndarray:
    def avg(win: np.ndarray, valid: np.ndarray) -> np.ndarray:
        s = np.where(valid, win, 0).sum(axis=(3, 4))
        n = np.broadcast_to(valid, win.shape).sum(axis=(3, 4))
        s = fp.wrap32(s)
        half = n // 2
        safe = np.maximum(n, 1)  # a window wholly in the padding averages to 0
        return np.where(n == 0, 0, np.where(s > 0, _c_div(s + half, safe), _c_div(s - half, safe)))
    return _pool(p, x, avg)


def max_pool_2d(p: Sequence[int], x) -> np.ndarray:
    return _pool(p, x, lambda win, valid: np.where(valid, win, -128).max(axis=(3, 4)))


def add(p: Sequence[int], x1, x2) -> np.ndarray:
    (_n, in1_offset, in2_offset, left_shift, m1, s1, m2, s2, mo, so, out_offset, act_min, act_max) = p
    left_shift = min(max(left_shift, 0), 31)
    a = fp.wrap32((x1.astype(np.int64) + in1_offset) << left_shift)
    b = fp.wrap32((x2.astype(np.int64) + in2_offset) << left_shift)
    s = fp.wrap32(_MBQM(a, m1, s1) + _MBQM(b, m2, s2))
    y = _MBQM(s, mo, so) + out_offset
    return _as_int8(_clamp(y, act_min, act_max))


def reshape(p: Sequence[int], x) -> np.ndarray:
    return np.array(x[:p[0]], copy=True)


def softmax(p: Sequence[int], x, exp_sum_table, exp_table) -> np.ndarray:
    outer, depth = p
    x = x.astype(np.int64).reshape(outer, depth)
    d = x.max(axis=1, keepdims=True) - x  # 0 .. 255
    sums = fp.wrap32(exp_sum_table.astype(np.int64)[d].sum(axis=1))
    out = np.empty((outer, depth), np.int64)
    for r in range(outer):
        scale, bits = fp.get_reciprocal(int(sums[r]), 12)
        prod = saturating_rounding_doubling_high_mul(scale, exp_table.astype(np.int64)[d[r]])
        out[r] = rounding_divide_by_pot(prod, min(max(bits + 31 - 8, 0), 31)) - 128
    return _as_int8(_clamp(out, -128, 127)).reshape(-1)


def lookup(p: Sequence[int], x, table) -> np.ndarray:
    return table.astype(np.int8)[x[:p[0]].astype(np.int64) + 128]


def requantize(p: Sequence[int], x) -> np.ndarray:
    _n, in_zp, out_zp, mult, shift = p
    y = _MBQM(fp.wrap32(x.astype(np.int64) - in_zp), mult, shift) + out_zp
    return _as_int8(_clamp(y, -128, 127))


_NODE = np.dtype([("threshold", "<i2"), ("feature", "<u2"), ("left", "<u2"), ("right", "<u2")])


def tree_ensemble(p: Sequence[int], x, nodes, roots, leaves) -> np.ndarray:
    n_trees, n_features, n_outputs, n_nodes, n_leaves, in_bytes = p
    feats = np.frombuffer(np.ascontiguousarray(x).tobytes(), dtype="<i1" if in_bytes == 1 else "<i2")
    rec = np.frombuffer(np.ascontiguousarray(nodes).tobytes(), dtype=_NODE)
    root = np.frombuffer(np.ascontiguousarray(roots).tobytes(), dtype="<u2")
    leaf = np.frombuffer(np.ascontiguousarray(leaves).tobytes(), dtype="<i2").reshape(n_leaves, n_outputs)
    flag = ops.TREE_LEAF_FLAG
    out = np.zeros(n_outputs, np.int64)
    for t in range(n_trees):
        node = int(root[t])
        if node & flag:  # a tree that is a single leaf
            k = node & ~flag
            if k >= n_leaves:
                raise ReferenceRunError(f"TREE_ENSEMBLE: leaf index {k} out of range")
            out += leaf[k]
            continue
        steps = 0
        while True:
            if node >= n_nodes:
                raise ReferenceRunError(f"TREE_ENSEMBLE: node index {node} out of range")
            steps += 1
            if steps > n_nodes:
                raise ReferenceRunError("TREE_ENSEMBLE: walk longer than n_nodes (a cycle)")
            r = rec[node]
            f = int(r["feature"])
            if f >= n_features:
                raise ReferenceRunError(f"TREE_ENSEMBLE: feature index {f} out of range")
            child = int(r["left"] if feats[f] <= r["threshold"] else r["right"])
            if child & flag:
                k = child & ~flag
                if k >= n_leaves:
                    raise ReferenceRunError(f"TREE_ENSEMBLE: leaf index {k} out of range")
                out += leaf[k]
                break
            node = child
    return fp.wrap32(out).astype(np.int32)


KERNELS: dict[int, Callable[..., np.ndarray]] = {
    ops.FULLY_CONNECTED: fully_connected,
    ops.CONV_2D: conv_2d,
    ops.DEPTHWISE_CONV_2D: depthwise_conv_2d,
    ops.AVERAGE_POOL_2D: average_pool_2d,
    ops.MAX_POOL_2D: max_pool_2d,
    ops.ADD: add,
    ops.RESHAPE: reshape,
    ops.SOFTMAX: softmax,
    ops.LOGISTIC: lookup,
    ops.TANH: lookup,
    ops.REQUANTIZE: requantize,
    ops.TREE_ENSEMBLE: tree_ensemble,
}


# -- running a graph ----------------------------------------------------------------------------

def _check_input(graph: Graph, k: int, x) -> np.ndarray:
    t = graph.tensors[graph.inputs[k].tensor]
    arr = np.asarray(x)
    if arr.size != t.size:
        raise ReferenceRunError(f"input {k} ({t.name!r}): {arr.size} values, the model takes {t.size} {t.shape}")
    want = np.dtype(t.dtype)
    if arr.dtype != want:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ReferenceRunError(f"input {k} ({t.name!r}): {arr.dtype} values, the model takes {t.dtype} "
                                 "(use run_float for float inputs)")
        info = np.iinfo(want)
        if arr.min(initial=0) < info.min or arr.max(initial=0) > info.max:
            raise ReferenceRunError(f"input {k} ({t.name!r}): values outside {t.dtype}")
        arr = arr.astype(want)
    return arr.reshape(-1)


def _run_op(graph: Graph, op: Op, values: dict[int, np.ndarray]) -> None:
    kernel = KERNELS.get(op.code)
    if kernel is None:
        raise ReferenceRunError(f"no reference kernel for {op.name}")
    sizes = ops.slot_sizes(op.code, op.params)
    args = []
    for slot, t in enumerate(op.inputs):
        tensor = graph.tensors[t]
        if tensor.is_const:
            arr = np.asarray(tensor.data).reshape(-1)
        elif t in values:
            arr = values[t]
        else:
            raise ReferenceRunError(f"op {op.name} reads tensor {tensor.name!r} before anything wrote it")
        if arr.nbytes != sizes[slot]:
            raise ReferenceRunError(f"op {op.name}: tensor {tensor.name!r} has {arr.nbytes} bytes, params need {sizes[slot]}")
        args.append(arr)
    out = kernel(list(op.params), *args)
    t_out = graph.tensors[op.outputs[0]]
    values[op.outputs[0]] = np.asarray(out).astype(t_out.dtype).reshape(-1)


def run(graph: Graph, inputs: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Run the graph on quantized inputs (int8, or the input tensor's dtype).

    `inputs`: one array per model input (a bare array for a one-input model).
    Returns one array per model output, shaped like the output tensor, in its
    dtype (int8, or int32 for TREE_ENSEMBLE): exactly what the board computes.
    """
    if isinstance(inputs, np.ndarray) and len(graph.inputs) == 1:
        inputs = [inputs]
    if len(inputs) != len(graph.inputs):
        raise ReferenceRunError(f"the model takes {len(graph.inputs)} inputs, got {len(inputs)}")
    values: dict[int, np.ndarray] = {}
    for k, (edge, x) in enumerate(zip(graph.inputs, inputs)):
        values[edge.tensor] = _check_input(graph, k, x)
    for op in graph.ops:
        _run_op(graph, op, values)
    outs = []
    for edge in graph.outputs:
        t = graph.tensors[edge.tensor]
        if edge.tensor not in values:
            raise ReferenceRunError(f"output {t.name!r} is never written")
        outs.append(values[edge.tensor].reshape(t.shape).copy())
    return outs


def quantize(x, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """TFLM's float -> int quantization: clamp(round(float32(x / scale)) + zp), halves away from zero."""
    q = (np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64)  # float32 division, as TFLM
    # std::round: |q| + 0.5 is exact in float64 for a float32 q, so this rounds halves away from zero.
    r = np.copysign(np.floor(np.abs(q) + 0.5), q)
    info = np.iinfo(dtype)
    # Clamp before the integer conversion (TFLM's cast of huge values is undefined).
    r = np.clip(np.nan_to_num(r, nan=0.0), info.min - zero_point - 1, info.max - zero_point + 1)
    return np.clip(r.astype(np.int64) + int(zero_point), info.min, info.max).astype(dtype)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """TFLM's int -> float dequantization: float32(scale * (q - zp))."""
    return (np.float32(scale) * (np.asarray(q, dtype=np.int64) - int(zero_point)).astype(np.float32)).astype(np.float32)


def run_float(graph: Graph, inputs: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Run the graph as `Model.predict` does: float edges converted with TFLM's QUANTIZE/DEQUANTIZE.

    Inputs whose edge has `float_io` are float and quantized with the input
    tensor's scale and zero point; others are passed as integers. Outputs with
    `float_io` are dequantized to float32; others are returned as integers.
    """
    if isinstance(inputs, np.ndarray) and len(graph.inputs) == 1:
        inputs = [inputs]
    if len(inputs) != len(graph.inputs):
        raise ReferenceRunError(f"the model takes {len(graph.inputs)} inputs, got {len(inputs)}")
    qin = []
    for edge, x in zip(graph.inputs, inputs):
        t = graph.tensors[edge.tensor]
        qin.append(quantize(x, t.scale, t.zero_point, t.dtype) if edge.float_io else x)
    outs = run(graph, qin)
    result = []
    for edge, y in zip(graph.outputs, outs):
        t = graph.tensors[edge.tensor]
        result.append(dequantize(y, t.scale, t.zero_point).reshape(y.shape) if edge.float_io else y)
    return result
