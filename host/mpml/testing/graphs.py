"""Seeded random graphs for testing the kernels and runtimes against each other.

`random_graph(rng)` builds a valid `Graph` (docs/ops.md params, stored
layouts) from a chain of random ops over a random input, sometimes with a
second input (a residual ADD) or a second output; `random_tree_graph(rng)` a
TREE_ENSEMBLE model; `mlp()`, `convnet()` and `trivial_chain()` fixed shapes
for benchmarks. Quantization values are random but plausible, with a few
hostile-looking multipliers and shifts mixed in (`edge_cases=True`) so the
integer arithmetic's corners (saturation, wraparound, shift clamps) are hit.
Every backend must give the host reference's bytes on all of them.
"""

from __future__ import annotations

import numpy as np

from mpml import ops
from mpml.graph import Edge, Graph, Op, Tensor, block_weights

I32 = np.int32


class _Builder:
    def __init__(self, rng: np.random.Generator, edge_cases: bool):
        self.rng = rng
        self.edge_cases = edge_cases
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []

    def act(self, name: str, shape, dtype: str = "int8") -> int:
        r = self.rng
        self.tensors.append(Tensor(name, dtype, tuple(shape), scale=float(np.float32(r.uniform(0.005, 0.2))),
                                   zero_point=int(r.integers(-20, 21))))
        return len(self.tensors) - 1

    def const(self, name: str, data, dtype: str, shape=None, flags: int = 0) -> int:
        data = np.asarray(data)
        self.tensors.append(Tensor(name, dtype, tuple(shape if shape is not None else data.shape),
                                   data=data, flags=flags))
        return len(self.tensors) - 1

    def nbytes(self, t: int) -> int:
        return self.tensors[t].nbytes

    def requant_arrays(self, n: int, acc_bits: int) -> tuple[int, int]:
        """mult and shift tensors for n channels, scaling ~2**acc_bits down to int8."""
        r = self.rng
        mult = r.integers(1 << 30, (1 << 31) - 1, n, dtype=np.int64)
        shift = -(acc_bits - 7) + r.integers(-2, 3, n)
        if self.edge_cases:
            wild = r.random(n) < 0.1
            mult = np.where(wild, r.integers(-2**31, 2**31, n, dtype=np.int64), mult)
            shift = np.where(wild, r.integers(-31, 32, n), shift)
        return (self.const("mult", mult.astype(I32), "int32"),
                self.const("shift", shift.astype(I32), "int32"))

    def act_range(self) -> tuple[int, int]:
        r = self.rng
        if r.random() < 0.6:
            return -128, 127
        lo = int(r.integers(-128, 0))
        return lo, int(r.integers(lo, 128))

    def bias(self, n: int, big: int) -> int:
        r = self.rng
        b = r.integers(-big, big + 1, n, dtype=np.int64)
        if self.edge_cases and r.random() < 0.1:
            b[r.integers(0, n)] = int(r.choice([-2**31, 2**31 - 1]))
        return self.const("bias", b.astype(I32), "int32", flags=4)

    # -- ops: each takes its input tensor and shape, returns (output, shape) --

    def fully_connected(self, x: int, _shape):
        r = self.rng
        n = self.nbytes(x)
        batches = int(r.choice([d for d in (1, 2, 3) if n % d == 0]))
        i = n // batches
        o = int(r.integers(1, 21))
        w = r.integers(-128, 128, (o, i))
        tw = self.const("fc_w", block_weights(w), "uint8", shape=(o, i), flags=3)
        tb = self.bias(o, 1 << 14)
        tm, ts = self.requant_arrays(o, 14 + int(np.log2(i + 1)) // 2)
        lo, hi = self.act_range()
        y = self.act("fc_out", (batches, o))
        self.ops.append(Op(ops.FULLY_CONNECTED, [x, tw, tb, tm, ts], [y],
                           [batches, i, o, int(r.integers(-128, 128)), lo, hi]))
        return y, (1, 1, batches, o)

    def _geometry(self, shape, k_max: int = 3):
        r = self.rng
        b, ih, iw, ic = shape
        kh, kw = int(r.integers(1, min(k_max, ih) + 1)), int(r.integers(1, min(k_max, iw) + 1))
        sh, sw = int(r.integers(1, 3)), int(r.integers(1, 3))
        dh = int(r.integers(1, 3)) if r.random() < 0.2 else 1
        dw = int(r.integers(1, 3)) if r.random() < 0.2 else 1
        pt, pl = int(r.integers(0, kh)), int(r.integers(0, kw))
        oh = max(1, (ih + 2 * pt - dh * (kh - 1) - 1) // sh + 1)
        ow = max(1, (iw + 2 * pl - dw * (kw - 1) - 1) // sw + 1)
        return b, ih, iw, ic, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl

    def conv_2d(self, x: int, shape):
        r = self.rng
        b, ih, iw, ic, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl = self._geometry(shape)
        oc = int(r.integers(1, 13))
        w = r.integers(-128, 128, (oc, kh * kw * ic))
        tw = self.const("conv_w", block_weights(w), "uint8", shape=(oc, kh, kw, ic), flags=3)
        tb = self.bias(oc, 1 << 14)
        tm, ts = self.requant_arrays(oc, 14 + int(np.log2(kh * kw * ic + 1)) // 2)
        lo, hi = self.act_range()
        y = self.act("conv_out", (b, oh, ow, oc))
        in_zp = int(r.integers(-128, 128))
        self.ops.append(Op(ops.CONV_2D, [x, tw, tb, tm, ts], [y],
                           [b, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl,
                            in_zp, int(r.integers(-128, 128)), lo, hi]))
        return y, (b, oh, ow, oc)

    def depthwise_conv_2d(self, x: int, shape):
        r = self.rng
        b, ih, iw, ic, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl = self._geometry(shape)
        dm = int(r.choice([1, 1, 2]))
        oc = ic * dm
        w = r.integers(-128, 128, (1, kh, kw, oc)).astype(np.int8)
        tw = self.const("dw_w", w, "int8")
        tb = self.bias(oc, 1 << 12)
        tm, ts = self.requant_arrays(oc, 12 + int(np.log2(kh * kw + 1)) // 2)
        lo, hi = self.act_range()
        y = self.act("dw_out", (b, oh, ow, oc))
        self.ops.append(Op(ops.DEPTHWISE_CONV_2D, [x, tw, tb, tm, ts], [y],
                           [b, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl,
                            dm, int(r.integers(-128, 128)), int(r.integers(-128, 128)), lo, hi]))
        return y, (b, oh, ow, oc)

    def _pool(self, code: int, x: int, shape):
        b, ih, iw, c, oh, ow, fh, fw, sh, sw, _dh, _dw, pt, pl = self._geometry(shape)
        lo, hi = self.act_range()
        y = self.act("pool_out", (b, oh, ow, c))
        self.ops.append(Op(code, [x], [y], [b, ih, iw, c, oh, ow, fh, fw, sh, sw, pt, pl, lo, hi]))
        return y, (b, oh, ow, c)

    def average_pool_2d(self, x, shape):
        return self._pool(ops.AVERAGE_POOL_2D, x, shape)

    def max_pool_2d(self, x, shape):
        return self._pool(ops.MAX_POOL_2D, x, shape)

    def _lut(self, code: int, x: int, shape):
        table = self.rng.integers(-128, 128, 256).astype(np.int8)
        tt = self.const("table", table, "int8")
        y = self.act("lut_out", shape)
        self.ops.append(Op(code, [x, tt], [y], [self.nbytes(x)]))
        return y, shape

    def logistic(self, x, shape):
        return self._lut(ops.LOGISTIC, x, shape)

    def tanh(self, x, shape):
        return self._lut(ops.TANH, x, shape)

    def requantize(self, x: int, shape):
        r = self.rng
        mult = int(r.integers(1 << 30, (1 << 31) - 1))
        sh = int(r.integers(-3, 2))
        if self.edge_cases and r.random() < 0.15:
            mult, sh = int(r.integers(-2**31, 2**31)), int(r.integers(-31, 32))
        y = self.act("rq_out", shape)
        self.ops.append(Op(ops.REQUANTIZE, [x], [y],
                           [self.nbytes(x), int(r.integers(-128, 128)), int(r.integers(-128, 128)), mult, sh]))
        return y, shape

    def reshape(self, x: int, shape):
        n = self.nbytes(x)
        y = self.act("reshape_out", (1, n))
        self.ops.append(Op(ops.RESHAPE, [x], [y], [n]))
        return y, (1, 1, 1, n)

    def add(self, x: int, shape, other: int | None = None):
        r = self.rng
        if other is None:  # a residual branch: x through a lookup table
            other, _ = self._lut(ops.TANH, x, shape)
        mults = r.integers(1 << 30, (1 << 31) - 1, 3)
        shifts = [int(r.integers(-2, 1)), int(r.integers(-2, 1)), int(r.integers(-21, -17))]
        left = 20
        if self.edge_cases and r.random() < 0.15:
            mults = r.integers(-2**31, 2**31, 3)
            shifts = [int(s) for s in r.integers(-31, 32, 3)]
            left = int(r.integers(0, 32))
        lo, hi = self.act_range()
        y = self.act("add_out", shape)
        self.ops.append(Op(ops.ADD, [x, other], [y],
                           [self.nbytes(x), int(r.integers(-128, 128)), int(r.integers(-128, 128)), left,
                            int(mults[0]), shifts[0], int(mults[1]), shifts[1], int(mults[2]), shifts[2],
                            int(r.integers(-128, 128)), lo, hi]))
        return y, shape

    def softmax(self, x: int, shape, outer: int | None = None):
        r = self.rng
        n = self.nbytes(x)
        if outer is None:
            outer = int(r.choice([d for d in (1, 2, 4) if n % d == 0]))
        try:
            from mpml.reference.tflm import softmax_tables
            est, et = softmax_tables(float(r.choice([1.0, 0.5, 2.0])), float(r.uniform(0.01, 0.3)))
        except ImportError:  # the reference is not there yet: random tables
            et = r.integers(0, 2**31 - 1, 256)
            est = et >> 12
        tes = self.const("exp_sum_table", np.asarray(est).astype(I32), "int32")
        tet = self.const("exp_table", np.asarray(et).astype(I32), "int32")
        y = self.act("softmax_out", shape)
        self.tensors[y].scale, self.tensors[y].zero_point = 1 / 256, -128
        self.ops.append(Op(ops.SOFTMAX, [x, tes, tet], [y], [outer, n // outer]))
        return y, shape


SPATIAL = ("conv_2d", "depthwise_conv_2d", "average_pool_2d", "max_pool_2d",
           "logistic", "tanh", "requantize", "add")
FLAT = ("fully_connected", "reshape", "logistic", "tanh", "requantize", "add", "softmax")


def random_graph(rng: np.random.Generator, edge_cases: bool = True, max_ops: int = 6) -> Graph:
    """A random chain of ops over one (sometimes two) inputs, one or two outputs."""
    b = _Builder(rng, edge_cases)
    shape = (1, int(rng.integers(1, 8)), int(rng.integers(1, 8)), int(rng.integers(1, 6)))
    x0 = b.act("input", shape)
    inputs = [x0]
    outputs = []
    x = x0
    n_ops = int(rng.integers(1, max_ops + 1))
    flat = False
    while len(b.ops) < n_ops:
        name = str(rng.choice(FLAT if flat else SPATIAL + ("fully_connected",)))
        if name == "add" and len(inputs) == 1 and rng.random() < 0.3:
            x2 = b.act("input2", b.tensors[x].shape)
            inputs.append(x2)
            x, shape = b.add(x, shape, other=x2)
        else:
            x, shape = getattr(b, name)(x, shape)
        flat = flat or name in ("fully_connected", "reshape")
        if len(b.ops) < n_ops and not outputs and rng.random() < 0.15:
            outputs.append(x)  # an intermediate tensor as a second output
    outputs.append(x)
    float_io = bool(rng.random() < 0.5)
    g = Graph(f"rand{int(rng.integers(1 << 30))}", b.tensors, b.ops,
              [Edge(t, f"in{k}", float_io=float_io) for k, t in enumerate(inputs)],
              [Edge(t, f"out{k}", float_io=float_io) for k, t in enumerate(dict.fromkeys(outputs))],
              version="0.1")
    g.validate()
    return g


def random_tree_graph(rng: np.random.Generator) -> Graph:
    """A TREE_ENSEMBLE model: int8 or int16 features, int32 scores."""
    n_feat = int(rng.integers(1, 10))
    n_out = int(rng.integers(1, 5))
    in_bytes = int(rng.choice([1, 2]))
    nodes: list[tuple[int, int, int, int]] = []
    leaves: list[list[int]] = []
    roots = []

    def grow(depth: int, root: bool = False) -> int:
        if not root and (depth == 0 or rng.random() < 0.25):
            leaves.append([int(v) for v in rng.integers(-3000, 3001, n_out)])
            return ops.TREE_LEAF_FLAG | (len(leaves) - 1)
        k = len(nodes)
        nodes.append((0, 0, 0, 0))
        hi = 127 if in_bytes == 1 else 3000
        left, right = grow(depth - 1), grow(depth - 1)
        nodes[k] = (int(rng.integers(-hi, hi + 1)), int(rng.integers(0, n_feat)), left, right)
        return k

    for _ in range(int(rng.integers(1, 6))):
        # roots here are nodes; one-leaf trees (a root that is a leaf) are in tests/kernels/cases.py
        roots.append(grow(int(rng.integers(1, 5)), root=True))
    b = _Builder(rng, False)
    dtype = "int8" if in_bytes == 1 else "int16"
    x = b.act("features", (1, n_feat), dtype)
    rec = np.array(nodes, dtype=np.int64)
    raw = np.zeros((len(nodes), 4), np.uint16)
    raw[:, 0] = rec[:, 0].astype(np.int16).view(np.uint16)
    raw[:, 1:] = rec[:, 1:]
    tn = b.const("nodes", raw.reshape(-1).view(np.uint8), "uint8")
    tr = b.const("roots", np.array(roots, np.uint16), "uint16")
    tl = b.const("leaves", np.array(leaves, np.int16).reshape(-1), "int16")
    y = b.act("scores", (1, n_out), "int32")
    b.tensors[y].scale = 0.001
    b.ops.append(Op(ops.TREE_ENSEMBLE, [x, tn, tr, tl], [y],
                    [len(roots), n_feat, n_out, len(nodes), len(leaves), in_bytes]))
    g = Graph("trees", b.tensors, b.ops, [Edge(x, "features", float_io=False)],
              [Edge(y, "scores", labels=[f"c{k}" for k in range(n_out)], float_io=True)])
    g.validate()
    return g


def mlp(seed: int = 0, sizes=(64, 32, 16, 4)) -> Graph:
    """A plain MLP: FULLY_CONNECTED layers, then SOFTMAX; float edges."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng, False)
    x = b.act("input", (1, sizes[0]))
    x0 = x
    for n in sizes[1:]:
        i = b.nbytes(x)
        w = rng.integers(-128, 128, (n, i))
        tw = b.const("fc_w", block_weights(w), "uint8", shape=(n, i), flags=3)
        tb = b.bias(n, 1 << 14)
        tm, ts = b.requant_arrays(n, 14 + int(np.log2(i)) // 2)
        y = b.act("fc_out", (1, n))
        b.ops.append(Op(ops.FULLY_CONNECTED, [x, tw, tb, tm, ts], [y], [1, i, n, 0, -128, 127]))
        x = y
    x, _shape = b.softmax(x, (1, sizes[-1]), outer=1)
    g = Graph("mlp", b.tensors, b.ops, [Edge(x0, "x")],
              [Edge(x, "p", labels=[f"class{k}" for k in range(sizes[-1])])], version="1.0")
    g.validate()
    return g


def convnet(seed: int = 0, hw: int = 12, channels: int = 8, classes: int = 4) -> Graph:
    """A small image classifier: CONV_2D, DEPTHWISE_CONV_2D, pooling, FULLY_CONNECTED, SOFTMAX."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng, False)
    x0 = b.act("image", (1, hw, hw, 1))

    def conv(x, shape, oc, k, stride, depthwise=False):
        bt, ih, iw, ic = shape
        pad = k // 2
        oh, ow = (ih + 2 * pad - k) // stride + 1, (iw + 2 * pad - k) // stride + 1
        geo = [bt, ih, iw, ic, oh, ow, oc, k, k, stride, stride, 1, 1, pad, pad]
        if depthwise:
            tw = b.const("dw_w", rng.integers(-128, 128, (1, k, k, oc)).astype(np.int8), "int8")
            extra = [oc // ic]
            code, bits = ops.DEPTHWISE_CONV_2D, 12 + int(np.log2(k * k)) // 2
        else:
            w = rng.integers(-128, 128, (oc, k * k * ic))
            tw = b.const("conv_w", block_weights(w), "uint8", shape=(oc, k, k, ic), flags=3)
            extra = []
            code, bits = ops.CONV_2D, 14 + int(np.log2(k * k * ic)) // 2
        tb = b.bias(oc, 1 << 12)
        tm, ts = b.requant_arrays(oc, bits)
        y = b.act("conv_out", (bt, oh, ow, oc))
        b.ops.append(Op(code, [x, tw, tb, tm, ts], [y], geo + extra + [0, -3, -128, 127]))
        return y, (bt, oh, ow, oc)

    x, shape = conv(x0, (1, hw, hw, 1), channels, 3, 1)
    x, shape = conv(x, shape, channels, 3, 2, depthwise=True)
    x, shape = conv(x, shape, 2 * channels, 1, 1)
    x, shape = b.max_pool_2d(x, shape)
    x, shape = b.fully_connected(x, shape)
    g = Graph("convnet", b.tensors, b.ops, [Edge(x0, "image")], [Edge(x, "scores")], version="1.0")
    g.validate()
    return g


def trivial_chain(n: int, size: int = 4) -> Graph:
    """n cheap ops (RESHAPE of `size` bytes): what run() costs beyond the kernels."""
    b = _Builder(np.random.default_rng(0), False)
    x = x0 = b.act("x", (1, size))
    for _ in range(n):
        y = b.act("y", (1, size))
        b.ops.append(Op(ops.RESHAPE, [x], [y], [size]))
        x = y
    return Graph(f"chain{n}", b.tensors, b.ops, [Edge(x0, "x", float_io=False)], [Edge(x, "y", float_io=False)])
