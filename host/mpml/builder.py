"""Building a `Graph` op by op, with the int32 params TFLM's `Prepare` would derive.

Shared by everything that makes graphs from quantized layers: the TFLite
importer (`mpml.importers.tflite`) and the post-training quantizer
(`mpml.quantize`). Each method takes int8 weights and float scales already
decided by its caller and produces what the board runs: multipliers and
shifts (`mpml.reference.tflm`), activation ranges, stored weight layouts
(offset binary, blocked) and folded biases (docs/ops.md, docs/blob-format.md).
So an imported model and a quantized one of the same layers are the same
graph, byte for byte.
"""

from __future__ import annotations

import numpy as np

from mpml import blobfmt, ops
from mpml.graph import Edge, Graph, Op, Tensor, block_weights, fold_bias
from mpml.reference import tflm

__all__ = ["GraphBuilder", "conv_geometry", "WEIGHT_FLAGS"]

WEIGHT_FLAGS = blobfmt.TF_OFFSET_BINARY | blobfmt.TF_BLOCKED


def conv_geometry(batches: int, in_h: int, in_w: int, in_c: int, out_c: int, k_h: int, k_w: int,
                  stride_h: int, stride_w: int, dil_h: int, dil_w: int, padding: str) -> dict[str, int]:
    """CONV_2D / DEPTHWISE_CONV_2D / pool geometry as TFLM computes it (out sizes, leading padding)."""
    padding = padding.upper()
    oh = tflm.compute_out_size(padding, in_h, k_h, stride_h, dil_h)
    ow = tflm.compute_out_size(padding, in_w, k_w, stride_w, dil_w)
    return dict(batches=batches, in_h=in_h, in_w=in_w, in_c=in_c, out_h=oh, out_w=ow, out_c=out_c,
                k_h=k_h, k_w=k_w, stride_h=stride_h, stride_w=stride_w, dil_h=dil_h, dil_w=dil_w,
                pad_top=tflm.compute_padding(stride_h, dil_h, in_h, k_h, oh),
                pad_left=tflm.compute_padding(stride_w, dil_w, in_w, k_w, ow))


class GraphBuilder:
    """Appends tensors and ops to `self.graph`; every op's params are checked against ops.slot_sizes."""

    def __init__(self, name: str, graph: Graph | None = None) -> None:
        self.graph = graph if graph is not None else Graph(name, [], [], [], [])

    # -- tensors --------------------------------------------------------------------------------

    def activation(self, name: str, shape, scale: float, zero_point: int, data: np.ndarray | None = None) -> int:
        """An int8 activation tensor (or an int8 constant when `data` is given)."""
        return self.graph.add_tensor(Tensor(name, "int8", tuple(shape) or (1,), data=data,
                                            scale=float(scale), zero_point=int(zero_point)))

    def const(self, name: str, dtype: str, shape, data: np.ndarray, flags: int = 0) -> int:
        return self.graph.add_tensor(Tensor(name, dtype, tuple(shape), data=data, flags=flags))

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def add_input(self, tensor: int, name: str = "", float_io: bool = True) -> None:
        self.graph.inputs.append(Edge(tensor, name, float_io=float_io))

    def add_output(self, tensor: int, name: str = "", labels=(), float_io: bool = True) -> None:
        self.graph.outputs.append(Edge(tensor, name, labels=list(labels), float_io=float_io))

    # -- ops ------------------------------------------------------------------------------------

    def emit(self, code: int, inputs: list[int], outputs: list[int], params: dict[str, int]) -> Op:
        """Append an op; ValueError if its params are beyond what mpml's kernels take."""
        names = ops.OPS[code][3]
        values = [int(params[n]) for n in names]
        try:
            ops.slot_sizes(code, values)  # mpml's own limits, e.g. dimensions up to ops.MAX_DIM
        except ValueError as e:
            raise ValueError(f"{e} (params {dict(zip(names, values))}): beyond what mpml's kernels take") from None
        op = Op(code, inputs, outputs, values)
        self.graph.ops.append(op)
        return op

    def _requant(self, base: str, mult: np.ndarray, shift: np.ndarray) -> list[int]:
        n = len(mult)
        return [self.const(f"{base}/mult", "int32", (n,), mult), self.const(f"{base}/shift", "int32", (n,), shift)]

    def fully_connected(self, x: int, y: int, w: np.ndarray, bias: np.ndarray | None, w_scales,
                        act_min: int, act_max: int) -> Op:
        """FULLY_CONNECTED: `w` int8 [out, in], `bias` int32 [out] or None, one scale (per tensor) or one per output."""
        xt, yt = self.tensor(x), self.tensor(y)
        w = np.asarray(w, np.int32)
        out_d, in_d = w.shape
        scales = np.asarray(w_scales, np.float32).reshape(-1)
        if scales.size > 1:
            mult, shift = tflm.conv_multipliers(xt.scale, scales, yt.scale, out_d)
        else:
            m, s = tflm.fc_per_tensor_multiplier(xt.scale, float(scales[0]), yt.scale)
            mult, shift = np.full(out_d, m, np.int32), np.full(out_d, s, np.int32)
        if xt.size % in_d:
            raise ValueError(f"input {xt.name!r} of {xt.size} values is not a whole number of rows of {in_d}")
        base = yt.name
        tensors = [
            x,
            self.const(f"{base}/weights", "uint8", (out_d, in_d), block_weights(w), WEIGHT_FLAGS),
            self.const(f"{base}/bias", "int32", (out_d,), fold_bias(bias, w, xt.zero_point), blobfmt.TF_BIAS_FOLDED),
            *self._requant(base, mult, shift),
        ]
        return self.emit(ops.FULLY_CONNECTED, tensors, [y],
                         dict(batches=xt.size // in_d, in_depth=in_d, out_depth=out_d, out_offset=yt.zero_point,
                              act_min=act_min, act_max=act_max))

    def conv_2d(self, x: int, y: int, w: np.ndarray, bias: np.ndarray | None, w_scales, geo: dict[str, int],
                act_min: int, act_max: int) -> Op:
        """CONV_2D: `w` int8 [out_c, k_h, k_w, in_c], per-channel (or one) scales, `geo` from conv_geometry."""
        xt, yt = self.tensor(x), self.tensor(y)
        w = np.asarray(w, np.int32)
        oc, kh, kw, ic = w.shape
        w2 = w.reshape(oc, kh * kw * ic)
        mult, shift = tflm.conv_multipliers(xt.scale, w_scales, yt.scale, oc)
        base = yt.name
        tensors = [
            x,
            self.const(f"{base}/weights", "uint8", (oc, kh, kw, ic), block_weights(w2), WEIGHT_FLAGS),
            self.const(f"{base}/bias", "int32", (oc,), fold_bias(bias, w2, xt.zero_point), blobfmt.TF_BIAS_FOLDED),
            *self._requant(base, mult, shift),
        ]
        return self.emit(ops.CONV_2D, tensors, [y],
                         dict(geo, in_zp=xt.zero_point, out_offset=yt.zero_point, act_min=act_min, act_max=act_max))

    def depthwise_conv_2d(self, x: int, y: int, w: np.ndarray, bias: np.ndarray | None, w_scales,
                          geo: dict[str, int], depth_mult: int, act_min: int, act_max: int) -> Op:
        """DEPTHWISE_CONV_2D: `w` int8 [k_h, k_w, out_c] (out channel c*depth_mult + m reads input c)."""
        xt, yt = self.tensor(x), self.tensor(y)
        w = np.asarray(w, np.int32)
        kh, kw, oc = w.shape
        mult, shift = tflm.conv_multipliers(xt.scale, w_scales, yt.scale, oc)
        base = yt.name
        tensors = [
            x,
            self.const(f"{base}/weights", "int8", (1, kh, kw, oc), w.astype(np.int8)),
            self.const(f"{base}/bias", "int32", (oc,), fold_bias(bias, w.reshape(kh * kw, oc).T, xt.zero_point),
                       blobfmt.TF_BIAS_FOLDED),
            *self._requant(base, mult, shift),
        ]
        return self.emit(ops.DEPTHWISE_CONV_2D, tensors, [y],
                         dict(geo, depth_mult=depth_mult, in_zp=xt.zero_point, out_offset=yt.zero_point,
                              act_min=act_min, act_max=act_max))

    def pool(self, code: int, x: int, y: int, geo: dict[str, int], act_min: int = -128, act_max: int = 127) -> Op:
        """AVERAGE_POOL_2D or MAX_POOL_2D; `geo` from conv_geometry with the filter as the kernel."""
        return self.emit(code, [x], [y],
                         dict(batches=geo["batches"], in_h=geo["in_h"], in_w=geo["in_w"], channels=geo["in_c"],
                              out_h=geo["out_h"], out_w=geo["out_w"], f_h=geo["k_h"], f_w=geo["k_w"],
                              stride_h=geo["stride_h"], stride_w=geo["stride_w"], pad_top=geo["pad_top"],
                              pad_left=geo["pad_left"], act_min=act_min, act_max=act_max))

    def add(self, a: int, b: int, y: int, act_min: int, act_max: int) -> Op:
        at, bt, yt = self.tensor(a), self.tensor(b), self.tensor(y)
        params = tflm.add_params(at.scale, at.zero_point, bt.scale, bt.zero_point, yt.scale, yt.zero_point)
        return self.emit(ops.ADD, [a, b], [y], dict(params, size=yt.size, act_min=act_min, act_max=act_max))

    def reshape(self, x: int, y: int) -> Op:
        return self.emit(ops.RESHAPE, [x], [y], dict(size=self.tensor(y).size))

    def softmax(self, x: int, y: int, beta: float = 1.0) -> Op:
        """SOFTMAX over the last axis; `y` must be TFLM's int8 softmax output (scale 1/256, zero point -128)."""
        xt, yt = self.tensor(x), self.tensor(y)
        if yt.zero_point != -128 or np.float32(yt.scale) != np.float32(1.0 / 256):
            raise ValueError(f"output {yt.name!r} must have scale 1/256 and zero point -128 (TFLM's int8 softmax)")
        depth = xt.shape[-1] if xt.shape else 1
        exp_sum, exp = tflm.softmax_tables(beta, xt.scale)
        base = yt.name
        tensors = [x, self.const(f"{base}/exp_sum_table", "int32", (256,), exp_sum),
                   self.const(f"{base}/exp_table", "int32", (256,), exp)]
        return self.emit(ops.SOFTMAX, tensors, [y], dict(outer=xt.size // depth, depth=depth))

    def lookup(self, code: int, x: int, y: int) -> Op:
        """LOGISTIC or TANH with TFLM's int8 table for the input's quantization."""
        xt, yt = self.tensor(x), self.tensor(y)
        if code == ops.LOGISTIC:
            if yt.zero_point != -128:
                raise ValueError(f"output {yt.name!r} must have zero point -128 (TFLM's int8 logistic)")
            table = tflm.logistic_table(xt.scale, xt.zero_point)
        else:
            table = tflm.tanh_table(xt.scale, xt.zero_point)
        t = self.const(f"{yt.name}/table", "int8", (256,), table)
        return self.emit(code, [x, t], [y], dict(size=yt.size))

    def requantize(self, x: int, y: int) -> Op:
        xt, yt = self.tensor(x), self.tensor(y)
        mult, shift = tflm.requantize_params(xt.scale, yt.scale)
        return self.emit(ops.REQUANTIZE, [x], [y],
                         dict(size=yt.size, in_zp=xt.zero_point, out_zp=yt.zero_point, mult=mult, shift=shift))
