"""Layers of mpml's numpy network library (float32, channels last).

Every layer maps a batch to a batch: 1-D signals are `[batch, length,
channels]`, vectors `[batch, features]`. A layer is built once for its input
shape (without the batch axis), then `forward` caches what `backward` needs
when `training` is true. Parameters live in `params` and their gradients in
`grads` under the same names; `kernel` entries take L2, `bias` entries do not.

The arithmetic mirrors what the int8 graph does after quantization
(docs/ops.md): SAME padding splits like TFLM's ComputePaddingWithOffset (the
odd extra on the right), an average pool counts only the cells inside the
input, fused activations are applied to a layer's output. So the quantizer
maps every layer to one mpml op with the same geometry.
"""

from __future__ import annotations

import math

import numpy as np

from mpml.reference import tflm

__all__ = [
    "ACTIVATIONS", "Layer", "Dense", "Conv1D", "DepthwiseConv1D", "MaxPool1D", "AvgPool1D",
    "GlobalAvgPool1D", "Flatten", "Softmax", "separable_conv1d", "LAYERS", "layer_from_config",
]

F32 = np.float32
ACTIVATIONS = ("none", "relu", "relu6")


def _activation(name: str | None) -> str:
    name = (name or "none").lower()
    if name == "linear":
        name = "none"
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r}: one of {', '.join(ACTIVATIONS)}")
    return name


def _apply(act: str, z: np.ndarray) -> np.ndarray:
    if act == "relu":
        return np.maximum(z, F32(0))
    if act == "relu6":
        return np.clip(z, F32(0), F32(6))
    return z


def _act_grad(act: str, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    # In terms of the output y: relu passes where y > 0, relu6 where 0 < y < 6.
    if act == "relu":
        return dy * (y > 0)
    if act == "relu6":
        return dy * ((y > 0) & (y < 6))
    return dy


def _init_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int, act: str) -> np.ndarray:
    # He uniform before a ReLU, Glorot uniform otherwise.
    limit = math.sqrt(6.0 / fan_in) if act != "none" else math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(F32)


class Layer:
    """Base: a layer without parameters that passes its input through."""

    kind = "Layer"
    activation = "none"

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: tuple[int, ...] = ()
        self.output_shape: tuple[int, ...] = ()

    def build(self, input_shape: tuple[int, ...], rng: np.random.Generator) -> tuple[int, ...]:
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = self._out_shape(self.input_shape)
        self._init(rng)
        return self.output_shape

    def _out_shape(self, s: tuple[int, ...]) -> tuple[int, ...]:
        return s

    def _init(self, rng: np.random.Generator) -> None:
        pass

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy

    def config(self) -> dict:
        return {}

    def n_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.kind}({args})"


class Dense(Layer):
    """y = act(x @ kernel + bias); x is [batch, in]."""

    kind = "Dense"

    def __init__(self, units: int, activation: str | None = "none") -> None:
        super().__init__()
        self.units = int(units)
        self.activation = _activation(activation)

    def _out_shape(self, s):
        if len(s) != 1:
            raise ValueError(f"Dense takes vectors, got shape {s}: put a Flatten or GlobalAvgPool1D before it")
        return (self.units,)

    def _init(self, rng):
        n_in = self.input_shape[0]
        self.params = {"kernel": _init_uniform(rng, (n_in, self.units), n_in, self.units, self.activation),
                       "bias": np.zeros(self.units, F32)}

    def forward(self, x, training=False):
        y = _apply(self.activation, x @ self.params["kernel"] + self.params["bias"])
        if training:
            self._x, self._y = x, y
        return y

    def backward(self, dy):
        dz = _act_grad(self.activation, self._y, dy)
        self.grads = {"kernel": self._x.T @ dz, "bias": dz.sum(axis=0)}
        return dz @ self.params["kernel"].T

    def config(self):
        return {"units": self.units, "activation": self.activation}


class _Windowed(Layer):
    """Shared geometry of the layers that slide a window along the length axis."""

    def _geometry(self, length: int, k: int, stride: int, dilation: int, padding: str) -> None:
        self.out_len = tflm.compute_out_size(padding.upper(), length, k, stride, dilation)
        if self.out_len < 1:
            raise ValueError(f"{self.kind}: window of {(k - 1) * dilation + 1} does not fit length {length}")
        self.pad_left = tflm.compute_padding(stride, dilation, length, k, self.out_len) if padding == "same" else 0
        span = (self.out_len - 1) * stride + (k - 1) * dilation + 1
        self.pad_right = max(span - length - self.pad_left, 0)
        self._k, self._stride, self._dil = k, stride, dilation

    def _taps(self, xp: np.ndarray) -> list[np.ndarray]:
        """Per tap k, the [batch, out_len, channels] input it sees (views of the padded input)."""
        end = self._stride * (self.out_len - 1) + 1
        return [xp[:, k * self._dil:k * self._dil + end:self._stride] for k in range(self._k)]

    def _pad(self, x: np.ndarray, value: float = 0.0) -> np.ndarray:
        if not (self.pad_left or self.pad_right):
            return x
        return np.pad(x, ((0, 0), (self.pad_left, self.pad_right), (0, 0)), constant_values=value)

    def _scatter(self, dtaps, length: int, channels: int, batch: int) -> np.ndarray:
        """Sum per-tap gradients back onto the input (inverse of _taps)."""
        dxp = np.zeros((batch, length + self.pad_left + self.pad_right, channels), F32)
        end = self._stride * (self.out_len - 1) + 1
        for k, d in enumerate(dtaps):
            dxp[:, k * self._dil:k * self._dil + end:self._stride] += d
        return dxp[:, self.pad_left:self.pad_left + length]


def _padding(p: str) -> str:
    p = p.lower()
    if p not in ("same", "valid"):
        raise ValueError(f"padding {p!r}: 'same' or 'valid'")
    return p


class Conv1D(_Windowed):
    """1-D convolution over [batch, length, channels]: im2col and one matmul.

    kernel is [kernel_size, in_channels, filters]; quantized as CONV_2D with height 1.
    """

    kind = "Conv1D"

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "same",
                 dilation: int = 1, activation: str | None = "none") -> None:
        super().__init__()
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.strides, self.dilation = int(strides), int(dilation)
        self.padding = _padding(padding)
        self.activation = _activation(activation)

    def _out_shape(self, s):
        if len(s) != 2:
            raise ValueError(f"Conv1D takes [length, channels], got shape {s}")
        self._geometry(s[0], self.kernel_size, self.strides, self.dilation, self.padding)
        return (self.out_len, self.filters)

    def _init(self, rng):
        k, c = self.kernel_size, self.input_shape[1]
        self.params = {"kernel": _init_uniform(rng, (k, c, self.filters), k * c, k * self.filters, self.activation),
                       "bias": np.zeros(self.filters, F32)}

    def forward(self, x, training=False):
        b = x.shape[0]
        k, c = self.kernel_size, self.input_shape[1]
        if k == 1 and self.strides == 1:
            cols = x.reshape(b * self.out_len, c)
        else:
            cols = np.stack(self._taps(self._pad(x)), axis=2).reshape(b * self.out_len, k * c)
        z = cols @ self.params["kernel"].reshape(k * c, self.filters) + self.params["bias"]
        y = _apply(self.activation, z).reshape(b, self.out_len, self.filters)
        if training:
            self._cols, self._y = cols, y
        return y

    def backward(self, dy):
        b = dy.shape[0]
        k, c = self.kernel_size, self.input_shape[1]
        dz = _act_grad(self.activation, self._y, dy).reshape(b * self.out_len, self.filters)
        w = self.params["kernel"].reshape(k * c, self.filters)
        self.grads = {"kernel": (self._cols.T @ dz).reshape(k, c, self.filters), "bias": dz.sum(axis=0)}
        dcols = (dz @ w.T).reshape(b, self.out_len, k, c)
        if k == 1 and self.strides == 1:
            return dcols.reshape(b, self.out_len, c)
        return self._scatter([dcols[:, :, j] for j in range(k)], self.input_shape[0], c, b)

    def config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation": self.dilation, "activation": self.activation}


class DepthwiseConv1D(_Windowed):
    """Each input channel convolved with its own `depth_multiplier` filters.

    kernel is [kernel_size, in_channels, depth_multiplier]; output channel
    c * depth_multiplier + m reads input channel c (TFLite's DEPTHWISE_CONV_2D order).
    """

    kind = "DepthwiseConv1D"

    def __init__(self, kernel_size: int, depth_multiplier: int = 1, strides: int = 1, padding: str = "same",
                 dilation: int = 1, activation: str | None = "none") -> None:
        super().__init__()
        self.kernel_size, self.depth_multiplier = int(kernel_size), int(depth_multiplier)
        self.strides, self.dilation = int(strides), int(dilation)
        self.padding = _padding(padding)
        self.activation = _activation(activation)

    def _out_shape(self, s):
        if len(s) != 2:
            raise ValueError(f"DepthwiseConv1D takes [length, channels], got shape {s}")
        self._geometry(s[0], self.kernel_size, self.strides, self.dilation, self.padding)
        return (self.out_len, s[1] * self.depth_multiplier)

    def _init(self, rng):
        k, c, m = self.kernel_size, self.input_shape[1], self.depth_multiplier
        self.params = {"kernel": _init_uniform(rng, (k, c, m), k, k * m, self.activation),
                       "bias": np.zeros(c * m, F32)}

    def forward(self, x, training=False):
        b = x.shape[0]
        c, m = self.input_shape[1], self.depth_multiplier
        w = self.params["kernel"]
        taps = self._taps(self._pad(x))
        z = np.zeros((b, self.out_len, c, m), F32)
        for j, t in enumerate(taps):
            z += t[..., None] * w[j]
        z = z.reshape(b, self.out_len, c * m) + self.params["bias"]
        y = _apply(self.activation, z)
        if training:
            self._taps_cache, self._y = taps, y
        return y

    def backward(self, dy):
        b = dy.shape[0]
        c, m = self.input_shape[1], self.depth_multiplier
        dz = _act_grad(self.activation, self._y, dy)
        dz4 = dz.reshape(b, self.out_len, c, m)
        w = self.params["kernel"]
        dw = np.empty_like(w)
        dtaps = []
        for j, t in enumerate(self._taps_cache):
            if m == 1:
                dw[j, :, 0] = (t * dz4[..., 0]).sum(axis=(0, 1))
                dtaps.append(dz4[..., 0] * w[j, :, 0])
            else:
                dw[j] = np.einsum("boc,bocm->cm", t, dz4, optimize=True)
                dtaps.append((dz4 * w[j]).sum(axis=3))
        self.grads = {"kernel": dw, "bias": dz.reshape(-1, c * m).sum(axis=0)}
        return self._scatter(dtaps, self.input_shape[0], c, b)

    def config(self):
        return {"kernel_size": self.kernel_size, "depth_multiplier": self.depth_multiplier,
                "strides": self.strides, "padding": self.padding, "dilation": self.dilation,
                "activation": self.activation}


def separable_conv1d(filters: int, kernel_size: int, strides: int = 1, padding: str = "same",
                     activation: str | None = "relu", depth_multiplier: int = 1) -> list[Layer]:
    """A depthwise-separable block: DepthwiseConv1D (no activation), then a pointwise Conv1D (k=1)."""
    return [DepthwiseConv1D(kernel_size, depth_multiplier, strides, padding),
            Conv1D(filters, 1, activation=activation)]


class _Pool1D(_Windowed):
    def __init__(self, pool_size: int = 2, strides: int | None = None, padding: str = "valid") -> None:
        super().__init__()
        self.pool_size = int(pool_size)
        self.strides = int(strides or pool_size)
        self.padding = _padding(padding)

    def _out_shape(self, s):
        if len(s) != 2:
            raise ValueError(f"{self.kind} takes [length, channels], got shape {s}")
        self._geometry(s[0], self.pool_size, self.strides, 1, self.padding)
        return (self.out_len, s[1])

    def config(self):
        return {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


class MaxPool1D(_Pool1D):
    """Maximum over each window (padding never wins: it is -inf)."""

    kind = "MaxPool1D"

    def forward(self, x, training=False):
        taps = self._taps(self._pad(x, -np.inf))
        y = taps[0].copy()
        arg = np.zeros(y.shape, np.int8) if training else None
        for j in range(1, len(taps)):  # elementwise: much faster than argmax over a middle axis
            more = taps[j] > y  # strict: the first of equal values wins, as argmax
            np.copyto(y, taps[j], where=more)
            if training:
                arg[more] = j
        if training:
            self._arg, self._b = arg, x.shape[0]
        return y

    def backward(self, dy):
        dtaps = [dy * (self._arg == j) for j in range(self.pool_size)]
        return self._scatter(dtaps, self.input_shape[0], self.input_shape[1], self._b)


class AvgPool1D(_Pool1D):
    """Mean over each window's cells inside the input (as TFLM's AVERAGE_POOL_2D counts them)."""

    kind = "AvgPool1D"

    def _counts(self) -> np.ndarray:
        ones = self._pad(np.ones((1, self.input_shape[0], 1), F32))
        return np.stack(self._taps(ones), axis=2).sum(axis=2)[0]  # [out, 1]

    def forward(self, x, training=False):
        self._n = self._counts()
        s = np.zeros((x.shape[0], self.out_len, x.shape[2]), F32)
        for t in self._taps(self._pad(x)):
            s += t
        if training:
            self._b = x.shape[0]
        return s / self._n

    def backward(self, dy):
        d = dy / self._n
        return self._scatter([d] * self.pool_size, self.input_shape[0], self.input_shape[1], self._b)


class GlobalAvgPool1D(Layer):
    """Mean over the whole length: [batch, length, channels] -> [batch, channels]."""

    kind = "GlobalAvgPool1D"

    def _out_shape(self, s):
        if len(s) != 2:
            raise ValueError(f"GlobalAvgPool1D takes [length, channels], got shape {s}")
        return (s[1],)

    def forward(self, x, training=False):
        return x.mean(axis=1, dtype=F32)

    def backward(self, dy):
        n = self.input_shape[0]
        return np.broadcast_to(dy[:, None, :] / F32(n), (dy.shape[0], n, dy.shape[1])).copy()


class Flatten(Layer):
    """[batch, ...] -> [batch, prod(...)], row-major (the int8 tensor's byte order)."""

    kind = "Flatten"

    def _out_shape(self, s):
        return (int(np.prod(s)),)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape((dy.shape[0],) + self.input_shape)


class Softmax(Layer):
    """Softmax over the last axis: a classifier's head (quantized as TFLM's int8 SOFTMAX)."""

    kind = "Softmax"

    def _out_shape(self, s):
        if len(s) != 1:
            raise ValueError(f"Softmax takes vectors, got shape {s}")
        return s

    def forward(self, x, training=False):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
        if training:
            self._y = y
        return y

    def backward(self, dy):
        y = self._y
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


LAYERS = {cls.kind: cls for cls in (Dense, Conv1D, DepthwiseConv1D, MaxPool1D, AvgPool1D, GlobalAvgPool1D,
                                    Flatten, Softmax)}


def layer_from_config(kind: str, config: dict) -> Layer:
    if kind not in LAYERS:
        raise ValueError(f"unknown layer kind {kind!r} (known: {', '.join(LAYERS)})")
    return LAYERS[kind](**config)
