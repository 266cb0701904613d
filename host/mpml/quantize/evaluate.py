"""Running an int8 graph on many inputs at once, and float vs int8 reports.

`run_batch` runs the host reference on a whole batch by running a copy of
the graph whose ops take `n` rows (every op computes rows independently, so
each row's bytes are exactly what `mpml.reference.run` — and the board —
computes for it alone; tests/test_quantize.py checks this).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from mpml import ops
from mpml.graph import Graph
from mpml.reference import dequantize, quantize as quantize_input, run

__all__ = ["run_batch", "predict", "compare", "Report", "roc_auc"]

# Which param holds the row count (or the element count) of each op.
_BATCH_PARAM = {ops.FULLY_CONNECTED: "batches", ops.CONV_2D: "batches", ops.DEPTHWISE_CONV_2D: "batches",
                ops.AVERAGE_POOL_2D: "batches", ops.MAX_POOL_2D: "batches", ops.SOFTMAX: "outer",
                ops.ADD: "size", ops.RESHAPE: "size", ops.LOGISTIC: "size", ops.TANH: "size",
                ops.REQUANTIZE: "size"}


def _batched(graph: Graph, n: int) -> Graph | None:
    if any(op.code not in _BATCH_PARAM for op in graph.ops):
        return None
    g = copy.copy(graph)
    g.tensors = list(graph.tensors)
    consts = {i for i, t in enumerate(graph.tensors) if t.is_const}
    for i, t in enumerate(graph.tensors):
        if i not in consts:
            t2 = copy.copy(t)
            t2.shape = (t.shape[0] * n,) + tuple(t.shape[1:])
            g.tensors[i] = t2
    g.ops = []
    for op in graph.ops:
        k = ops.OPS[op.code][3].index(_BATCH_PARAM[op.code])
        params = list(op.params)
        params[k] *= n
        g.ops.append(type(op)(op.code, op.inputs, op.outputs, params))
    return g


def run_batch(graph: Graph, x, chunk: int = 256) -> np.ndarray:
    """The reference's int8 outputs of a one-input, one-output graph for every row of `x` (int8).

    `x` is [n, ...] with each row the size of the graph's input; the result is
    [n, ...] in the output tensor's shape without its leading 1.
    """
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError("run_batch takes graphs with one input and one output")
    tin = graph.tensors[graph.inputs[0].tensor]
    tout = graph.tensors[graph.outputs[0].tensor]
    x = np.asarray(x)
    n = len(x)
    x = x.reshape(n, tin.size)
    out_shape = tout.shape[1:] if tout.shape and tout.shape[0] == 1 else tout.shape
    if n == 0:
        return np.zeros((0,) + tuple(out_shape), tout.dtype)
    rows = []
    for s in range(0, n, chunk):
        part = x[s:s + chunk]
        g = _batched(graph, len(part))
        if g is None:  # an op without a batch param (TREE_ENSEMBLE): one row at a time
            rows += [run(graph, [row.reshape(tin.shape)])[0].reshape(1, -1) for row in part]
        else:
            rows.append(run(g, [part.reshape(-1)])[0].reshape(len(part), -1))
    return np.concatenate(rows).reshape((n,) + tuple(out_shape))


def predict(graph: Graph, x) -> np.ndarray:
    """Float outputs for float inputs, as `Model.predict` on the board: quantize, run int8, dequantize."""
    ti = graph.tensors[graph.inputs[0].tensor]
    to = graph.tensors[graph.outputs[0].tensor]
    x = np.asarray(x)
    q = quantize_input(x, ti.scale, ti.zero_point, ti.dtype) if graph.inputs[0].float_io else x
    y = run_batch(graph, q.reshape(len(x), -1))
    return dequantize(y, to.scale, to.zero_point) if graph.outputs[0].float_io else y


def roc_auc(scores, y) -> float:
    """Area under the ROC curve of `scores` for binary labels `y` (1 = positive/anomaly); ties count half."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _u, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]  # 1-based ranks, ties averaged
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class Report:
    """Float model vs int8 graph on the same data. Print `table()`.

    Classifiers: accuracy of each (when labels are given) and agreement (the
    same class predicted). Autoencoders: the anomaly scores (mean squared
    reconstruction error) of each, their correlation and, with labels
    (1 = anomaly), each one's ROC AUC.
    """

    task: str
    n: int
    float_acc: float | None = None
    int8_acc: float | None = None
    agreement: float | None = None
    score_corr: float | None = None
    float_auc: float | None = None
    int8_auc: float | None = None
    max_abs_diff: float = 0.0  # largest |float output - dequantized int8 output|
    float_out: np.ndarray = field(default=None, repr=False)
    int8_out: np.ndarray = field(default=None, repr=False)

    def rows(self) -> list[tuple[str, str, str]]:
        def f(v):
            return "-" if v is None or v != v else f"{v:.4f}"
        if self.task == "classifier":
            return [("accuracy", f(self.float_acc), f(self.int8_acc)),
                    ("agreement (same class)", "", f(self.agreement)),
                    ("max |output difference|", "", f(self.max_abs_diff))]
        return [("ROC AUC", f(self.float_auc), f(self.int8_auc)),
                ("anomaly score correlation", "", f(self.score_corr)),
                ("max |output difference|", "", f(self.max_abs_diff))]

    def table(self) -> str:
        head = ("metric", "float", "int8")
        rows = [head] + self.rows()
        w = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{self.task}, {self.n} samples",
                 " | ".join(h.ljust(w[i]) for i, h in enumerate(head)),
                 "-+-".join("-" * x for x in w)]
        lines += [" | ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows[1:]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def compare(model, graph: Graph, x, y=None) -> Report:
    """Run the float model and the int8 graph (host reference, bit-exact with the board) on `x`.

    `y`: class indices for a classifier; for an autoencoder, optional 0/1
    labels (1 = anomaly) for ROC AUC.
    """
    x = np.asarray(x, np.float32)
    fo = model.predict(x)
    qo = predict(graph, x.reshape(len(x), -1)).reshape(fo.shape)
    rep = Report(model.task, len(x), float_out=fo, int8_out=qo,
                 max_abs_diff=float(np.abs(fo - qo).max()) if len(x) else 0.0)
    if model.task == "classifier":
        pf, pq = fo.argmax(axis=-1), qo.argmax(axis=-1)
        rep.agreement = float((pf == pq).mean())
        if y is not None:
            y = np.asarray(y).reshape(-1)
            rep.float_acc = float((pf == y).mean())
            rep.int8_acc = float((pq == y).mean())
    else:
        flat = x.reshape(len(x), -1)
        sf = ((flat - fo.reshape(len(x), -1)) ** 2).mean(axis=1)
        sq = ((flat - qo.reshape(len(x), -1)) ** 2).mean(axis=1)
        rep.score_corr = float(np.corrcoef(sf, sq)[0, 1]) if len(x) > 1 else None
        if y is not None:
            rep.float_auc, rep.int8_auc = roc_auc(sf, y), roc_auc(sq, y)
    return rep
