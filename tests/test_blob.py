"""The .mpml blob format: writer, reader and the shared validating parser.

The host reader validates with the same `blobfmt.parse` the board runs, so
every refusal tested here is also the board's refusal.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from mpml import blobfmt as F
from mpml import ops
from mpml.blob import BlobError, plan_arena, read_blob, write_blob
from mpml.graph import Edge, Graph, Op, Tensor, block_weights, fold_bias, unblock_weights


def fc_graph(n_in: int = 20, n_out: int = 10, layers: int = 1, seed: int = 0) -> Graph:
    """A chain of FULLY_CONNECTED layers with random weights."""
    rng = np.random.default_rng(seed)
    g = Graph("chain", [], [], [], [], version="1.2")
    x = g.add_tensor(Tensor("x", "int8", (1, n_in), scale=0.05, zero_point=3))
    g.inputs.append(Edge(x, "x"))
    for k in range(layers):
        w = rng.integers(-128, 128, (n_out, n_in))
        wt = g.add_tensor(Tensor(f"w{k}", "uint8", (n_out, n_in), block_weights(w), flags=3))
        b = g.add_tensor(Tensor(f"b{k}", "int32", (n_out,), fold_bias(rng.integers(-999, 999, n_out), w, 3), flags=4))
        m = g.add_tensor(Tensor(f"m{k}", "int32", (n_out,), rng.integers(1 << 30, (1 << 31) - 1, n_out)))
        s = g.add_tensor(Tensor(f"s{k}", "int32", (n_out,), rng.integers(-9, 0, n_out)))
        y = g.add_tensor(Tensor(f"y{k}", "int8", (1, n_out), scale=0.1, zero_point=-2))
        g.ops.append(Op(ops.FULLY_CONNECTED, [x, wt, b, m, s], [y], [1, n_in, n_out, -2, -128, 127]))
        x, n_in = y, n_out
    g.outputs.append(Edge(x, "scores", labels=[f"class{i}" for i in range(n_out)]))
    return g


def with_crc(data: bytearray) -> bytes:
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(data[:-4]))
    return bytes(data)


def test_round_trip_keeps_everything():
    g = fc_graph(layers=3)
    g.features = b"spec"
    data = write_blob(g)
    blob = read_blob(data)
    assert blob.file_size == len(data)
    assert (blob.graph.name, blob.graph.version, blob.graph.features) == ("chain", "1.2", b"spec")
    assert blob.graph.outputs[0].labels == [f"class{i}" for i in range(10)]
    assert [op.params for op in blob.graph.ops] == [op.params for op in g.ops]
    for a, b in zip(g.tensors, blob.graph.tensors):
        assert (a.name, a.dtype, a.shape, a.zero_point, a.flags) == (b.name, b.dtype, b.shape, b.zero_point, b.flags)
        assert a.scale == pytest.approx(b.scale, rel=1e-7)
        if a.is_const:
            assert np.array_equal(a.data, b.data)
    assert write_blob(blob.graph) == data  # reading loses nothing the writer uses


def test_constants_are_aligned_and_weights_blocked():
    g = fc_graph(n_in=13, n_out=11)  # a full block of 8 and a tail of 3
    w = unblock_weights(g.tensors[1].data, 11, 13)
    data = write_blob(g)
    h, tensors, _ops, _io = F.parse(data, zlib.crc32)
    for f in tensors:
        assert f[F.T_OFFSET] % F.ALIGN == 0
    # first bytes of the blocked layout: input 0 of channels 0..7, offset binary
    wt = tensors[1]
    first = data[wt[F.T_OFFSET]:wt[F.T_OFFSET] + 8]
    assert list(first) == [int(v) + 128 for v in w[:8, 0]]


def test_arena_reuses_memory_of_dead_tensors():
    g = fc_graph(n_in=64, n_out=64, layers=4)
    offsets, size = plan_arena(g)
    # x, y0..y3 are 64 bytes each; at most two are alive at once
    assert size == 128
    acts = [t for t in offsets]
    assert len(acts) == 5
    blob = read_blob(write_blob(g))
    assert blob.arena_size == size


def test_arena_never_overlaps_live_tensors():
    rng = np.random.default_rng(5)
    for seed in range(20):
        g = fc_graph(n_in=int(rng.integers(1, 40)), n_out=int(rng.integers(1, 40)), layers=int(rng.integers(1, 5)), seed=seed)
        offsets, size = plan_arena(g)
        spans = {}
        for k, op in enumerate(g.ops):
            for t in op.inputs + op.outputs:
                if t in offsets:
                    a, b = spans.get(t, (k, k))
                    spans[t] = (min(a, k), max(b, k))
        for t in offsets:
            assert offsets[t] + g.tensors[t].nbytes <= size
        for t1 in offsets:
            for t2 in offsets:
                if t1 < t2 and not (spans[t1][1] < spans[t2][0] or spans[t2][1] < spans[t1][0]):
                    a1, a2 = offsets[t1], offsets[t2]
                    assert a1 + g.tensors[t1].nbytes <= a2 or a2 + g.tensors[t2].nbytes <= a1


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d[:-10], "header says"),
    (lambda d: b"MPMX" + d[4:], "not an mpml blob"),
    (lambda d: d[:4] + struct.pack("<H", 9) + d[6:], "format version 9"),
    (lambda d: d[:100] + bytes([d[100] ^ 4]) + d[101:], "CRC mismatch"),
    (lambda d: b"MPML", "too short"),
])
def test_reader_refuses_damaged_blobs(corrupt, message):
    data = write_blob(fc_graph())
    with pytest.raises(BlobError, match=message):
        read_blob(corrupt(data))


def _edit(data: bytes, fmt: str, offset: int, *values) -> bytes:
    d = bytearray(data)
    struct.pack_into(fmt, d, offset, *values)
    return with_crc(d)


def test_parse_checks_every_table_even_with_a_valid_crc():
    data = write_blob(fc_graph())
    h = struct.unpack_from(F.HEADER, data)
    tensors, ops_at = h[F.H_TENSORS], h[F.H_OPS]
    cases = {
        "unknown opcode 99": _edit(data, "<B", ops_at, 99),
        "inputs, 1 outputs": _edit(data, "<B", ops_at + 1, 4),
        "tensor 60000": _edit(data, "<H", ops_at + 4, 60000),
        "lies outside the blob": _edit(data, "<I", tensors + F.TENSOR_SIZE + 12, (len(data) - 4) // 8 * 8),
        "arena": _edit(data, "<I", tensors + 12, h[F.H_ARENA_SIZE] + 8),
        "unknown dtype": _edit(data, "<B", tensors, 77),
        "params need": _edit(data, "<i", ops_at + 4 + 12 + 4, 21),  # in_depth 20 -> 21
        "param 0 out of range": _edit(data, "<i", ops_at + 4 + 12, 0),
        "tensor table": _edit(data, "<I", 40, len(data)),
        "but its tensors need": _edit(data, "<I", 12, 1 << 31),
    }
    for message, bad in cases.items():
        with pytest.raises(BlobError, match=message):
            read_blob(bad)


def test_writer_refuses_inconsistent_graphs():
    g = fc_graph()
    g.ops[0].params[1] = 21
    with pytest.raises(BlobError, match="params need"):
        write_blob(g)
    g = fc_graph()
    g.ops[0].outputs = [g.add_tensor(Tensor("c", "int8", (1, 10), np.zeros(10)))]
    with pytest.raises(BlobError, match="writes constant"):
        write_blob(g)
