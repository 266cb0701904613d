"""Small int8 TFLite models written from scratch, for tests and benchmarks.

`ModelBuilder` writes a TFLite flatbuffer with the `tflite` schema package's
builder functions (no TensorFlow needed). `Net` builds a quantized network
layer by layer on top of it, choosing weights and quantization parameters
from a numpy Generator so that outputs span the int8 range instead of
saturating. The `random_*` functions give one random model per op, and a few
multi-op models; every one runs in the TFLM interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

__all__ = ["ModelBuilder", "Net", "RANDOM_MODELS", "random_model", "random_chain", "random_residual",
           "cnn_1d", "cnn_2d", "mlp", "run_tflm"]

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int8": tflite.TensorType.INT8,
          "int16": tflite.TensorType.INT16, "int32": tflite.TensorType.INT32,
          "uint8": tflite.TensorType.UINT8, "int64": tflite.TensorType.INT64}
_ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
_PAD = {"SAME": 0, "VALID": 1}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    scale: list[float] | None
    zero_point: list[int] | None
    quant_dim: int


@dataclass
class _Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, dict[str, int | float]] | None


@dataclass
class ModelBuilder:
    """A one-subgraph TFLite model, written out by `build()`."""

    tensors: list[_Tensor] = field(default_factory=list)
    buffers: list[bytes] = field(default_factory=lambda: [b""])
    ops: list[_Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def tensor(self, name: str, shape, dtype: str = "int8", data: np.ndarray | None = None,
               scale=None, zero_point=None, quant_dim: int = 0) -> int:
        """Add a tensor (a constant when `data` is given); scale/zero_point scalar or per channel."""
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data, dtype=np.dtype(dtype).newbyteorder("<")).tobytes())
            buf = len(self.buffers) - 1
        if scale is not None:
            scale = [float(s) for s in np.atleast_1d(scale)]
            zp = np.atleast_1d(0 if zero_point is None else zero_point)
            zero_point = [int(z) for z in (np.broadcast_to(zp, (len(scale),)) if zp.size == 1 else zp)]
        self.tensors.append(_Tensor(name, tuple(int(d) for d in shape), dtype, buf, scale, zero_point, quant_dim))
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options: tuple[str, dict] | None = None) -> None:
        """Add an operator: `code` a tflite.BuiltinOperator, `options` ("Conv2DOptions", {"StrideH": 1, ...})."""
        self.ops.append(_Op(code, list(inputs), list(outputs), options))

    def build(self) -> bytes:
        b = flatbuffers.Builder(1024)

        def int_vector(start, values, dtype="i"):
            start(b, len(values))
            for v in reversed(values):
                b.PrependInt32(v) if dtype == "i" else b.PrependInt64(v)
            return b.EndVector()

        def float_vector(start, values):
            start(b, len(values))
            for v in reversed(values):
                b.PrependFloat32(v)
            return b.EndVector()

        buffers = []
        for raw in self.buffers:
            data = None
            if raw:
                b.StartVector(1, len(raw), 16)  # 16-byte aligned, so int32 data is aligned for TFLM
                b.head -= len(raw)
                b.Bytes[b.head:b.head + len(raw)] = raw
                data = b.EndVector()
            tflite.BufferStart(b)
            if data is not None:
                tflite.BufferAddData(b, data)
            buffers.append(tflite.BufferEnd(b))

        tensors = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = int_vector(tflite.TensorStartShapeVector, list(t.shape))
            quant = None
            if t.scale is not None:
                sv = float_vector(tflite.QuantizationParametersStartScaleVector, t.scale)
                zv = int_vector(tflite.QuantizationParametersStartZeroPointVector, t.zero_point, "q")
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sv)
                tflite.QuantizationParametersAddZeroPoint(b, zv)
                tflite.QuantizationParametersAddQuantizedDimension(b, t.quant_dim)
                quant = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, _TYPES[t.dtype])
            tflite.TensorAddBuffer(b, t.buffer)
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensors.append(tflite.TensorEnd(b))

        codes: list[int] = []
        operators = []
        for op in self.ops:
            if op.code not in codes:
                codes.append(op.code)
            options = None
            if op.options is not None:
                kind, fields = op.options
                getattr(tflite, f"{kind}Start")(b)
                for key, value in fields.items():
                    getattr(tflite, f"{kind}Add{key}")(b, value)
                options = getattr(tflite, f"{kind}End")(b)
            ins = int_vector(tflite.OperatorStartInputsVector, op.inputs)
            outs = int_vector(tflite.OperatorStartOutputsVector, op.outputs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, codes.index(op.code))
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if options is not None:
                tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options[0]))
                tflite.OperatorAddBuiltinOptions(b, options)
            operators.append(tflite.OperatorEnd(b))

        def table(start, items):
            start(b, len(items))
            for item in reversed(items):
                b.PrependUOffsetTRelative(item)
            return b.EndVector()

        tv = table(tflite.SubGraphStartTensorsVector, tensors)
        ov = table(tflite.SubGraphStartOperatorsVector, operators)
        iv = int_vector(tflite.SubGraphStartInputsVector, self.inputs)
        outv = int_vector(tflite.SubGraphStartOutputsVector, self.outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddOperators(b, ov)
        tflite.SubGraphAddInputs(b, iv)
        tflite.SubGraphAddOutputs(b, outv)
        subgraph = tflite.SubGraphEnd(b)

        opcodes = []
        for code in codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            opcodes.append(tflite.OperatorCodeEnd(b))
        cv = table(tflite.ModelStartOperatorCodesVector, opcodes)
        sv = table(tflite.ModelStartSubgraphsVector, [subgraph])
        bv = table(tflite.ModelStartBuffersVector, buffers)
        desc = b.CreateString("mpml test model")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cv)
        tflite.ModelAddSubgraphs(b, sv)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bv)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


OP = tflite.BuiltinOperator
_UNIFORM_STD = 73.6  # standard deviation of a uniform int8 value


@dataclass
class _Act:
    index: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int


class Net:
    """A quantized network built layer by layer with random weights and fitting scales.

    Every layer method takes the current activation, adds the op and returns
    the new activation. `float_io` puts a QUANTIZE before the input and a
    DEQUANTIZE after each output, as converters do for float interfaces.
    """

    def __init__(self, rng: np.random.Generator, float_io: bool = False) -> None:
        self.rng = rng
        self.m = ModelBuilder()
        self.float_io = float_io
        self._n = 0

    def _name(self, what: str) -> str:
        self._n += 1
        return f"{what}_{self._n}"

    def _scale(self) -> float:
        return float(np.float32(self.rng.uniform(0.005, 0.1)))

    def _zp(self) -> int:
        return int(self.rng.integers(-40, 41))

    def activation(self, shape, scale: float | None = None, zero_point: int | None = None, name: str = "act") -> _Act:
        scale = self._scale() if scale is None else float(np.float32(scale))
        zero_point = self._zp() if zero_point is None else int(zero_point)
        idx = self.m.tensor(self._name(name), shape, "int8", scale=scale, zero_point=zero_point)
        return _Act(idx, tuple(shape), scale, zero_point)

    def input(self, shape, scale: float | None = None, zero_point: int | None = None) -> _Act:
        x = self.activation(shape, scale, zero_point, name="input")
        if self.float_io:
            f = self.m.tensor(self._name("input_float"), shape, "float32")
            self.m.op(OP.QUANTIZE, [f], [x.index])
            self.m.inputs.append(f)
        else:
            self.m.inputs.append(x.index)
        return x

    def output(self, x: _Act) -> None:
        if self.float_io:
            f = self.m.tensor(self._name("output_float"), x.shape, "float32")
            self.m.op(OP.DEQUANTIZE, [x.index], [f])
            self.m.outputs.append(f)
        else:
            self.m.outputs.append(x.index)

    def build(self) -> bytes:
        return self.m.build()

    # -- layers --------------------------------------------------------------------------------

    def _weights(self, out_c: int, shape, per_channel: bool, quant_dim: int, w_scale: float | None = None):
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        base = float(np.float32(w_scale or self.rng.uniform(0.002, 0.05)))
        scales = (np.float32(base) * self.rng.uniform(0.5, 1.5, out_c).astype(np.float32)) if per_channel \
            else np.array([base], np.float32)
        idx = self.m.tensor(self._name("weights"), shape, "int8", data=w, scale=scales,
                            zero_point=np.zeros(scales.size, np.int64), quant_dim=quant_dim)
        return idx, scales

    def _bias(self, x: _Act, scales: np.ndarray, out_c: int, taps: int) -> int:
        bscale = (np.float32(x.scale) * np.broadcast_to(scales, (out_c,)).astype(np.float32)).astype(np.float32)
        spread = int(np.sqrt(taps) * _UNIFORM_STD * _UNIFORM_STD)
        b = self.rng.integers(-spread, spread + 1, size=out_c).astype(np.int32)
        return self.m.tensor(self._name("bias"), (out_c,), "int32", data=b, scale=bscale,
                             zero_point=np.zeros(out_c, np.int64))

    def _out_scale(self, x: _Act, scales: np.ndarray, taps: int) -> float:
        std = np.sqrt(taps) * x.scale * _UNIFORM_STD * float(np.mean(scales)) * _UNIFORM_STD
        return float(np.float32(6.0 * std / 255.0 * self.rng.uniform(0.5, 2.0)))

    def fully_connected(self, x: _Act, units: int, activation: str = "NONE", per_channel: bool = False,
                        bias: bool = True, keep_num_dims: bool = False) -> _Act:
        depth = x.shape[-1]
        batches = int(np.prod(x.shape)) // depth
        w, scales = self._weights(units, (units, depth), per_channel, 0)
        b = self._bias(x, scales, units, depth) if bias else -1
        out_shape = tuple(x.shape[:-1]) + (units,) if keep_num_dims else (batches, units)
        y = self.activation(out_shape, self._out_scale(x, scales, depth))
        self.m.op(OP.FULLY_CONNECTED, [x.index, w, b], [y.index],
                  ("FullyConnectedOptions", {"FusedActivationFunction": _ACT[activation],
                                             "KeepNumDims": keep_num_dims}))
        return y

    def _spatial_out(self, x: _Act, kh: int, kw: int, stride, dilation, padding: str) -> tuple[int, int]:
        from mpml.reference.tflm import compute_out_size
        return (compute_out_size(padding, x.shape[1], kh, stride[0], dilation[0]),
                compute_out_size(padding, x.shape[2], kw, stride[1], dilation[1]))

    def conv_2d(self, x: _Act, out_c: int, kernel=(3, 3), stride=(1, 1), dilation=(1, 1), padding: str = "SAME",
                activation: str = "NONE", per_channel: bool = True, bias: bool = True) -> _Act:
        kh, kw = kernel
        in_c = x.shape[3]
        w, scales = self._weights(out_c, (out_c, kh, kw, in_c), per_channel, 0)
        b = self._bias(x, scales, out_c, kh * kw * in_c) if bias else -1
        oh, ow = self._spatial_out(x, kh, kw, stride, dilation, padding)
        y = self.activation((x.shape[0], oh, ow, out_c), self._out_scale(x, scales, kh * kw * in_c))
        self.m.op(OP.CONV_2D, [x.index, w, b], [y.index],
                  ("Conv2DOptions", {"Padding": _PAD[padding], "StrideH": stride[0], "StrideW": stride[1],
                                     "DilationHFactor": dilation[0], "DilationWFactor": dilation[1],
                                     "FusedActivationFunction": _ACT[activation]}))
        return y

    def depthwise_conv_2d(self, x: _Act, depth_multiplier: int = 1, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                          padding: str = "SAME", activation: str = "NONE", per_channel: bool = True,
                          bias: bool = True) -> _Act:
        kh, kw = kernel
        out_c = x.shape[3] * depth_multiplier
        w, scales = self._weights(out_c, (1, kh, kw, out_c), per_channel, 3)
        b = self._bias(x, scales, out_c, kh * kw) if bias else -1
        oh, ow = self._spatial_out(x, kh, kw, stride, dilation, padding)
        y = self.activation((x.shape[0], oh, ow, out_c), self._out_scale(x, scales, kh * kw))
        self.m.op(OP.DEPTHWISE_CONV_2D, [x.index, w, b], [y.index],
                  ("DepthwiseConv2DOptions", {"Padding": _PAD[padding], "StrideH": stride[0], "StrideW": stride[1],
                                              "DepthMultiplier": depth_multiplier,
                                              "DilationHFactor": dilation[0], "DilationWFactor": dilation[1],
                                              "FusedActivationFunction": _ACT[activation]}))
        return y

    def pool(self, x: _Act, kind: str, size=(2, 2), stride=(2, 2), padding: str = "VALID",
             activation: str = "NONE") -> _Act:
        oh, ow = self._spatial_out(x, size[0], size[1], stride, (1, 1), padding)
        y = self.activation((x.shape[0], oh, ow, x.shape[3]), x.scale, x.zero_point)
        code = OP.AVERAGE_POOL_2D if kind == "avg" else OP.MAX_POOL_2D
        self.m.op(code, [x.index], [y.index],
                  ("Pool2DOptions", {"Padding": _PAD[padding], "StrideH": stride[0], "StrideW": stride[1],
                                     "FilterHeight": size[0], "FilterWidth": size[1],
                                     "FusedActivationFunction": _ACT[activation]}))
        return y

    def add(self, a: _Act, b: _Act, activation: str = "NONE") -> _Act:
        scale = float(np.float32((a.scale + b.scale) * self.rng.uniform(0.7, 1.5)))
        y = self.activation(a.shape, scale)
        self.m.op(OP.ADD, [a.index, b.index], [y.index],
                  ("AddOptions", {"FusedActivationFunction": _ACT[activation]}))
        return y

    def reshape(self, x: _Act, shape) -> _Act:
        y = self.activation(shape, x.scale, x.zero_point)
        s = self.m.tensor(self._name("shape"), (len(shape),), "int32", data=np.array(shape, np.int32))
        self.m.op(OP.RESHAPE, [x.index, s], [y.index],
                  ("ReshapeOptions", {}))
        return y

    def softmax(self, x: _Act, beta: float = 1.0) -> _Act:
        y = self.activation(x.shape, 1.0 / 256, -128)
        self.m.op(OP.SOFTMAX, [x.index], [y.index], ("SoftmaxOptions", {"Beta": beta}))
        return y

    def logistic(self, x: _Act) -> _Act:
        y = self.activation(x.shape, 1.0 / 256, -128)
        self.m.op(OP.LOGISTIC, [x.index], [y.index])
        return y

    def tanh(self, x: _Act) -> _Act:
        y = self.activation(x.shape, 1.0 / 128, 0)
        self.m.op(OP.TANH, [x.index], [y.index])
        return y

    def requantize(self, x: _Act) -> _Act:
        y = self.activation(x.shape)
        self.m.op(OP.QUANTIZE, [x.index], [y.index])
        return y


# -- random models, one per op --------------------------------------------------------------------

def _act(rng) -> str:
    return str(rng.choice(["NONE", "NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))


def _pair(rng, lo: int, hi: int) -> tuple[int, int]:
    return int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))


def _image(rng, net: Net, max_hw: int = 9, max_c: int = 6):
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1)),
             int(rng.integers(1, max_c + 1)))
    return net.input(shape)


def _spatial_args(rng, x) -> dict:
    ih, iw = x.shape[1], x.shape[2]
    while True:
        kernel = _pair(rng, 1, 4)
        stride = _pair(rng, 1, 3)
        dilation = _pair(rng, 1, 2) if rng.random() < 0.4 else (1, 1)
        padding = str(rng.choice(["SAME", "VALID"]))
        eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        if padding == "SAME" or (eff[0] <= ih and eff[1] <= iw):
            return dict(kernel=kernel, stride=stride, dilation=dilation, padding=padding)


def random_model(kind: str, rng: np.random.Generator, float_io: bool = False) -> bytes:
    """A random one-op model of `kind` (a key of RANDOM_MODELS)."""
    net = Net(rng, float_io)
    if kind == "FULLY_CONNECTED":
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 40)))
        if rng.random() < 0.3:
            shape = (1, int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 6)))
        x = net.input(shape)
        y = net.fully_connected(x, int(rng.integers(1, 20)), _act(rng), per_channel=bool(rng.random() < 0.5),
                                bias=bool(rng.random() < 0.8))
    elif kind == "CONV_2D":
        x = _image(rng, net)
        y = net.conv_2d(x, int(rng.integers(1, 12)), activation=_act(rng), per_channel=bool(rng.random() < 0.7),
                        bias=bool(rng.random() < 0.8), **_spatial_args(rng, x))
    elif kind == "DEPTHWISE_CONV_2D":
        x = _image(rng, net)
        # Always with a bias: this TFLM build crashes in Prepare on a depthwise conv without one.
        y = net.depthwise_conv_2d(x, int(rng.integers(1, 4)), activation=_act(rng),
                                  per_channel=bool(rng.random() < 0.7), **_spatial_args(rng, x))
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        x = _image(rng, net)
        args = _spatial_args(rng, x)
        y = net.pool(x, "avg" if kind == "AVERAGE_POOL_2D" else "max", size=args["kernel"], stride=args["stride"],
                     padding=args["padding"], activation=_act(rng))
    elif kind == "ADD":
        shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
        a = net.input(shape)
        b = net.input(shape)
        y = net.add(a, b, _act(rng))
    elif kind == "RESHAPE":
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        x = net.input(shape)
        y = net.reshape(x, (1, int(np.prod(shape))))
    elif kind == "SOFTMAX":
        x = net.input((int(rng.integers(1, 4)), int(rng.integers(1, 30))), scale=float(rng.uniform(0.01, 0.3)))
        y = net.softmax(x, float(rng.choice([1.0, 1.0, 0.5, 2.0])))
    elif kind in ("LOGISTIC", "TANH"):
        # Every int8 value once (tests feed them), over a range of scales.
        x = net.input((1, 256), scale=float(rng.uniform(0.003, 0.2)))
        y = net.logistic(x) if kind == "LOGISTIC" else net.tanh(x)
    elif kind == "REQUANTIZE":
        x = net.input((int(rng.integers(1, 4)), int(rng.integers(1, 30))))
        y = net.requantize(x)
    else:
        raise KeyError(kind)
    net.output(y)
    return net.build()


RANDOM_MODELS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD",
                 "RESHAPE", "SOFTMAX", "LOGISTIC", "TANH", "REQUANTIZE")


def random_chain(rng: np.random.Generator, float_io: bool = False) -> bytes:
    """conv -> depthwise conv -> pool -> reshape -> fully connected -> softmax, random sizes."""
    net = Net(rng, float_io)
    x = net.input((1, int(rng.integers(10, 17)), int(rng.integers(10, 17)), int(rng.integers(1, 4))))
    x = net.conv_2d(x, int(rng.integers(2, 10)), stride=_pair(rng, 1, 2), activation="RELU")
    x = net.depthwise_conv_2d(x, int(rng.integers(1, 3)), padding=str(rng.choice(["SAME", "VALID"])),
                              activation="RELU6")
    x = net.pool(x, str(rng.choice(["avg", "max"])), size=(2, 2), stride=(2, 2))
    x = net.reshape(x, (1, int(np.prod(x.shape))))
    x = net.fully_connected(x, int(rng.integers(2, 8)), per_channel=bool(rng.random() < 0.5))
    net.output(net.softmax(x))
    return net.build()


def random_residual(rng: np.random.Generator, float_io: bool = False) -> bytes:
    """conv -> conv -> ADD with the first conv's output (a residual block) -> logistic."""
    net = Net(rng, float_io)
    c = int(rng.integers(1, 6))
    x = net.input((1, int(rng.integers(3, 9)), int(rng.integers(3, 9)), c))
    a = net.conv_2d(x, c, activation="RELU")
    b = net.conv_2d(a, c)
    y = net.add(a, b, activation=str(rng.choice(["NONE", "RELU"])))
    net.output(net.tanh(y) if rng.random() < 0.5 else net.logistic(y))
    return net.build()


# -- representative models (benchmarks) ----------------------------------------------------------

def cnn_1d(seed: int = 0, float_io: bool = True) -> bytes:
    """A small 1-D CNN over 2 s of 3-axis accelerometer at 50 Hz (128 x 3), 6 classes."""
    net = Net(np.random.default_rng(seed), float_io)
    x = net.input((1, 1, 128, 3))
    x = net.conv_2d(x, 16, kernel=(1, 5), stride=(1, 2), activation="RELU")
    x = net.conv_2d(x, 24, kernel=(1, 5), stride=(1, 2), activation="RELU")
    x = net.pool(x, "max", size=(1, 2), stride=(1, 2))
    x = net.conv_2d(x, 32, kernel=(1, 3), activation="RELU")
    x = net.pool(x, "avg", size=(1, 16), stride=(1, 16))
    x = net.reshape(x, (1, 32))
    x = net.fully_connected(x, 6)
    net.output(net.softmax(x))
    return net.build()


def cnn_2d(seed: int = 0, float_io: bool = True) -> bytes:
    """A small 2-D conv net on 32 x 32 grey images: conv, depthwise-separable blocks, 10 classes."""
    net = Net(np.random.default_rng(seed), float_io)
    x = net.input((1, 32, 32, 1))
    x = net.conv_2d(x, 8, kernel=(3, 3), stride=(2, 2), activation="RELU6")
    x = net.depthwise_conv_2d(x, 1, activation="RELU6")
    x = net.conv_2d(x, 16, kernel=(1, 1), activation="RELU6")
    x = net.depthwise_conv_2d(x, 1, stride=(2, 2), activation="RELU6")
    x = net.conv_2d(x, 32, kernel=(1, 1), activation="RELU6")
    x = net.pool(x, "avg", size=(8, 8), stride=(8, 8))
    x = net.reshape(x, (1, 32))
    x = net.fully_connected(x, 10)
    net.output(net.softmax(x))
    return net.build()


def mlp(seed: int = 0, float_io: bool = True) -> bytes:
    """An MLP on 64 features: 64 -> 32 -> 16 -> 4."""
    net = Net(np.random.default_rng(seed), float_io)
    x = net.input((1, 64))
    x = net.fully_connected(x, 32, "RELU")
    x = net.fully_connected(x, 16, "RELU")
    x = net.fully_connected(x, 4)
    net.output(net.softmax(x))
    return net.build()


# -- the oracle ------------------------------------------------------------------------------------

def run_tflm(model: bytes, inputs, arena_size: int = 1 << 20) -> list[np.ndarray]:
    """Run a model in the TFLM interpreter (the `tflite-micro` package): one array per output."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    for k, x in enumerate(inputs):
        interpreter.set_input(np.ascontiguousarray(x), k)
    interpreter.invoke()
    n_outputs = tflite.Model.GetRootAs(model, 0).Subgraphs(0).OutputsLength()
    return [np.array(interpreter.get_output(k), copy=True) for k in range(n_outputs)]
