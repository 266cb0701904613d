"""Post-training int8 quantization of an `mpml.nn` float model to an mpml `Graph`.

    graph = quantize(model, calibration_x, input_scale=1/32, input_zero_point=0, name="gesture")
    report = compare(model, graph, x_test, y_test)
    print(report.table())
    write_blob(graph)                      # mpml.blob

What it does (docs/training-and-quantization.md):

- calibration: the float model runs on representative inputs and every
  layer's output range is measured (min/max, or a percentile to ignore
  outliers);
- activations: asymmetric int8, scale = (max - min) / 255 over a range that
  always holds 0, zero point so that 0.0 is exact; pools, Flatten and global
  pooling keep their input's quantization (TFLM pools in place); the softmax
  output is TFLM's 1/256, -128;
- weights: symmetric int8 per output channel (Dense, Conv1D and
  DepthwiseConv1D), scale = max|w| / 127; bias int32 at input scale x weight
  scale;
- params: TFLM's multipliers and shifts, activation ranges of the fused
  RELU/RELU6, softmax tables, all through `mpml.builder.GraphBuilder`, the
  helpers the TFLite importer uses, so a quantized model is exactly the graph
  an imported TFLite model of the same layers and scales would be;
- edges: the input takes the caller's scale and zero point (the feature
  spec's) as a float edge; the output is a float edge (dequantized), with
  class labels for a classifier.

Layer to op: Dense -> FULLY_CONNECTED; Conv1D -> CONV_2D (height 1);
DepthwiseConv1D -> DEPTHWISE_CONV_2D; MaxPool1D/AvgPool1D -> MAX_POOL_2D/
AVERAGE_POOL_2D; GlobalAvgPool1D -> AVERAGE_POOL_2D over the whole length;
Flatten -> RESHAPE; Softmax -> SOFTMAX.
"""

from __future__ import annotations

import numpy as np

from mpml import ops
from mpml.builder import GraphBuilder, conv_geometry
from mpml.graph import Graph
from mpml.nn import layers as L
from mpml.nn.model import Sequential
from mpml.reference import tflm

from .evaluate import Report, compare, predict, run_batch

__all__ = ["QuantizeError", "calibrate", "choose_qparams", "quantize_weights", "quantize",
           "compare", "Report", "predict", "run_batch"]


class QuantizeError(ValueError):
    """The model cannot be quantized (an unsupported layer, bad calibration data), with the reason."""


def calibrate(model: Sequential, x, method: str = "minmax", percentile: float = 99.99,
              batch_size: int = 1024) -> list[tuple[float, float]]:
    """(low, high) of every layer's output over the calibration inputs.

    method 'minmax': the extremes; 'percentile': the `percentile`-th and
    (100 - percentile)-th percentiles, which clips rare outliers.
    """
    x = np.asarray(x, np.float32)
    if len(x) == 0:
        raise QuantizeError("no calibration data")
    if not np.isfinite(x).all():
        raise QuantizeError("calibration data has NaN or infinite values")
    if method not in ("minmax", "percentile"):
        raise QuantizeError(f"calibration method {method!r}: 'minmax' or 'percentile'")
    ranges = []
    for a in model.activations(x, batch_size):
        if method == "minmax":
            ranges.append((float(a.min()), float(a.max())))
        else:
            lo, hi = np.percentile(a, [100 - percentile, percentile])
            ranges.append((float(lo), float(hi)))
    return ranges


def choose_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) for values in [lo, hi]; 0.0 is always exactly representable.

    The scale is a float32 value (what the blob stores and TFLM computes with).
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:  # a constant (e.g. a dead channel's 0): any scale holds it; keep TFLM's ops valid
        hi = lo + 1.0
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def quantize_weights(w: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel along `axis`: (int8 weights, float32 scales), scale = max|w| / 127.

    An all-zero channel gets scale 1 (its weights are 0 at any scale).
    """
    w = np.asarray(w, np.float64)
    axis = axis % w.ndim
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=other)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


def _bias(b: np.ndarray, in_scale: float, w_scales: np.ndarray) -> np.ndarray:
    s = np.float32(in_scale) * w_scales.astype(np.float32)  # as TFLite's converter: float32 product
    q = np.round(np.asarray(b, np.float64) / s.astype(np.float64))
    return np.clip(q, -2**31, 2**31 - 1).astype(np.int64)


_ACT = {"none": "NONE", "relu": "RELU", "relu6": "RELU6"}


def quantize(model: Sequential, calibration_x, input_scale: float, input_zero_point: int, *,
             name: str | None = None, labels=None, method: str = "minmax", percentile: float = 99.99,
             version: str = "", features: bytes = b"") -> Graph:
    """The int8 `Graph` of a trained float model.

    calibration_x: representative float inputs (a few hundred windows of
    training data), shaped like the model's input. input_scale and
    input_zero_point: the int8 quantization of the model's input, which the
    feature spec fixes (the float edge converts with them). labels: class
    names for a classifier's output (default: the model's own). features:
    the feature spec's bytes, stored in the blob as they are.
    """
    if not input_scale > 0:
        raise QuantizeError(f"input scale must be positive, got {input_scale}")
    if not -128 <= int(input_zero_point) <= 127:
        raise QuantizeError(f"input zero point {input_zero_point} is not an int8")
    x = np.asarray(calibration_x, np.float32)
    try:
        x = model._check_x(x)
    except ValueError as e:
        raise QuantizeError(f"calibration data: {e}") from None
    ranges = calibrate(model, x, method, percentile)
    b = GraphBuilder(name or model.name)
    g = b.graph
    g.version, g.features = version, bytes(features)

    def act_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (1, 1) + shape if len(shape) == 2 else (1,) + shape

    in_scale = float(np.float32(input_scale))
    cur = b.activation("input", act_shape(model.input_shape), in_scale, int(input_zero_point))
    b.add_input(cur, "input", float_io=True)
    shape = model.input_shape
    for i, (layer, (lo, hi)) in enumerate(zip(model.layers, ranges)):
        where = f"layer {i} {layer.kind}"
        xt = b.tensor(cur)
        out_name = f"{i}_{layer.kind.lower()}"
        try:
            if isinstance(layer, (L.Dense, L.Conv1D, L.DepthwiseConv1D)):
                scale, zp = choose_qparams(lo, hi)
                y = b.activation(out_name, act_shape(layer.output_shape), scale, zp)
                act_min, act_max = tflm.activation_range(_ACT[layer.activation], scale, zp)
                kernel, bias = layer.params["kernel"], layer.params["bias"]
                if isinstance(layer, L.Dense):
                    wq, ws = quantize_weights(kernel.T, axis=0)  # [out, in]
                    b.fully_connected(cur, y, wq, _bias(bias, xt.scale, ws), ws, act_min, act_max)
                elif isinstance(layer, L.Conv1D):
                    k, c, f = kernel.shape
                    wq, ws = quantize_weights(kernel.transpose(2, 0, 1).reshape(f, 1, k, c), axis=0)
                    geo = _geometry(layer, shape, f, k, layer.strides, layer.dilation)
                    b.conv_2d(cur, y, wq, _bias(bias, xt.scale, ws), ws, geo, act_min, act_max)
                else:
                    k, c, m = kernel.shape
                    wq, ws = quantize_weights(kernel.reshape(1, k, c * m), axis=2)  # [kh, kw, out]
                    geo = _geometry(layer, shape, c * m, k, layer.strides, layer.dilation)
                    b.depthwise_conv_2d(cur, y, wq, _bias(bias, xt.scale, ws), ws, geo, m, act_min, act_max)
            elif isinstance(layer, (L.MaxPool1D, L.AvgPool1D)):
                y = b.activation(out_name, act_shape(layer.output_shape), xt.scale, xt.zero_point)
                geo = _geometry(layer, shape, shape[1], layer.pool_size, layer.strides, 1)
                code = ops.MAX_POOL_2D if isinstance(layer, L.MaxPool1D) else ops.AVERAGE_POOL_2D
                b.pool(code, cur, y, geo)
            elif isinstance(layer, L.GlobalAvgPool1D):
                y = b.activation(out_name, (1, 1, 1, shape[1]), xt.scale, xt.zero_point)
                geo = conv_geometry(1, 1, shape[0], shape[1], shape[1], 1, shape[0], 1, 1, 1, 1, "VALID")
                b.pool(ops.AVERAGE_POOL_2D, cur, y, geo)
            elif isinstance(layer, L.Flatten):
                y = b.activation(out_name, act_shape(layer.output_shape), xt.scale, xt.zero_point)
                b.reshape(cur, y)
            elif isinstance(layer, L.Softmax):
                y = b.activation(out_name, act_shape(layer.output_shape), 1.0 / 256, -128)
                b.softmax(cur, y, 1.0)
            else:
                raise QuantizeError(f"{where}: no int8 op for {layer.kind}")
        except QuantizeError:
            raise
        except ValueError as e:
            raise QuantizeError(f"{where}: {e}") from None
        cur, shape = y, layer.output_shape
    classifier = model.task == "classifier"
    names = [str(s) for s in (labels if labels is not None else model.labels)] if classifier else []
    if names and len(names) != shape[-1]:
        raise QuantizeError(f"{len(names)} labels for {shape[-1]} classes")
    b.add_output(cur, "output", labels=names, float_io=True)
    g.validate()
    return g


def _geometry(layer, in_shape, out_c: int, k: int, stride: int, dilation: int) -> dict[str, int]:
    geo = conv_geometry(1, 1, in_shape[0], in_shape[1], out_c, 1, k, 1, stride, 1, dilation, layer.padding)
    # the float layer slid its window exactly so (same TFLM padding rule): check it
    assert (geo["out_w"], geo["pad_left"]) == (layer.out_len, layer.pad_left), (layer, geo)
    return geo
