"""Import a fully int8-quantized TFLite model as a `Graph` that computes what TFLM computes.

Every op becomes one mpml op whose params are what TFLM's `Prepare` would
derive (see `mpml.reference.tflm`): requantization multipliers and shifts,
activation ranges, paddings, softmax exponent tables, logistic/tanh lookup
tables. Weights are stored in mpml's layouts (docs/blob-format.md) and biases
folded with the input zero point (docs/ops.md). A leading QUANTIZE from float
and a trailing DEQUANTIZE to float become the model's float edges.

A model that uses anything outside this is refused with one `TFLiteImportError`
that lists every problem and where it is (op index, op name, tensor).
docs/reference-and-import.md describes what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

from mpml import blobfmt, ops
from mpml.builder import GraphBuilder, conv_geometry
from mpml.graph import Edge, Graph
from mpml.reference import tflm

__all__ = ["TFLiteImportError", "import_tflite", "load_tflite"]


class TFLiteImportError(ValueError):
    """The model cannot be imported; `problems` lists every reason, each with its place."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        n = len(problems)
        super().__init__(f"cannot import {source}: {n} unsupported thing{'s' if n != 1 else ''}:\n{lines}")


_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
_TYPE_NAMES = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_") and isinstance(v, int)}
_ACT_NAMES = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_") and isinstance(v, int)}
_PAD_NAMES = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}
_SUPPORTED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD",
              "RESHAPE", "SOFTMAX", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE")


class _Skip(Exception):
    """An op with problems already recorded: convert no further."""


@dataclass
class _TfTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: np.ndarray  # float32, empty when not quantized
    zero_points: np.ndarray  # int64
    quant_dim: int
    data: np.ndarray | None  # constants: values in dtype, shaped

    @property
    def scale(self) -> float:
        return float(self.scales[0]) if self.scales.size else 0.0

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def where(self) -> str:
        return f"tensor {self.index} {self.name!r}"


def _read_tensors(model, sg, raw: bytes) -> list[_TfTensor]:
    out = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        dtype = _TYPE_NAMES.get(t.Type(), f"type#{t.Type()}")
        q = t.Quantization()
        scales = np.zeros(0, np.float32)
        zps = np.zeros(0, np.int64)
        qdim = 0
        if q is not None and q.ScaleLength():
            scales = q.ScaleAsNumpy().astype(np.float32)
            zps = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scales.size, np.int64)
            qdim = q.QuantizedDimension()
        data = None
        buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
        if buf is not None:
            blob = b""
            if buf.DataLength():
                blob = buf.DataAsNumpy().tobytes()
            elif buf.Offset() > 1:  # large models keep buffers after the flatbuffer
                blob = raw[buf.Offset():buf.Offset() + buf.Size()]
            if blob and dtype in ("int8", "uint8", "int16", "int32", "int64", "float32"):
                data = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
                if data.size == int(np.prod(shape, dtype=np.int64)):
                    data = data.reshape(shape)
        name = t.Name().decode("utf-8", "replace") if t.Name() else f"t{i}"
        out.append(_TfTensor(i, name, shape, dtype, scales, zps, qdim, data))
    return out


def _options(op, cls):
    table = op.BuiltinOptions()
    opt = cls()
    if table is not None:
        opt.Init(table.Bytes, table.Pos)
        return opt
    return None


class _Importer:
    def __init__(self, data: bytes, source: str, name: str) -> None:
        self.source = source
        self.problems: list[str] = []
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise TFLiteImportError(source, ["not a TFLite flatbuffer (no TFL3 identifier)"])
        self.model = tflite.Model.GetRootAs(data, 0)
        if self.model.SubgraphsLength() != 1:
            self.problems.append(f"{self.model.SubgraphsLength()} subgraphs (control flow); only one is supported")
        self.sg = self.model.Subgraphs(0)
        self.tf = _read_tensors(self.model, self.sg, data)
        self.build = GraphBuilder(name)  # the op and tensor helpers shared with mpml.quantize
        self.graph = self.build.graph
        self.gidx: dict[int, int] = {}  # TFLite tensor -> graph tensor (activations and int8 constants)
        self.where = ""  # the op being converted, for messages

    # -- helpers ---------------------------------------------------------------------------------

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def op_name(self, k: int) -> str:
        op = self.sg.Operators(k)
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == tflite.BuiltinOperator.CUSTOM:
            return f"CUSTOM({(oc.CustomCode() or b'?').decode()})"
        return _OP_NAMES.get(code, f"builtin#{code}")

    def op_tensors(self, op) -> tuple[list[int], list[int]]:
        ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        return ins, outs

    def check_int8(self, where: str, t: _TfTensor, role: str) -> bool:
        if t.dtype != "int8":
            kind = {"float32": "float (the model is not fully int8-quantized)",
                    "int16": "int16 activations (16x8 quantization) are not supported"}.get(t.dtype, "not int8")
            self.problem(where, f"{role} {t.where()} is {t.dtype}: {kind}")
            return False
        if t.scales.size != 1:
            self.problem(where, f"{role} {t.where()} has {t.scales.size} scales; activations need one (per-tensor)")
            return False
        if len(t.shape) > blobfmt.MAX_NDIM:
            self.problem(where, f"{role} {t.where()} has {len(t.shape)} dims, at most {blobfmt.MAX_NDIM}")
            return False
        return True

    def activation(self, t: _TfTensor) -> int:
        """The graph tensor standing for a TFLite int8 tensor (an int8 constant stays constant)."""
        if t.index not in self.gidx:
            shape = t.shape or (1,)
            self.gidx[t.index] = self.build.activation(t.name, shape, t.scale, t.zero_point, data=t.data)
        return self.gidx[t.index]

    def fused(self, where: str, opt, out: _TfTensor) -> tuple[int, int]:
        act = _ACT_NAMES.get(opt.FusedActivationFunction(), "?") if opt is not None else "NONE"
        if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            self.problem(where, f"fused activation {act} is not supported")
            raise _Skip
        return tflm.activation_range(act, out.scale, out.zero_point)

    def weights(self, where: str, t: _TfTensor, channels: int, quant_dim: int) -> np.ndarray:
        ok = True
        if t.data is None:
            self.problem(where, f"weights {t.where()} are not constant")
            raise _Skip
        if t.dtype != "int8":
            self.problem(where, f"weights {t.where()} are {t.dtype}, not int8")
            raise _Skip
        if t.scales.size not in (1, channels) or (t.scales.size > 1 and t.quant_dim != quant_dim):
            self.problem(where, f"weights {t.where()}: {t.scales.size} scales on dimension {t.quant_dim}; "
                                f"need 1 or {channels} on dimension {quant_dim}")
            ok = False
        if t.zero_points.size and (t.zero_points != 0).any():
            self.problem(where, f"weights {t.where()} have non-zero zero points (TFLM needs symmetric weights)")
            ok = False
        if not ok:
            raise _Skip
        return t.data.astype(np.int32)

    def bias(self, where: str, ins: list[int], channels: int) -> np.ndarray | None:
        if len(ins) < 3 or ins[2] < 0:
            return None
        b = self.tf[ins[2]]
        if b.data is None or b.dtype != "int32" or b.size != channels:
            self.problem(where, f"bias {b.where()} must be a constant int32[{channels}] (is {b.dtype} {b.shape})")
            raise _Skip
        return b.data.reshape(-1).astype(np.int64)

    # -- ops ---------------------------------------------------------------------------------------

    # Each handler checks what TFLM's model must satisfy, then lets the shared GraphBuilder
    # compute the params and stored layouts; the builder's ValueError (e.g. params beyond
    # mpml's kernels) becomes this op's problem in run().

    def fully_connected(self, where, op, ins, outs):
        x, w_t, y = self.tf[ins[0]], self.tf[ins[1]], self.tf[outs[0]]
        opt = _options(op, tflite.FullyConnectedOptions)
        if opt is not None and opt.WeightsFormat() != 0:
            self.problem(where, "shuffled weights format is not supported")
            raise _Skip
        if len(w_t.shape) != 2:
            self.problem(where, f"weights {w_t.where()} shape {w_t.shape} is not [out, in]")
            raise _Skip
        out_d, in_d = w_t.shape
        w = self.weights(where, w_t, out_d, 0)
        if x.size % in_d:
            self.problem(where, f"input {x.where()} of {x.size} values is not a whole number of rows of {in_d}")
            raise _Skip
        bias = self.bias(where, ins, out_d)
        act_min, act_max = self.fused(where, opt, y)
        self.build.fully_connected(self.activation(x), self.activation(y), w, bias, w_t.scales, act_min, act_max)

    def _geometry(self, where, x, y, kh, kw, opt, depthwise: bool) -> dict[str, int]:
        if len(x.shape) != 4 or len(y.shape) != 4:
            self.problem(where, f"input {x.shape} and output {y.shape} must be 4-D NHWC")
            raise _Skip
        padding = _PAD_NAMES.get(opt.Padding())
        dh = opt.DilationHFactor() if hasattr(opt, "DilationHFactor") else 1
        dw = opt.DilationWFactor() if hasattr(opt, "DilationWFactor") else 1
        b, ih, iw, c = x.shape
        geo = conv_geometry(b, ih, iw, c, y.shape[3], kh, kw, opt.StrideH(), opt.StrideW(), dh, dw, padding)
        if (b, geo["out_h"], geo["out_w"]) != tuple(y.shape[:3]):
            self.problem(where, f"output {y.where()} shape {y.shape} differs from TFLM's "
                                f"[{b}, {geo['out_h']}, {geo['out_w']}, _]")
            raise _Skip
        return geo

    def conv_2d(self, where, op, ins, outs):
        x, w_t, y = self.tf[ins[0]], self.tf[ins[1]], self.tf[outs[0]]
        opt = _options(op, tflite.Conv2DOptions)
        if len(w_t.shape) != 4:
            self.problem(where, f"filter {w_t.where()} shape {w_t.shape} is not [out, kh, kw, in]")
            raise _Skip
        oc, kh, kw, ic = w_t.shape
        if len(x.shape) == 4 and ic != x.shape[3]:
            self.problem(where, f"grouped convolution ({x.shape[3]} input channels, filter takes {ic}) is not supported")
            raise _Skip
        w = self.weights(where, w_t, oc, 0)
        geo = self._geometry(where, x, y, kh, kw, opt, False)
        bias = self.bias(where, ins, oc)
        act_min, act_max = self.fused(where, opt, y)
        self.build.conv_2d(self.activation(x), self.activation(y), w, bias, w_t.scales, geo, act_min, act_max)

    def depthwise_conv_2d(self, where, op, ins, outs):
        x, w_t, y = self.tf[ins[0]], self.tf[ins[1]], self.tf[outs[0]]
        opt = _options(op, tflite.DepthwiseConv2DOptions)
        if len(w_t.shape) != 4 or w_t.shape[0] != 1:
            self.problem(where, f"filter {w_t.where()} shape {w_t.shape} is not [1, kh, kw, out]")
            raise _Skip
        _one, kh, kw, oc = w_t.shape
        w = self.weights(where, w_t, oc, 3).reshape(kh, kw, oc)
        geo = self._geometry(where, x, y, kh, kw, opt, True)
        ic = geo["in_c"]
        if oc % ic or geo["out_c"] != oc:
            self.problem(where, f"{oc} output channels is not a multiple of {ic} input channels")
            raise _Skip
        bias = self.bias(where, ins, oc)
        act_min, act_max = self.fused(where, opt, y)
        self.build.depthwise_conv_2d(self.activation(x), self.activation(y), w, bias, w_t.scales, geo, oc // ic,
                                     act_min, act_max)

    def pool(self, where, op, ins, outs, code):
        x, y = self.tf[ins[0]], self.tf[outs[0]]
        opt = _options(op, tflite.Pool2DOptions)
        if (x.scale, x.zero_point) != (y.scale, y.zero_point):
            self.problem(where, f"output {y.where()} quantization differs from the input's (TFLM pools in place)")
            raise _Skip
        geo = self._geometry(where, x, y, opt.FilterHeight(), opt.FilterWidth(), opt, False)
        act_min, act_max = self.fused(where, opt, y)
        self.build.pool(code, self.activation(x), self.activation(y), geo, act_min, act_max)

    def add(self, where, op, ins, outs):
        a, b, y = self.tf[ins[0]], self.tf[ins[1]], self.tf[outs[0]]
        if a.shape != b.shape or a.size != y.size:
            self.problem(where, f"broadcasting ADD ({a.where()} {a.shape} + {b.where()} {b.shape}) is not supported")
            raise _Skip
        act_min, act_max = self.fused(where, _options(op, tflite.AddOptions), y)
        self.build.add(self.activation(a), self.activation(b), self.activation(y), act_min, act_max)

    def reshape(self, where, op, ins, outs):
        x, y = self.tf[ins[0]], self.tf[outs[0]]
        if x.size != y.size:
            self.problem(where, f"reshape of {x.size} values into {y.size}")
            raise _Skip
        self.build.reshape(self.activation(x), self.activation(y))

    def softmax(self, where, op, ins, outs):
        x, y = self.tf[ins[0]], self.tf[outs[0]]
        if y.zero_point != -128 or y.scales[0] != np.float32(1.0 / 256):
            self.problem(where, f"output {y.where()} must have scale 1/256 and zero point -128 (TFLM's int8 softmax)")
            raise _Skip
        opt = _options(op, tflite.SoftmaxOptions)
        beta = opt.Beta() if opt is not None else 1.0
        self.build.softmax(self.activation(x), self.activation(y), beta)

    def lookup(self, where, op, ins, outs, code):
        x, y = self.tf[ins[0]], self.tf[outs[0]]
        if code == ops.LOGISTIC and y.zero_point != -128:
            self.problem(where, f"output {y.where()} must have zero point -128 (TFLM's int8 logistic)")
            raise _Skip
        self.build.lookup(code, self.activation(x), self.activation(y))

    def requantize(self, where, op, ins, outs):
        x, y = self.tf[ins[0]], self.tf[outs[0]]
        self.build.requantize(self.activation(x), self.activation(y))

    # -- the whole model -----------------------------------------------------------------------------

    def run(self) -> Graph:
        sg = self.sg
        n_ops = sg.OperatorsLength()
        model_inputs = [int(i) for i in sg.InputsAsNumpy()] if sg.InputsLength() else []
        model_outputs = [int(i) for i in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
        consumers: dict[int, list[int]] = {}
        producer: dict[int, int] = {}
        for k in range(n_ops):
            ins, outs = self.op_tensors(sg.Operators(k))
            for t in ins:
                if t >= 0:
                    consumers.setdefault(t, []).append(k)
            for t in outs:
                producer[t] = k

        # Float edges: QUANTIZE right after a float input, DEQUANTIZE right before a float output.
        edge_ops: set[int] = set()
        inputs: list[tuple[int, bool]] = []
        for t in model_inputs:
            tt = self.tf[t]
            users = consumers.get(t, [])
            if tt.dtype == "float32":
                quant = [k for k in users if self.op_name(k) == "QUANTIZE"
                         and self.tf[self.op_tensors(sg.Operators(k))[1][0]].dtype == "int8"]
                if len(users) == 1 and quant:
                    edge_ops.add(quant[0])
                    inputs.append((self.op_tensors(sg.Operators(quant[0]))[1][0], True))
                else:
                    self.problem(f"model input {tt.where()}", "is float and not only quantized to int8: "
                                 "the model is not fully int8-quantized")
            else:
                inputs.append((t, False))
        outputs: list[tuple[int, bool]] = []
        for t in model_outputs:
            tt = self.tf[t]
            k = producer.get(t)
            if tt.dtype == "float32":
                if k is not None and self.op_name(k) == "DEQUANTIZE" and \
                        self.tf[self.op_tensors(sg.Operators(k))[0][0]].dtype == "int8":
                    edge_ops.add(k)
                    outputs.append((self.op_tensors(sg.Operators(k))[0][0], True))
                else:
                    self.problem(f"model output {tt.where()}", "is float and not dequantized from int8: "
                                 "the model is not fully int8-quantized")
            else:
                outputs.append((t, False))

        handlers = {
            "FULLY_CONNECTED": self.fully_connected, "CONV_2D": self.conv_2d,
            "DEPTHWISE_CONV_2D": self.depthwise_conv_2d,
            "AVERAGE_POOL_2D": lambda *a: self.pool(*a, ops.AVERAGE_POOL_2D),
            "MAX_POOL_2D": lambda *a: self.pool(*a, ops.MAX_POOL_2D),
            "ADD": self.add, "RESHAPE": self.reshape, "SOFTMAX": self.softmax,
            "LOGISTIC": lambda *a: self.lookup(*a, ops.LOGISTIC),
            "TANH": lambda *a: self.lookup(*a, ops.TANH),
            "QUANTIZE": self.requantize,
        }
        for k in range(n_ops):
            if k in edge_ops:
                continue
            name = self.op_name(k)
            op = sg.Operators(k)
            ins, outs = self.op_tensors(op)
            where = self.where = f"op {k} {name}"
            handler = handlers.get(name)
            if handler is None:
                if name == "DEQUANTIZE":
                    self.problem(where, "DEQUANTIZE inside the model (only at a model output) is not supported")
                else:
                    self.problem(where, f"op {name} is not supported (supported: {', '.join(_SUPPORTED)})")
                continue
            # Activations: the first input (both for ADD) and the output are int8, per tensor.
            act_ins = ins[:2] if name == "ADD" else ins[:1]
            ok = all(self.check_int8(where, self.tf[t], "input") for t in act_ins if t >= 0)
            ok = all([self.check_int8(where, self.tf[t], "output") for t in outs[:1]]) and ok
            if len(outs) != 1:
                self.problem(where, f"{len(outs)} outputs")
                ok = False
            if not ok:
                continue
            try:
                handler(where, op, ins, outs)
            except _Skip:
                pass
            except ValueError as e:  # a parameter TFLM itself would refuse (e.g. a multiplier out of range)
                self.problem(where, str(e))

        if self.problems:
            raise TFLiteImportError(self.source, self.problems)
        for t, is_float in inputs:
            self.graph.inputs.append(Edge(self.activation(self.tf[t]), self._edge_name(t, model_inputs, True),
                                          float_io=is_float))
        for t, is_float in outputs:
            self.graph.outputs.append(Edge(self.activation(self.tf[t]), self._edge_name(t, model_outputs, False),
                                           float_io=is_float))
        try:
            self.graph.validate()
        except ValueError as e:
            raise TFLiteImportError(self.source, [f"internal: {e}"]) from None
        return self.graph

    def _edge_name(self, t: int, model_edges: list[int], is_input: bool) -> str:
        # The user-facing name: the float tensor's when the edge is float.
        if t in model_edges:
            return self.tf[t].name
        for k in range(self.sg.OperatorsLength()):
            ins, outs = self.op_tensors(self.sg.Operators(k))
            if is_input and outs and outs[0] == t and ins and ins[0] in model_edges:
                return self.tf[ins[0]].name
            if not is_input and ins and ins[0] == t and outs and outs[0] in model_edges:
                return self.tf[outs[0]].name
        return self.tf[t].name


def import_tflite(data: bytes, name: str = "model", source: str | None = None) -> Graph:
    """Convert TFLite flatbuffer bytes to a Graph; raises TFLiteImportError listing every problem."""
    return _Importer(bytes(data), source or name, name).run()


def load_tflite(path: str | Path, name: str | None = None) -> Graph:
    """Read a .tflite file and convert it (name defaults to the file's stem)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TFLiteImportError(str(path), [f"cannot read the file: {e.strerror}"]) from None
    return import_tflite(data, name or path.stem, str(path))
