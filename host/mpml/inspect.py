"""What a `.mpml` model costs: ops, shapes, parameters, MACs, flash, RAM, and each board's verdict.

    report = inspect_file("gesture.mpml")
    print(format_report(report))

Memory on a board (docs in models/README.md, "Will it fit?"): `mpml.load`
reads the whole blob into one buffer and allocates the arena once, and the
runtime's modules take heap too, so a model needs

    heap  = blob bytes + arena bytes + runtime (mpml.boards.RUNTIME_HEAP_BYTES[backend])
    flash = blob bytes + the device package (mpml.boards.RUNTIME_FLASH_BYTES)

against the board file's free heap after boot and filesystem size.

Latency: MACs x cycles per MAC for the board's arch and backend
(mpml.boards.COSTS), plus one unit per element of the ops without MACs
(pools, ADD, SOFTMAX, lookups), plus a fixed cost per op, plus tree nodes
visited (the deepest path of each tree, an upper bound) x cycles per node,
all divided by the board's clock. An estimate, not a measurement: the armv6m
and x64 figures are measured, the others assumed (each says which).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mpml import ops
from mpml.blob import Blob, BlobError, read_blob
from mpml.boards import RUNTIME_FLASH_BYTES, RUNTIME_HEAP_BYTES, Board, boards as all_boards, cost

__all__ = ["OpCost", "BoardFit", "Report", "op_cost", "inspect_blob", "inspect_file", "format_report",
           "features_summary"]


@dataclass
class OpCost:
    index: int
    name: str
    in_shapes: list[tuple[int, ...]]
    out_shapes: list[tuple[int, ...]]
    params: int  # trainable parameters (weights, biases; tree nodes and leaf values)
    macs: int
    elements: int  # work of ops without MACs, in elements
    tree_steps: int  # TREE_ENSEMBLE: nodes visited on the deepest path of every tree
    detail: str = ""


@dataclass
class BoardFit:
    board: Board
    heap_needed: int
    flash_needed: int
    fits_heap: bool
    fits_flash: bool
    latency_s: float
    cost_source: str

    @property
    def fits(self) -> bool:
        return self.fits_heap and self.fits_flash

    def verdict(self) -> str:
        b = self.board
        if self.fits:
            return "fits"
        why = []
        if not self.fits_heap:
            why.append(f"needs {_kb(self.heap_needed)} heap, {_kb(b.free_heap_bytes)} free")
        if not self.fits_flash:
            why.append(f"needs {_kb(self.flash_needed)} flash, filesystem {_kb(b.filesystem_bytes)}")
        return "DOES NOT FIT: " + "; ".join(why)


@dataclass
class Report:
    path: str
    name: str
    version: str
    blob_bytes: int
    arena_bytes: int
    ops: list[OpCost]
    inputs: list[str]
    outputs: list[str]
    features: str
    boards: list[BoardFit] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def params(self) -> int:
        return sum(o.params for o in self.ops)

    @property
    def fits_any(self) -> bool:
        return any(f.fits for f in self.boards)


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} KB" if n < 1_000_000 else f"{n / 1e6:.2f} MB"


def _tree_depths(nodes: np.ndarray, roots: np.ndarray, n_nodes: int) -> int:
    """Sum over trees of the longest root-to-leaf path, in nodes visited."""
    rec = np.frombuffer(np.ascontiguousarray(nodes).tobytes(), dtype=[("t", "<i2"), ("f", "<u2"), ("l", "<u2"), ("r", "<u2")])
    flag = ops.TREE_LEAF_FLAG
    total = 0
    for root in np.frombuffer(np.ascontiguousarray(roots).tobytes(), "<u2"):
        best, stack = 0, [(int(root), 0)]
        while stack:
            k, d = stack.pop()
            if k & flag or k >= n_nodes or d > n_nodes:
                best = max(best, d)
                continue
            stack += [(int(rec[k]["l"]), d + 1), (int(rec[k]["r"]), d + 1)]
        total += best
    return total


def op_cost(graph, k: int) -> OpCost:
    """Shapes, parameters and work of op k of a graph."""
    op = graph.ops[k]
    _n, in_slots, _out_slots, names = ops.OPS[op.code]
    p = dict(zip(names, op.params))
    ts = graph.tensors
    ins = [ts[t].shape for t, slot in zip(op.inputs, in_slots) if not ts[t].is_const]
    outs = [ts[t].shape for t in op.outputs]
    out_n = sum(ts[t].size for t in op.outputs)
    params = macs = elements = steps = 0
    detail = ""
    c = op.code
    if c == ops.FULLY_CONNECTED:
        macs = p["batches"] * p["in_depth"] * p["out_depth"]
        params = p["in_depth"] * p["out_depth"] + p["out_depth"]
        detail = f"{p['in_depth']}->{p['out_depth']}"
    elif c in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D):
        taps = p["k_h"] * p["k_w"] * (p["in_c"] if c == ops.CONV_2D else 1)
        macs = p["batches"] * p["out_h"] * p["out_w"] * p["out_c"] * taps
        params = p["out_c"] * taps + p["out_c"]
        detail = f"{p['k_h']}x{p['k_w']} kernel, stride {p['stride_h']}x{p['stride_w']}"
    elif c in (ops.AVERAGE_POOL_2D, ops.MAX_POOL_2D):
        elements = out_n * p["f_h"] * p["f_w"]
        detail = f"{p['f_h']}x{p['f_w']} window"
    elif c == ops.SOFTMAX:
        elements = 3 * out_n
    elif c == ops.RESHAPE:
        elements = out_n // 4
    elif c == ops.TREE_ENSEMBLE:
        nodes, roots, leaves = (ts[t] for t in op.inputs[1:4])
        params = p["n_nodes"] + p["n_leaves"] * p["n_outputs"]
        steps = _tree_depths(nodes.data, roots.data, p["n_nodes"])
        elements = p["n_trees"] * p["n_outputs"]
        detail = (f"{p['n_trees']} trees, {p['n_nodes']} nodes, {p['n_leaves']} leaves, "
                  f"{'int8' if p['in_bytes'] == 1 else 'int16'} features, deepest paths {steps} nodes")
    else:  # ADD, LOGISTIC, TANH, REQUANTIZE: one step per element
        elements = out_n
    return OpCost(k, op.name, ins, outs, params, macs, elements, steps, detail)


def features_summary(data: bytes) -> str:
    """One line about the feature spec inside the blob (what the feature module says of it, when present)."""
    if not data:
        return "none (the model takes the feature vector directly)"
    try:
        from mpml.features import FeatureSpec  # the feature pipeline's spec, when it is installed

        spec = FeatureSpec.from_bytes(data)
        text = spec.summary() if hasattr(spec, "summary") else str(spec)
        if text.startswith("features: "):
            text = text[len("features: "):]
        return text.replace("\n", f" ({len(data)} bytes)\n    ", 1) if "\n" in text else f"{text} ({len(data)} bytes)"
    except Exception as e:  # noqa: BLE001 - a summary must never stop inspect
        return f"{len(data)} bytes (not decoded: {type(e).__name__}: {e})"


def _fit(board: Board, blob_bytes: int, arena: int, costs: list[OpCost]) -> BoardFit:
    heap = blob_bytes + arena + RUNTIME_HEAP_BYTES[board.backend]
    flash = blob_bytes + RUNTIME_FLASH_BYTES
    c = cost(board.arch, board.backend)
    cycles = sum(o.macs * c.cycles_per_mac + o.elements * c.cycles_per_mac + o.tree_steps * c.cycles_per_tree_node
                 + c.cycles_per_op for o in costs)
    return BoardFit(board, heap, flash, heap <= board.free_heap_bytes,
                    board.filesystem_bytes == 0 or flash <= board.filesystem_bytes,
                    cycles / board.clock_hz, c.source)


def _edge(graph, e) -> str:
    t = graph.tensors[e.tensor]
    q = f", scale {t.scale:.6g} zero point {t.zero_point}" if t.scale else ""
    labels = f", labels: {', '.join(e.labels)}" if e.labels else ""
    return f"{e.name or '-'}: {t.dtype} {list(t.shape)}{q}{' (float edge)' if e.float_io else ''}{labels}"


def inspect_blob(blob: Blob, path: str = "", board_list: list[Board] | None = None) -> Report:
    g = blob.graph
    costs = [op_cost(g, k) for k in range(len(g.ops))]
    rep = Report(path, g.name, g.version, blob.file_size, blob.arena_size, costs,
                 [_edge(g, e) for e in g.inputs], [_edge(g, e) for e in g.outputs], features_summary(g.features))
    rep.boards = [_fit(b, blob.file_size, blob.arena_size, costs)
                  for b in (all_boards() if board_list is None else board_list)]
    return rep


def inspect_file(path: str | Path, board_list: list[Board] | None = None) -> Report:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BlobError(f"{path}: no such file") from None
    except OSError as e:
        raise BlobError(f"{path}: cannot read: {e.strerror}") from None
    try:
        blob = read_blob(data)
    except BlobError as e:
        raise BlobError(f"{path}: not a valid .mpml model: {e}") from None
    return inspect_blob(blob, str(path), board_list)


def _table(rows: list[tuple], right: set[int] = frozenset()) -> list[str]:
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(str(c).rjust(w[i]) if i in right and n else str(c).ljust(w[i])
                             for i, c in enumerate(r)).rstrip())
    return out


def _latency(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def format_report(rep: Report) -> str:
    lines = [f"model {rep.name!r}" + (f" version {rep.version}" if rep.version else "") + (f"  ({rep.path})" if rep.path else "")]
    lines += [f"  input  {s}" for s in rep.inputs] + [f"  output {s}" for s in rep.outputs]
    lines.append(f"  features: {rep.features}")
    lines.append("")
    rows = [("#", "op", "input", "output", "params", "MACs", "")]
    for o in rep.ops:
        rows.append((o.index, o.name, " ".join(str(list(s)) for s in o.in_shapes),
                     " ".join(str(list(s)) for s in o.out_shapes), f"{o.params:,}", f"{o.macs:,}", o.detail))
    rows.append(("", "total", "", "", f"{rep.params:,}", f"{rep.macs:,}", ""))
    lines += _table(rows, right={4, 5})
    lines.append("")
    lines.append(f"flash (blob) {rep.blob_bytes:,} bytes   arena {rep.arena_bytes:,} bytes")
    lines.append("")
    rows = [("board", "arch", "backend", "heap need/free", "flash need/filesystem", "est. latency", "verdict")]
    for f in rep.boards:
        b = f.board
        fs = "unlimited" if b.filesystem_bytes == 0 else _kb(b.filesystem_bytes)
        rows.append((b.name + (" (virtual)" if b.virtual else ""), b.arch, b.backend,
                     f"{_kb(f.heap_needed)} / {_kb(b.free_heap_bytes)}", f"{_kb(f.flash_needed)} / {fs}",
                     _latency(f.latency_s), f.verdict()))
    lines += _table(rows)
    if not rep.fits_any:
        lines.append("")
        lines.append("This model fits NO board: make it smaller (fewer or narrower layers, fewer or shallower trees).")
    lines.append("")
    lines.append("Heap: blob + arena + runtime; latency: an estimate from cycles per MAC at each board's clock "
                 "(boards/*.toml, mpml.boards.COSTS; only armv6m and x64 are measured).")
    return "\n".join(lines)
