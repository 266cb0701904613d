"""The model graph as the board runs it.

A `Graph` is what a `.mpml` blob holds, in host objects: tensors (constants
already in their stored layout, see docs/blob-format.md), ops with the exact
int32 params their kernels take (docs/ops.md), and the model's inputs and
outputs. Importers and the quantizer build one; the blob writer serialises it;
the host reference runs it exactly as the board will.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mpml import blobfmt, ops

DTYPES: dict[str, int] = {name: code for code, (name, _size) in blobfmt.DTYPES.items()}


@dataclass
class Tensor:
    """One tensor. Constants carry `data`; activations are placed in the arena."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None
    scale: float = 0.0
    zero_point: int = 0
    flags: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"tensor {self.name!r}: unknown dtype {self.dtype!r}")
        self.shape = tuple(int(d) for d in self.shape)
        if len(self.shape) > blobfmt.MAX_NDIM:
            raise ValueError(f"tensor {self.name!r}: {len(self.shape)} dims, at most {blobfmt.MAX_NDIM}")
        if self.data is not None:
            self.data = np.ascontiguousarray(self.data, dtype=np.dtype(self.dtype).newbyteorder("<"))
            if self.data.size != self.size:
                raise ValueError(f"tensor {self.name!r}: {self.data.size} values for shape {self.shape}")
            # the stored bytes in stored order (blocked layouts included), seen in the tensor's shape
            self.data = self.data.reshape(self.shape)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * blobfmt.DTYPES[DTYPES[self.dtype]][1]


@dataclass
class Op:
    """One op: opcode, tensor indices (inputs, outputs) and its kernel params."""

    code: int
    inputs: list[int]
    outputs: list[int]
    params: list[int]

    @property
    def name(self) -> str:
        return ops.name(self.code)


@dataclass
class Edge:
    """A model input or output: its tensor, a name, class labels, float conversion."""

    tensor: int
    name: str = ""
    labels: list[str] = field(default_factory=list)
    float_io: bool = True


@dataclass
class Graph:
    """A whole model as the board runs it."""

    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[Edge]
    outputs: list[Edge]
    version: str = ""
    features: bytes = b""

    def add_tensor(self, tensor: Tensor) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def validate(self) -> None:
        """Raise ValueError if any op's tensors do not fit its params (ops.slot_sizes)."""
        n = len(self.tensors)
        for k, op in enumerate(self.ops):
            where = f"op {k} ({op.name})"
            if op.code not in ops.OPS:
                raise ValueError(f"{where}: unknown opcode {op.code}")
            _name, ins, outs, params = ops.OPS[op.code]
            if (len(op.inputs), len(op.outputs), len(op.params)) != (len(ins), len(outs), len(params)):
                raise ValueError(f"{where}: expects {len(ins)} inputs, {len(outs)} outputs, {len(params)} params")
            refs = op.inputs + op.outputs
            if any(not 0 <= t < n for t in refs):
                raise ValueError(f"{where}: tensor index out of range")
            sizes = ops.slot_sizes(op.code, op.params)
            for slot, t, want in zip(ins + outs, refs, sizes):
                if self.tensors[t].nbytes != want:
                    raise ValueError(f"{where}: {slot} tensor {self.tensors[t].name!r} has "
                                     f"{self.tensors[t].nbytes} bytes, params need {want}")
            for t in op.outputs:
                if self.tensors[t].is_const:
                    raise ValueError(f"{where}: writes constant tensor {self.tensors[t].name!r}")
        for edge in self.inputs + self.outputs:
            if not 0 <= edge.tensor < n or self.tensors[edge.tensor].is_const:
                raise ValueError(f"model input/output {edge.name!r} is not an activation tensor")


# Weight layouts (docs/blob-format.md, "Weight layouts").

def block_weights(w: np.ndarray) -> np.ndarray:
    """[out, K] int weights -> blocked, offset-binary uint8 bytes (flat)."""
    w = np.asarray(w, dtype=np.int32)
    out, k = w.shape
    if w.min(initial=0) < -128 or w.max(initial=0) > 127:
        raise ValueError("weights must be int8")
    parts = []
    for o0 in range(0, out, ops.OUT_BLOCK):
        block = w[o0:o0 + ops.OUT_BLOCK]  # [r, K]
        parts.append((block.T + ops.WEIGHT_OFFSET).astype(np.uint8).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def unblock_weights(data: np.ndarray, out: int, k: int) -> np.ndarray:
    """Inverse of block_weights: blocked uint8 bytes -> [out, K] int8 weights."""
    data = np.asarray(data, dtype=np.int32).reshape(-1)
    w = np.empty((out, k), np.int32)
    pos = 0
    for o0 in range(0, out, ops.OUT_BLOCK):
        r = min(ops.OUT_BLOCK, out - o0)
        w[o0:o0 + r] = data[pos:pos + r * k].reshape(k, r).T - ops.WEIGHT_OFFSET
        pos += r * k
    return w.astype(np.int8)


def fold_bias(bias: np.ndarray | None, w: np.ndarray, in_zp: int) -> np.ndarray:
    """bias' = bias + in_offset * sum over taps of w, per output channel (docs/ops.md).

    `w` is [out, taps] int8 (for depthwise: [taps, out] transposed by the caller).
    """
    w = np.asarray(w, dtype=np.int64)
    b = np.zeros(w.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64)
    folded = b + (-int(in_zp)) * w.sum(axis=1)
    if folded.min(initial=0) < -2**31 or folded.max(initial=0) >= 2**31:
        raise ValueError("folded bias does not fit int32")
    return folded.astype(np.int32)
