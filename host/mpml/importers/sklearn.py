"""Import a fitted scikit-learn estimator as a `Graph`.

Trees (DecisionTree, RandomForest, ExtraTrees; classifiers and regressors)
become one TREE_ENSEMBLE op (docs/ops.md). Its input is the feature vector
quantized with ONE scale and zero point (int8, or int16 for a finer grid), and
every split threshold is moved onto that grid exactly: for a feature value
`x = dequantize(q)`, scikit-learn goes left when `x <= t`, and the board goes
left when `q <= T` with `T` the largest grid point whose dequantized value is
`<= t` (`floor(t/scale + zp)`, checked against the very float32 dequantization).
So on quantized inputs the board takes the same path through every tree as
scikit-learn does. A split that no grid point can take (T below the grid's
first point or at its last) is resolved at import time: the node is replaced
by the child every input reaches.

- Classifiers: each leaf holds the tree's class probabilities scaled by
  32767 and rounded to int16; the int32 output is their sum over trees, so
  its argmax is scikit-learn's `predict` (soft voting, first class on a tie),
  up to rounding on near-ties (`check_agreement` counts any). The output's
  scale `1/(32767 * n_trees)` makes `Model.predict` return the mean
  probabilities.
- Regressors: leaf values are centred and scaled to int16 with one scale for
  the model; the output's scale and zero point give back the mean over
  trees (the forest's prediction) within half a leaf step per tree.

LogisticRegression, LinearSVC, SGDClassifier and MLPClassifier become dense
layers through the post-training quantizer (`mpml.quantize`): they are turned
into the float model format of `mpml.nn` and quantized with calibration data.

Pickles run code when loaded: `load_estimator` uses joblib, so import only
files you trust.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpml import ops
from mpml.graph import Edge, Graph, Op, Tensor
from mpml.reference import dequantize

__all__ = ["SklearnImportError", "InputQuant", "SUPPORTED", "import_estimator", "load_estimator", "load_sklearn",
           "grid_threshold", "default_input_quant", "calibration_input_quant", "to_float_model", "check_agreement"]

LEAF_SCALE = 32767  # a probability of 1 in a classifier leaf

_TREE_CLASSES = ("DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor",
                 "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")
_LINEAR_CLASSES = ("LogisticRegression", "LinearSVC", "SGDClassifier", "RidgeClassifier", "MLPClassifier")
SUPPORTED = _TREE_CLASSES + _LINEAR_CLASSES


class SklearnImportError(ValueError):
    """The estimator cannot be imported, with the reason."""


@dataclass(frozen=True)
class InputQuant:
    """How the feature vector is quantized: q = clamp(round(x / scale) + zero_point)."""

    scale: float
    zero_point: int
    dtype: str = "int8"  # or "int16"

    def __post_init__(self) -> None:
        if self.dtype not in ("int8", "int16"):
            raise SklearnImportError(f"input dtype must be int8 or int16, not {self.dtype!r}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise SklearnImportError(f"input scale must be a positive number, not {self.scale!r}")
        info = np.iinfo(self.dtype)
        if not info.min <= self.zero_point <= info.max:
            raise SklearnImportError(f"input zero point {self.zero_point} is outside {self.dtype}")

    @property
    def bounds(self) -> tuple[int, int]:
        info = np.iinfo(self.dtype)
        return int(info.min), int(info.max)


def _class_name(est) -> str:
    return type(est).__name__


def _unsupported(est) -> SklearnImportError:
    cls = type(est)
    hint = ""
    if cls.__name__ == "Pipeline":
        hint = " (import the pipeline's last step; its preprocessing belongs in a feature spec)"
    return SklearnImportError(f"{cls.__module__}.{cls.__name__} is not supported{hint}; supported: "
                              f"{', '.join(SUPPORTED)}")


def load_estimator(path: str | Path):
    """Load a pickled or joblib-saved estimator. Pickles execute code: load only trusted files."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise SklearnImportError(f"{path}: no such file")
    try:
        return joblib.load(path)
    except Exception as e:  # a pickle can raise anything
        raise SklearnImportError(f"{path}: not a joblib/pickle file of an estimator ({type(e).__name__}: {e})") from None


# -- input grid ---------------------------------------------------------------------------------

def _tree_estimators(est) -> list:
    if _class_name(est) in ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                            "ExtraTreesRegressor"):
        trees = list(getattr(est, "estimators_", []) or [])
    else:
        trees = [est] if hasattr(est, "tree_") else []
    if not trees:
        raise SklearnImportError(f"{_class_name(est)} is not fitted: call fit() before importing it")
    return trees


def _thresholds(trees: list) -> np.ndarray:
    ts = [t.tree_.threshold[t.tree_.children_left != -1] for t in trees]
    return np.concatenate(ts) if ts else np.zeros(0)


def default_input_quant(est, dtype: str = "int8") -> InputQuant:
    """A grid from the trees' own thresholds: [min(t, 0), max(t, 0)] spread over the dtype's range.

    Every split stays distinct from the grid's ends, so a feature that
    saturates beyond the extreme thresholds still takes every decision the
    unsaturated value would.
    """
    if _class_name(est) not in _TREE_CLASSES:
        raise SklearnImportError(f"{_class_name(est)}: give the input scale and zero point (a feature spec or "
                                 "--input-scale), there are no thresholds to derive them from")
    t = _thresholds(_tree_estimators(est))
    lo = min(float(t.min(initial=0.0)), 0.0)
    hi = max(float(t.max(initial=0.0)), 0.0)
    info = np.iinfo(dtype)
    qlo, qhi = int(info.min) + 1, int(info.max) - 1
    if hi == lo:
        return InputQuant(1.0, 0, dtype)
    scale = (hi - lo) / (qhi - qlo)
    zp = int(np.clip(round(qlo - lo / scale), info.min, info.max))
    return InputQuant(float(np.float32(scale)), zp, dtype)


def grid_threshold(t: np.ndarray, q: InputQuant) -> np.ndarray:
    """For each float threshold t: the largest grid point T with dequantize(T) <= t (int64).

    Below the grid's first point gives qmin - 1; at or above the last gives qmax.
    """
    t = np.asarray(t, np.float64)
    qmin, qmax = q.bounds
    est = np.floor(t / q.scale + q.zero_point)
    T = np.clip(np.nan_to_num(est, nan=qmin - 1), qmin - 1, qmax).astype(np.int64)

    def deq(v: np.ndarray) -> np.ndarray:  # the float32 dequantization scikit-learn is fed with
        return dequantize(np.clip(v, qmin, qmax), q.scale, q.zero_point).astype(np.float64)

    for _ in range(64):  # step up while the next point is still <= t, down while T itself is > t
        up = (T < qmax) & (deq(T + 1) <= t)
        down = (T >= qmin) & (deq(T) > t)
        if not (up.any() or down.any()):
            break
        T = T + up - down
    return T


def calibration_input_quant(x) -> InputQuant:
    """int8 input quantization covering the calibration data's range (and 0), as the quantizer chooses."""
    x = np.asarray(x, np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        raise SklearnImportError("calibration data is empty or has NaN/infinite values")
    from mpml.quantize import choose_qparams

    scale, zp = choose_qparams(float(x.min()), float(x.max()))
    return InputQuant(float(scale), int(zp))


# -- trees --------------------------------------------------------------------------------------

@dataclass
class _Forest:
    nodes: list[tuple[int, int, int, int]]
    roots: list[int]
    leaves: np.ndarray  # [n_leaves, n_outputs] int16


def _pack_trees(trees: list, q: InputQuant, leaf_rows) -> _Forest:
    """Walk every tree; `leaf_rows(tree, node)` gives a leaf's int16 row. Leaves are shared when equal."""
    qmin, qmax = q.bounds
    nodes: list[list[int]] = []
    roots: list[int] = []
    leaf_index: dict[bytes, int] = {}
    leaf_list: list[np.ndarray] = []
    for tree in trees:
        tr = tree.tree_
        left, right, feat = tr.children_left, tr.children_right, tr.feature
        T = grid_threshold(tr.threshold, q)

        def settle(k: int) -> int:
            """Follow splits every grid point takes the same way; return the node reached."""
            while left[k] != -1:
                if T[k] < qmin:
                    k = right[k]  # no grid point is <= t: all go right
                elif T[k] >= qmax:
                    k = left[k]  # every grid point is <= t: all go left
                else:
                    break
            return k

        def ref(k: int) -> int:
            """Allocate node k (settled) and return its reference; children are filled in later."""
            if left[k] == -1:
                row = np.asarray(leaf_rows(tree, k), np.int16)
                key = row.tobytes()
                if key not in leaf_index:
                    leaf_index[key] = len(leaf_list)
                    leaf_list.append(row)
                return ops.TREE_LEAF_FLAG | leaf_index[key]
            nodes.append([int(T[k]), int(feat[k]), -1, -1])
            stack.append((len(nodes) - 1, k))
            return len(nodes) - 1

        stack: list[tuple[int, int]] = []
        roots.append(ref(settle(0)))
        while stack:
            mine, k = stack.pop()
            nodes[mine][2] = ref(settle(int(left[k])))
            nodes[mine][3] = ref(settle(int(right[k])))
        if len(nodes) >= ops.TREE_LEAF_FLAG or len(leaf_list) >= ops.TREE_LEAF_FLAG:
            raise SklearnImportError(
                f"too many tree nodes ({len(nodes)}) or distinct leaves ({len(leaf_list)}) so far: TREE_ENSEMBLE "
                f"holds at most {ops.TREE_LEAF_FLAG - 1} of each; use fewer or shallower trees "
                "(n_estimators, max_depth, max_leaf_nodes)")
    if not nodes:  # every tree is a single leaf: the op still needs one (unreached) node record
        nodes.append([0, 0, ops.TREE_LEAF_FLAG, ops.TREE_LEAF_FLAG])
    return _Forest([tuple(n) for n in nodes], roots, np.stack(leaf_list))


def _import_trees(est, q: InputQuant, name: str, labels: list[str] | None) -> Graph:
    trees = _tree_estimators(est)
    n_features = int(est.n_features_in_)
    n_trees = len(trees)
    if n_trees >= ops.TREE_LEAF_FLAG:
        raise SklearnImportError(f"{n_trees} trees: at most {ops.TREE_LEAF_FLAG - 1}")
    classifier = _class_name(est).endswith("Classifier")
    n_outputs_sk = int(getattr(est, "n_outputs_", 1))
    if classifier:
        if n_outputs_sk != 1:
            raise SklearnImportError(f"{_class_name(est)} with {n_outputs_sk} outputs (multi-output "
                                     "classification) is not supported: import one classifier per output")
        n_classes = int(np.asarray(est.n_classes_).reshape(-1)[0])

        def leaf_rows(tree, k):
            v = tree.tree_.value[k, 0, :].astype(np.float64)
            total = v.sum()
            p = v / total if total > 0 else np.zeros_like(v)
            return np.rint(p * LEAF_SCALE)

        forest = _pack_trees(trees, q, leaf_rows)
        out_scale = 1.0 / (LEAF_SCALE * n_trees)
        out_zp = 0
        n_out = n_classes
        labels = labels or [str(c) for c in est.classes_]
        out_name = "probabilities"
    else:
        values = np.concatenate([t.tree_.value[t.tree_.children_left == -1, :, 0] for t in trees])
        vmin, vmax = float(values.min()), float(values.max())
        if not (np.isfinite(vmin) and np.isfinite(vmax)):
            raise SklearnImportError(f"{_class_name(est)} has non-finite leaf values")
        half = (vmax - vmin) / 2
        c = (vmax + vmin) / 2
        step = half / 32766 if half > 0 else (abs(c) / 16384 if c else 1.0)
        zp = -round(n_trees * c / step)
        if abs(zp) > 2**31 - 1 - n_trees * 32767:  # the centre does not fit an int32 zero point: centre on 0
            step = max(abs(vmin), abs(vmax)) / 32766 or 1.0
            zp = 0
        centre = -zp * step / n_trees

        def leaf_rows(tree, k):
            return np.clip(np.rint((tree.tree_.value[k, :, 0] - centre) / step), -32767, 32767)

        forest = _pack_trees(trees, q, leaf_rows)
        out_scale = step / n_trees
        out_zp = int(zp)
        n_out = n_outputs_sk
        labels = labels or []
        out_name = "value"

    nodes = np.array(forest.nodes, np.int64)
    raw = np.zeros((len(nodes), 4), np.uint16)
    raw[:, 0] = nodes[:, 0].astype(np.int16).view(np.uint16)
    raw[:, 1:] = nodes[:, 1:]
    tensors = [
        Tensor("features", q.dtype, (1, n_features), scale=q.scale, zero_point=q.zero_point),
        Tensor("tree_nodes", "uint8", (len(raw), ops.TREE_NODE_BYTES), data=raw.reshape(-1).view(np.uint8)),
        Tensor("tree_roots", "uint16", (n_trees,), data=np.array(forest.roots, np.uint16)),
        Tensor("tree_leaves", "int16", forest.leaves.shape, data=forest.leaves),
        Tensor(out_name, "int32", (1, n_out), scale=float(np.float32(out_scale)), zero_point=out_zp),
    ]
    n_leaves = forest.leaves.shape[0]
    op = Op(ops.TREE_ENSEMBLE, [0, 1, 2, 3], [4],
            [n_trees, n_features, n_out, len(forest.nodes), n_leaves, 1 if q.dtype == "int8" else 2])
    g = Graph(name, tensors, [op], [Edge(0, "features", float_io=True)],
              [Edge(4, out_name, labels=list(labels), float_io=True)])
    g.validate()
    return g


# -- linear models and MLPs, through the quantizer ---------------------------------------------

def _import_dense(est, q: InputQuant, name: str, labels: list[str] | None, calibration_x) -> Graph:
    try:
        from mpml import quantize as Q
        from mpml.nn import layers as L
        from mpml.nn import model as M
    except ImportError as e:
        raise SklearnImportError(f"{_class_name(est)} needs the post-training quantizer (mpml.quantize), "
                                 f"which is not available: {e}") from None
    if calibration_x is None:
        raise SklearnImportError(f"{_class_name(est)} is quantized with calibration data: give some feature "
                                 "vectors (--calib)")
    if not hasattr(est, "coef_") and not hasattr(est, "coefs_"):
        raise SklearnImportError(f"{_class_name(est)} is not fitted: call fit() before importing it")
    model = to_float_model(est, L, M)
    if q.dtype != "int8":
        raise SklearnImportError(f"{_class_name(est)}: dense layers take int8 inputs, not {q.dtype}")
    try:
        return Q.quantize(model, np.asarray(calibration_x, np.float32), input_scale=q.scale,
                          input_zero_point=q.zero_point, name=name, labels=labels)
    except Q.QuantizeError as e:
        raise SklearnImportError(f"{_class_name(est)}: {e}") from None


def _linear_head(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kernel [in, n_classes] and bias of a linear classifier's scores.

    A binary classifier has one score z (class 1 when z > 0): it becomes the
    two logits [-z/2, z/2], whose softmax is [1 - sigmoid(z), sigmoid(z)] and
    whose argmax is class 1 exactly when z > 0, as scikit-learn decides.
    """
    coef = np.asarray(coef, np.float64).reshape(-1, np.asarray(coef).shape[-1])
    intercept = np.asarray(intercept, np.float64).reshape(-1)
    if coef.shape[0] == 1:
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    return coef.T.astype(np.float32), intercept.astype(np.float32)


def to_float_model(est, L=None, M=None):
    """The estimator as an `mpml.nn` float model: Dense layers, then Softmax.

    Linear classifiers: one Dense of their decision function (softmax of it is
    LogisticRegression's multinomial predict_proba; for the others only its
    argmax means something). MLPClassifier: its layers with relu or identity
    activations (tanh and logistic have no int8 layer here).
    """
    if L is None or M is None:
        from mpml.nn import layers as L
        from mpml.nn import model as M
    cls = _class_name(est)
    n_in = int(est.n_features_in_)
    labels = [str(c) for c in est.classes_]
    if cls == "MLPClassifier":
        act = {"relu": "relu", "identity": "none"}.get(est.activation)
        if act is None:
            raise SklearnImportError(f"MLPClassifier(activation={est.activation!r}): only 'relu' and 'identity' "
                                     "have int8 layers; retrain with activation='relu'")
        coefs, intercepts = list(est.coefs_), list(est.intercepts_)
        layers, weights = [], []
        for w, b in zip(coefs[:-1], intercepts[:-1]):
            layers.append(L.Dense(w.shape[1], act))
            weights.append({"kernel": np.asarray(w, np.float32), "bias": np.asarray(b, np.float32)})
        k, b = _linear_head(coefs[-1].T, intercepts[-1])
    else:
        layers, weights = [], []
        k, b = _linear_head(est.coef_, est.intercept_)
    layers += [L.Dense(k.shape[1]), L.Softmax()]
    weights += [{"kernel": k, "bias": b}, {}]
    model = M.Sequential(layers, (n_in,), name=cls, labels=labels, task="classifier")
    model.set_weights(weights)
    return model


# -- entry points -------------------------------------------------------------------------------

def import_estimator(est, *, name: str = "model", input_quant: InputQuant | None = None, input_dtype: str = "int8",
                     labels: list[str] | None = None, features: bytes = b"", calibration_x=None) -> Graph:
    """A fitted estimator as a Graph (see the module's docstring for what is exact)."""
    cls = _class_name(est)
    if cls not in SUPPORTED:
        raise _unsupported(est)
    if cls not in _TREE_CLASSES and calibration_x is None:
        raise SklearnImportError(f"{cls} is quantized with calibration data: give some feature vectors (--calib)")
    if input_quant is None and cls not in _TREE_CLASSES:
        input_quant = calibration_input_quant(calibration_x)
    if input_quant is None:
        input_quant = default_input_quant(est, input_dtype)
    if cls in _TREE_CLASSES:
        graph = _import_trees(est, input_quant, name, labels)
    else:
        graph = _import_dense(est, input_quant, name, labels, calibration_x)
    graph.features = bytes(features)
    return graph


def load_sklearn(path: str | Path, **kwargs) -> Graph:
    """Load a joblib/pickle file and import its estimator (kwargs as import_estimator)."""
    path = Path(path)
    kwargs.setdefault("name", path.stem)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn version warnings on unpickling
        est = load_estimator(path)
    return import_estimator(est, **kwargs)


def check_agreement(est, graph: Graph, x_float) -> dict:
    """Run scikit-learn and the host reference on `x_float` quantized to the graph's grid.

    Returns {"n", "agree", "ties"}: classifiers compare predict with the argmax of
    the int32 sums; ties count samples whose top two float sums are within the
    rounding error of the int16 leaves. Regressors: {"n", "max_abs_error"}.
    """
    from mpml.reference import quantize, run

    t_in = graph.tensors[graph.inputs[0].tensor]
    qx = quantize(np.asarray(x_float, np.float32), t_in.scale, t_in.zero_point, t_in.dtype)
    xg = dequantize(qx, t_in.scale, t_in.zero_point)
    ys = np.stack([run(graph, row.reshape(1, -1))[0].reshape(-1) for row in qx])
    if _class_name(est).endswith("Classifier"):
        want = est.predict(xg)
        got = est.classes_[ys.argmax(axis=1)]
        proba = np.sort(est.predict_proba(xg), axis=1)
        # each class's int16 leaf is within 0.5/32767 of its probability: a gap this small may flip
        ties = int((proba[:, -1] - proba[:, -2] <= 1.0 / LEAF_SCALE).sum()) if proba.shape[1] > 1 else 0
        return {"n": len(qx), "agree": int((want == got).sum()), "ties": ties}
    t_out = graph.tensors[graph.outputs[0].tensor]
    got = dequantize(ys, t_out.scale, t_out.zero_point)
    want = est.predict(xg).reshape(len(qx), -1)
    return {"n": len(qx), "max_abs_error": float(np.abs(got - want).max())}
