"""scikit-learn estimators imported as TREE_ENSEMBLE graphs (mpml.importers.sklearn).

The promise: on feature vectors quantized to the model's input grid, the host
reference (which the board equals bit for bit) gives scikit-learn's predict —
exactly for classifiers (argmax of the int32 sums), within half a leaf step
per tree for regressors. Checked on real data: scikit-learn's digits.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mpml import ops
from mpml.blob import load, read_blob, write_blob
from mpml.importers.sklearn import (InputQuant, SklearnImportError, check_agreement, grid_threshold,
                                    import_estimator, load_sklearn)
from mpml.reference import dequantize, quantize, run, run_float


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


CLASSIFIERS = [
    DecisionTreeClassifier(random_state=0),
    RandomForestClassifier(n_estimators=25, max_depth=9, random_state=0),
    ExtraTreesClassifier(n_estimators=25, random_state=0),
]
# the default grid (from the thresholds), a coarse one whose points sit exactly on thresholds
# (0.5 steps: x.5 splits), one that saturates (16 does not fit), and int16
GRIDS = [None, InputQuant(0.5, -128), InputQuant(0.05, -128), InputQuant(0.001, -32768, "int16")]


@pytest.mark.parametrize("est", CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_classifier_argmax_is_sklearn_predict_on_the_grid(digits, est):
    Xtr, Xte, ytr, yte = digits
    est.fit(Xtr, ytr)
    for grid in GRIDS:
        g = import_estimator(est, input_quant=grid)
        r = check_agreement(est, g, Xte)
        assert r["agree"] == r["n"] == len(Xte), (grid, r)
        # also on points between the data: random grid vectors, including both ends of the grid
        t_in = g.tensors[0]
        info = np.iinfo(t_in.dtype)
        q = np.random.default_rng(1).integers(info.min, info.max + 1, (200, 64)).astype(t_in.dtype)
        q[0], q[1] = info.min, info.max
        xg = dequantize(q, t_in.scale, t_in.zero_point)
        got = est.classes_[np.stack([run(g, row[None])[0][0] for row in q]).argmax(axis=1)]
        assert (got == est.predict(xg)).all()


def test_classifier_blob_round_trip_and_float_predict(digits):
    Xtr, Xte, ytr, yte = digits
    est = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(Xtr, ytr)
    g = import_estimator(est, name="digits_rf")
    data = write_blob(g)
    back = read_blob(data).graph
    assert [op.name for op in back.ops] == ["TREE_ENSEMBLE"]
    assert back.outputs[0].labels == [str(c) for c in range(10)]
    # Model.predict's float edges: mean probabilities; argmax agrees with sklearn on in-range data
    p = run_float(back, Xte[0].astype(np.float32)[None])[0][0]
    assert abs(float(p.sum()) - 1.0) < 1e-3
    t_in = back.tensors[back.inputs[0].tensor]
    xg = dequantize(quantize(Xte[:1], t_in.scale, t_in.zero_point), t_in.scale, t_in.zero_point)
    np.testing.assert_allclose(p, est.predict_proba(xg)[0], atol=1e-4)


@pytest.mark.parametrize("est", [DecisionTreeRegressor(max_depth=8, random_state=0),
                                 RandomForestRegressor(n_estimators=15, max_depth=7, random_state=0),
                                 ExtraTreesRegressor(n_estimators=15, max_depth=7, random_state=0)],
                         ids=lambda e: type(e).__name__)
def test_regressor_output_is_the_forest_mean(digits, est):
    Xtr, Xte, ytr, yte = digits
    target = Xtr[:, 36] * 2.5 - 40.0 + ytr  # a real-valued target, offset from 0
    est.fit(Xtr, target)
    g = import_estimator(est)
    t_out = g.tensors[g.outputs[0].tensor]
    assert t_out.dtype == "int32" and t_out.scale > 0
    r = check_agreement(est, g, Xte)
    n_trees = g.ops[0].params[0]
    step = t_out.scale * n_trees
    assert r["max_abs_error"] <= step / 2 * 1.01 + 1e-5, r


def test_multi_output_regressor_and_constant_trees():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.stack([X[:, 0] * 3, np.full(200, 7.0)], axis=1)
    est = DecisionTreeRegressor(max_depth=4, random_state=0).fit(X, Y)
    r = check_agreement(est, g := import_estimator(est, input_quant=InputQuant(0.05, 0)), X)
    assert g.ops[0].params[2] == 2 and r["max_abs_error"] < 1e-3
    # a constant target: every tree is one leaf, a root that is a leaf
    const = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, np.full(200, -2.5))
    g = import_estimator(const, input_quant=InputQuant(0.05, 0))
    assert all(r & ops.TREE_LEAF_FLAG for r in g.tensors[2].data)
    y = run_float(g, X[:1].astype(np.float32))[0]
    assert abs(float(y[0, 0]) + 2.5) < 1e-3


def test_grid_threshold_is_exact():
    q = InputQuant(0.1, 3)
    t = np.array([-1e9, -12.95, -0.05, 0.0, 0.05, 0.1, 0.15, 12.4, 1e9])
    T = grid_threshold(t, q)
    grid = dequantize(np.arange(-128, 128), q.scale, q.zero_point).astype(np.float64)
    for ti, Ti in zip(t, T):
        below = np.nonzero(grid <= ti)[0]
        assert Ti == (below.max() - 128 if below.size else -129)


def test_unsupported_estimators_are_refused_by_name(digits):
    Xtr, _Xte, ytr, _ = digits
    for est in (SVC().fit(Xtr[:200], ytr[:200]), GradientBoostingClassifier(n_estimators=2).fit(Xtr[:200], ytr[:200])):
        with pytest.raises(SklearnImportError, match=rf"{type(est).__name__} is not supported; supported: .*RandomForestClassifier"):
            import_estimator(est)
    with pytest.raises(SklearnImportError, match="Pipeline is not supported.*last step"):
        import_estimator(make_pipeline(StandardScaler(), DecisionTreeClassifier()).fit(Xtr, ytr))
    with pytest.raises(SklearnImportError, match="not fitted"):
        import_estimator(RandomForestClassifier())
    with pytest.raises(SklearnImportError, match="multi-output"):
        import_estimator(DecisionTreeClassifier().fit(Xtr, np.stack([ytr, ytr % 2], axis=1)))
    with pytest.raises(SklearnImportError, match="at most 32767"):
        import_estimator(ExtraTreesClassifier(n_estimators=120, random_state=0).fit(Xtr, ytr))
    with pytest.raises(SklearnImportError, match="int8 or int16"):
        InputQuant(0.1, 0, "int32")


def test_load_from_joblib_and_pickle_files(tmp_path, digits):
    Xtr, Xte, ytr, _ = digits
    est = DecisionTreeClassifier(max_depth=5, random_state=0).fit(Xtr, ytr)
    joblib.dump(est, tmp_path / "tree.joblib")
    (tmp_path / "tree.pkl").write_bytes(pickle.dumps(est))
    for f in ("tree.joblib", "tree.pkl"):
        g = load_sklearn(tmp_path / f)
        assert g.name == "tree" and check_agreement(est, g, Xte)["agree"] == len(Xte)
    with pytest.raises(SklearnImportError, match="no such file"):
        load_sklearn(tmp_path / "missing.joblib")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(SklearnImportError, match="junk.pkl: not a joblib/pickle file"):
        load_sklearn(tmp_path / "junk.pkl")


def _mpml(*args):
    return subprocess.run([sys.executable, "-m", "mpml", *args], capture_output=True, text=True, timeout=120)


def test_import_command(tmp_path, digits):
    Xtr, Xte, ytr, _ = digits
    est = RandomForestClassifier(n_estimators=5, max_depth=6, random_state=0).fit(Xtr, ytr)
    joblib.dump(est, tmp_path / "rf.joblib")
    r = _mpml("import", str(tmp_path / "rf.joblib"), "-o", str(tmp_path / "rf.mpml"))
    assert r.returncode == 0, r.stderr
    assert "TREE_ENSEMBLE" in r.stdout and "5 trees" in r.stdout
    g = load(tmp_path / "rf.mpml").graph
    assert check_agreement(est, g, Xte)["agree"] == len(Xte)
    r = _mpml("import", str(tmp_path / "rf.joblib"), "-o", str(tmp_path / "rf16.mpml"), "--input-bits", "16",
              "--input-scale", "0.01", "--input-zero-point", "0")
    assert r.returncode == 0, r.stderr
    t = load(tmp_path / "rf16.mpml").graph.tensors[0]
    assert (t.dtype, t.zero_point) == ("int16", 0) and abs(t.scale - 0.01) < 1e-9
    joblib.dump(SVC().fit(Xtr[:100], ytr[:100]), tmp_path / "svc.joblib")
    r = _mpml("import", str(tmp_path / "svc.joblib"), "-o", str(tmp_path / "svc.mpml"))
    assert r.returncode == 1 and "SVC is not supported" in r.stderr
    assert not (tmp_path / "svc.mpml").exists()
    r = _mpml("import", str(tmp_path / "nothing.joblib"))
    assert r.returncode == 1 and "nothing.joblib" in r.stderr


def test_linear_models_and_mlp_through_the_quantizer(digits):
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import LinearSVC

    from mpml.importers.sklearn import to_float_model
    from mpml.quantize import predict

    Xtr, Xte, ytr, yte = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ests = [LogisticRegression(max_iter=3000), LinearSVC(), SGDClassifier(random_state=0),
                MLPClassifier((32,), max_iter=400, random_state=0)]
        for est in ests:
            est.fit(Xtr, ytr)
            # the float model is the estimator: same decisions
            assert (to_float_model(est).predict(Xte).argmax(1) == est.predict(Xte)).all()
            g = import_estimator(est, calibration_x=Xtr)
            assert [op.name for op in g.ops][-1] == "SOFTMAX"
            acc_sk = (est.predict(Xte) == yte).mean()
            acc_q = (predict(g, Xte).argmax(1) == yte).mean()
            assert acc_q >= acc_sk - 0.02, (type(est).__name__, acc_sk, acc_q)
        # binary: one decision function becomes two logits [-z/2, z/2]; softmax = [1 - sigmoid, sigmoid]
        lr = LogisticRegression(max_iter=3000).fit(Xtr, ytr == 3)
        np.testing.assert_allclose(to_float_model(lr).predict(Xte)[:, 1], lr.predict_proba(Xte)[:, 1], atol=1e-5)
        with pytest.raises(SklearnImportError, match="calibration"):
            import_estimator(ests[0])
        with pytest.raises(SklearnImportError, match="activation='tanh'.*relu"):
            import_estimator(MLPClassifier((4,), activation="tanh", max_iter=5).fit(Xtr, ytr), calibration_x=Xtr)
