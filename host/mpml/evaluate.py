"""Host-simulated int8 metrics of a `.mpml` model: what the board will score, computed on the host.

The int8 outputs come from the host reference (`mpml.reference`), which the
board's kernels equal bit for bit, so these are the board's numbers.

- classifiers: accuracy, per-class precision and recall, the confusion
  matrix (printed, and drawn to a PNG with matplotlib's Agg backend);
- anomaly models (autoencoders: the output reconstructs the input): the
  anomaly score is the mean squared reconstruction error of the dequantized
  values; with labels, ROC AUC and the threshold that maximises
  TPR - FPR (Youden's J); without, the 99th percentile of the scores.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mpml.files import write_atomic
from mpml.graph import Graph
from mpml.quantize.evaluate import roc_auc
from mpml.reference import dequantize, quantize, run

__all__ = ["EvalError", "EvalResult", "is_autoencoder", "quantize_inputs", "int8_outputs", "evaluate_classifier",
           "evaluate_anomaly", "roc_auc", "best_threshold", "confusion_matrix", "save_confusion_png",
           "format_result"]


class EvalError(ValueError):
    """The model and the data cannot be evaluated together, with the reason."""


@dataclass
class EvalResult:
    task: str  # "classifier" or "anomaly"
    n: int
    labels: list[str] = field(default_factory=list)
    accuracy: float | None = None
    precision: np.ndarray | None = None
    recall: np.ndarray | None = None
    support: np.ndarray | None = None
    confusion: np.ndarray | None = None
    auc: float | None = None
    threshold: float | None = None
    threshold_rule: str = ""
    flagged: float | None = None  # fraction of samples above the threshold
    scores: np.ndarray | None = field(default=None, repr=False)
    predictions: np.ndarray | None = field(default=None, repr=False)
    source: str = "host-simulated int8"  # where the int8 outputs came from


def is_autoencoder(graph: Graph) -> bool:
    """One input, one output of the input's size, no class labels: a reconstruction."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1 or graph.outputs[0].labels:
        return False
    ti, to = graph.tensors[graph.inputs[0].tensor], graph.tensors[graph.outputs[0].tensor]
    return ti.size == to.size and to.dtype == "int8"


def quantize_inputs(graph: Graph, x) -> np.ndarray:
    """Feature vectors for the model's input: floats are quantized with the input's scale and zero point."""
    ti = graph.tensors[graph.inputs[0].tensor]
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise EvalError("no samples to evaluate")
    flat = x.reshape(len(x), -1)
    if flat.shape[1] != ti.size:
        raise EvalError(f"each sample has {flat.shape[1]} values; the model's input takes {ti.size} {list(ti.shape)}")
    if np.issubdtype(flat.dtype, np.floating):
        if not np.isfinite(flat).all():
            raise EvalError("the samples have NaN or infinite values")
        if not graph.inputs[0].float_io or not ti.scale:
            raise EvalError("float samples, but the model's input has no float conversion: give quantized values")
        return quantize(flat, ti.scale, ti.zero_point, ti.dtype)
    info = np.iinfo(ti.dtype)
    if flat.min() < info.min or flat.max() > info.max:
        raise EvalError(f"integer samples outside {ti.dtype}")
    return flat.astype(ti.dtype)


def int8_outputs(graph: Graph, q: np.ndarray) -> np.ndarray:
    """The reference's outputs for every row of quantized inputs, [n, outputs] in the output's dtype."""
    try:
        from mpml.quantize import run_batch  # batched (many rows per op call), same bytes per row

        return np.asarray(run_batch(graph, q)).reshape(len(q), -1)
    except ImportError:
        ti = graph.tensors[graph.inputs[0].tensor]
        return np.stack([run(graph, [row.reshape(ti.shape)])[0].reshape(-1) for row in q])


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (np.asarray(y, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def evaluate_classifier(graph: Graph, x, y, labels: list[str] | None = None, outputs=None,
                        source: str = "host-simulated int8") -> EvalResult:
    """Accuracy, per-class precision/recall and the confusion matrix of the int8 model on (x, y).

    `y`: class indices into the model's output (its labels), or label strings.
    `outputs`: the int8 outputs for x when they come from elsewhere (a board:
    mpml.device.run.eval_on_device), instead of the host reference's.
    """
    out_labels = list(graph.outputs[0].labels) or list(labels or [])
    q = quantize_inputs(graph, x)
    scores = int8_outputs(graph, q) if outputs is None else np.asarray(outputs).reshape(len(q), -1)
    n_cls = scores.shape[1]
    if not out_labels:
        out_labels = [str(k) for k in range(n_cls)]
    if len(out_labels) != n_cls:
        raise EvalError(f"the model has {n_cls} outputs and {len(out_labels)} labels")
    y = np.asarray(y)
    if y.dtype.kind in "USO":
        index = {lab: k for k, lab in enumerate(out_labels)}
        unknown = sorted({str(v) for v in y if str(v) not in index})
        if unknown:
            raise EvalError(f"the data has labels the model does not know: {', '.join(unknown)} "
                            f"(model: {', '.join(out_labels)})")
        y = np.array([index[str(v)] for v in y], np.int64)
    y = y.astype(np.int64).reshape(-1)
    if len(y) != len(q):
        raise EvalError(f"{len(q)} samples but {len(y)} labels")
    if y.min() < 0 or y.max() >= n_cls:
        raise EvalError(f"class index out of range 0..{n_cls - 1}")
    pred = scores.argmax(axis=1)
    cm = confusion_matrix(y, pred, n_cls)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / cm.sum(axis=0)
        recall = tp / cm.sum(axis=1)
    return EvalResult("classifier", len(y), out_labels, float((pred == y).mean()), precision, recall,
                      cm.sum(axis=1), cm, scores=scores, predictions=pred, source=source)




def best_threshold(scores, positive) -> float:
    """The score threshold (anomaly when score > threshold) with the largest TPR - FPR."""
    s = np.asarray(scores, np.float64)
    yb = np.asarray(positive).astype(bool)
    cands = np.unique(s)
    best, best_j = float(cands[0]), -np.inf
    n_pos, n_neg = max(int(yb.sum()), 1), max(int((~yb).sum()), 1)
    for t in cands:
        flag = s > t
        j = (flag & yb).sum() / n_pos - (flag & ~yb).sum() / n_neg
        if j > best_j:
            best, best_j = float(t), j
    return best


def evaluate_anomaly(graph: Graph, x, anomalous=None, outputs=None, source: str = "host-simulated int8") -> EvalResult:
    """Reconstruction-error scores of an autoencoder; ROC AUC and a threshold when `anomalous` (0/1) is given.

    `outputs`: the int8 reconstructions from elsewhere (a board), instead of the host reference's.
    """
    q = quantize_inputs(graph, x)
    out = int8_outputs(graph, q) if outputs is None else np.asarray(outputs).reshape(len(q), -1)
    ti, to = graph.tensors[graph.inputs[0].tensor], graph.tensors[graph.outputs[0].tensor]
    xin = dequantize(q, ti.scale, ti.zero_point).reshape(len(q), -1).astype(np.float64)
    rec = dequantize(out, to.scale, to.zero_point).reshape(len(q), -1).astype(np.float64)
    scores = ((xin - rec) ** 2).mean(axis=1)
    res = EvalResult("anomaly", len(q), scores=scores, source=source)
    if anomalous is not None:
        a = np.asarray(anomalous).astype(bool).reshape(-1)
        if len(a) != len(q):
            raise EvalError(f"{len(q)} samples but {len(a)} anomaly labels")
        res.auc = roc_auc(scores, a)
        if a.any() and (~a).any():
            res.threshold, res.threshold_rule = best_threshold(scores, a), "max TPR - FPR"
    if res.threshold is None:
        res.threshold, res.threshold_rule = float(np.percentile(scores, 99)), "99th percentile of the scores"
    res.flagged = float((scores > res.threshold).mean())
    return res


def save_confusion_png(res: EvalResult, path: str | Path, title: str = "") -> Path:
    """Draw the confusion matrix (counts, rows = true class) to a PNG; written to a temp file, then renamed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    cm = res.confusion
    n = len(res.labels)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), res.labels, rotation=45, ha="right")
    ax.set_yticks(range(n), res.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"int8 accuracy {res.accuracy:.3f} ({res.n} samples)")
    hi = cm.max() if cm.size else 0
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > hi / 2 else "black")
    fig.tight_layout()
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=100)
    finally:
        plt.close(fig)
    return write_atomic(path, png.getvalue())


def format_result(res: EvalResult) -> str:
    def f(v):
        return "-" if v is None or v != v else f"{v:.3f}"

    if res.task == "anomaly":
        lines = [f"anomaly model, {res.n} samples ({res.source})",
                 f"  ROC AUC    {f(res.auc)}" if res.auc is not None else "  ROC AUC    - (no anomaly labels)",
                 f"  threshold  {res.threshold:.6g} ({res.threshold_rule}); {res.flagged:.1%} of samples above it",
                 f"  scores     min {res.scores.min():.4g}, median {np.median(res.scores):.4g}, max {res.scores.max():.4g}"]
        return "\n".join(lines)
    lines = [f"classifier, {res.n} samples ({res.source})", f"accuracy {res.accuracy:.4f}", ""]
    w = max(5, max(len(s) for s in res.labels))
    lines.append(f"{'class'.ljust(w)}  precision  recall  support")
    for k, lab in enumerate(res.labels):
        lines.append(f"{lab.ljust(w)}  {f(res.precision[k]).rjust(9)}  {f(res.recall[k]).rjust(6)}  {int(res.support[k]):7d}")
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    cw = max(len(str(int(res.confusion.max()))) if res.confusion.size else 1, max(len(s) for s in res.labels), 3)
    lines.append(" " * (w + 2) + " ".join(s[:cw].rjust(cw) for s in res.labels))
    for k, lab in enumerate(res.labels):
        lines.append(lab.ljust(w) + "  " + " ".join(str(int(v)).rjust(cw) for v in res.confusion[k]))
    return "\n".join(lines)
