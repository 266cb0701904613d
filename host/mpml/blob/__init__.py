"""Writing and reading `.mpml` blobs (format: docs/blob-format.md).

The layouts come from the device package's `blobfmt` (shared as
`mpml.blobfmt`); the reader validates with the very `blobfmt.parse` the board
runs, so a blob the host accepts is a blob the board accepts.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpml import blobfmt as F
from mpml import ops
from mpml.graph import DTYPES, Edge, Graph, Op, Tensor

__all__ = ["BlobError", "Blob", "plan_arena", "write_blob", "read_blob", "save", "load"]


class BlobError(ValueError):
    """A blob that cannot be written or read, with the reason."""


@dataclass
class Blob:
    """A blob read back: its graph plus what the writer decided about it."""

    graph: Graph
    arena_size: int
    arena_offsets: dict[int, int]
    content_hash: bytes
    file_size: int


def _lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """First and last op index at which each activation tensor must hold its value."""
    life: dict[int, list[int]] = {}
    last = len(graph.ops)
    for edge in graph.inputs:
        life.setdefault(edge.tensor, [-1, -1])
    for k, op in enumerate(graph.ops):
        for t in op.outputs:
            span = life.setdefault(t, [k, k])
            span[0] = min(span[0], k)
        for t in op.inputs:
            if not graph.tensors[t].is_const:
                span = life.setdefault(t, [k, k])
                span[1] = max(span[1], k)
    for edge in graph.outputs:
        life.setdefault(edge.tensor, [last, last])[1] = last
    return {t: (a, max(a, b)) for t, (a, b) in life.items()}


def plan_arena(graph: Graph) -> tuple[dict[int, int], int]:
    """Arena offset of every activation tensor and the arena's size.

    Tensors alive at the same time never overlap; the others reuse memory.
    Greedy: largest tensors first, each at the lowest aligned offset free for
    its whole lifetime.
    """
    life = _lifetimes(graph)
    order = sorted(life, key=lambda t: (-graph.tensors[t].nbytes, life[t][0], t))
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    offsets: dict[int, int] = {}
    size = 0
    for t in order:
        first, last = life[t]
        nbytes = graph.tensors[t].nbytes
        busy = sorted((o, e) for o, e, a, b in placed if not (b < first or last < a))
        offset = 0
        for o, e in busy:
            if offset + nbytes <= o:
                break
            offset = max(offset, F.align(e))
        offsets[t] = offset
        placed.append((offset, offset + nbytes, first, last))
        size = max(size, offset + nbytes)
    return offsets, F.align(size)


class _Strings:
    def __init__(self) -> None:
        self.data = bytearray()
        self.refs: dict[str, int] = {}

    def ref(self, text: str | None) -> int:
        if not text:
            return F.NO_STRING
        if text not in self.refs:
            raw = text.encode()
            if len(raw) > 0xFFFF or len(self.data) + 2 + len(raw) >= F.NO_STRING:
                raise BlobError(f"strings section full (string {text[:30]!r}...)")
            self.refs[text] = len(self.data)
            self.data += struct.pack("<H", len(raw)) + raw
        return self.refs[text]


def write_blob(graph: Graph) -> bytes:
    """Serialise a graph to blob bytes (arena planned, hash and CRC added)."""
    try:
        graph.validate()
    except ValueError as e:
        raise BlobError(f"model {graph.name!r}: {e}") from None
    if len(graph.tensors) > 0xFFFF or len(graph.ops) > 0xFFFF:
        raise BlobError("too many tensors or ops for format version 1")
    offsets, arena_size = plan_arena(graph)
    strings = _Strings()
    name_ref = strings.ref(graph.name)
    version_ref = strings.ref(graph.version)

    op_records = bytearray()
    for op in graph.ops:
        refs = op.inputs + op.outputs
        head = struct.pack(F.OP_HEAD, op.code, len(op.inputs), len(op.outputs), len(op.params))
        body = struct.pack(f"<{len(refs)}H", *refs)
        body += bytes(F.op_record_size(len(refs), 0) - F.OP_HEAD_SIZE - len(body))
        op_records += head + body + struct.pack(f"<{len(op.params)}i", *op.params)

    io = bytearray()
    for k, edge in enumerate(graph.inputs + graph.outputs):
        labels = "\n".join(edge.labels) if edge.labels else ""
        io += struct.pack(F.IO, edge.tensor, strings.ref(edge.name or f"{'input' if k < len(graph.inputs) else 'output'}{k}"),
                          strings.ref(labels), F.IO_FLOAT if edge.float_io else 0)

    name_refs = [strings.ref(t.name) for t in graph.tensors]
    tensors_off = F.HEADER_SIZE
    ops_off = tensors_off + F.TENSOR_SIZE * len(graph.tensors)
    io_off = ops_off + len(op_records)
    strings_off = io_off + len(io)
    features_off = strings_off + len(strings.data)
    pos = F.align(features_off + len(graph.features))
    const_offsets: dict[int, int] = {}
    for t, tensor in enumerate(graph.tensors):
        if tensor.is_const:
            const_offsets[t] = pos
            pos = F.align(pos + tensor.nbytes)
    file_size = pos + F.CRC_SIZE

    table = bytearray()
    for t, tensor in enumerate(graph.tensors):
        shape = list(tensor.shape) + [1] * (F.MAX_NDIM - len(tensor.shape))
        if any(not 0 < d <= 0xFFFF for d in shape):
            raise BlobError(f"tensor {tensor.name!r}: dimension out of range in {tensor.shape}")
        storage, offset = (F.CONST, const_offsets[t]) if tensor.is_const else (F.ARENA, offsets.get(t, 0))
        if not tensor.is_const and t not in offsets:
            raise BlobError(f"tensor {tensor.name!r} is neither constant nor used by any op")
        table += struct.pack(F.TENSOR, DTYPES[tensor.dtype], storage, len(tensor.shape), tensor.flags,
                             *shape, offset, tensor.nbytes, int(tensor.zero_point), float(tensor.scale),
                             name_refs[t], 0)

    out = bytearray(file_size)
    out[tensors_off:ops_off] = table
    out[ops_off:io_off] = op_records
    out[io_off:strings_off] = io
    out[strings_off:features_off] = strings.data
    out[features_off:features_off + len(graph.features)] = graph.features
    for t, off in const_offsets.items():
        raw = graph.tensors[t].data.tobytes()
        out[off:off + len(raw)] = raw
    content_hash = hashlib.sha256(out[F.HEADER_SIZE:file_size - F.CRC_SIZE]).digest()[:F.HASH_SIZE]
    out[0:F.HEADER_SIZE] = struct.pack(
        F.HEADER, F.MAGIC, F.VERSION, F.HEADER_SIZE, file_size, arena_size, content_hash,
        len(graph.tensors), len(graph.ops), len(graph.inputs), len(graph.outputs),
        tensors_off, ops_off, len(op_records), io_off, strings_off, len(strings.data),
        features_off if graph.features else 0, len(graph.features), name_ref, version_ref, 0)
    struct.pack_into("<I", out, file_size - F.CRC_SIZE, zlib.crc32(out[:file_size - F.CRC_SIZE]))
    return bytes(out)


def read_blob(data: bytes) -> Blob:
    """Parse and validate blob bytes (as the board does) back into a Graph."""
    try:
        h, tensors, op_list, io = F.parse(data, zlib.crc32)
    except ValueError as e:
        raise BlobError(str(e)) from None

    def string(ref: int) -> str:
        try:
            return F.string(data, h[F.H_STRINGS], h[F.H_STRINGS_SIZE], ref)
        except (ValueError, UnicodeError) as e:
            raise BlobError(str(e)) from None

    graph_tensors = []
    arena_offsets = {}
    for t, f in enumerate(tensors):
        name, _size = F.DTYPES[f[F.T_DTYPE]]
        shape = tuple(f[F.T_SHAPE0:F.T_SHAPE0 + f[F.T_NDIM]])
        data_arr = None
        if f[F.T_STORAGE] == F.CONST:
            raw = data[f[F.T_OFFSET]:f[F.T_OFFSET] + f[F.T_NBYTES]]
            data_arr = np.frombuffer(raw, dtype=np.dtype(name).newbyteorder("<")).reshape(shape)
        else:
            arena_offsets[t] = f[F.T_OFFSET]
        graph_tensors.append(Tensor(string(f[F.T_NAME]), name, shape, data_arr,
                                    scale=f[F.T_SCALE], zero_point=f[F.T_ZERO_POINT], flags=f[F.T_FLAGS]))
    graph_ops = []
    for code, refs, params in op_list:
        n_in = len(ops.OPS[code][1])
        graph_ops.append(Op(code, list(refs[:n_in]), list(refs[n_in:]), list(params)))
    edges = [Edge(f[0], string(f[1]), string(f[2]).split("\n") if f[2] != F.NO_STRING else [],
                  bool(f[3] & F.IO_FLOAT)) for f in io]
    n_in = h[F.H_N_INPUTS]
    features = b""
    if h[F.H_FEATURES]:
        features = bytes(data[h[F.H_FEATURES]:h[F.H_FEATURES] + h[F.H_FEATURES_SIZE]])
    graph = Graph(string(h[F.H_NAME]), graph_tensors, graph_ops, edges[:n_in], edges[n_in:],
                  version=string(h[F.H_MODEL_VERSION]), features=features)
    return Blob(graph, h[F.H_ARENA_SIZE], arena_offsets, bytes(h[F.H_HASH]), h[F.H_FILE_SIZE])


def save(graph: Graph, path: str | Path) -> bytes:
    """Write a graph to a .mpml file (whole or not at all); returns the bytes written."""
    from mpml.files import write_atomic

    data = write_blob(graph)
    write_atomic(path, data)
    return data


def load(path: str | Path) -> Blob:
    """Read and validate a .mpml file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BlobError(f"cannot read {path}: {e.strerror}") from None
    return read_blob(data)
