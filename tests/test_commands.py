"""The pipeline commands: mpml train, quantize, inspect, eval (and recipes), in process through cli.main.

Data: small synthetic datasets written in mpml's folder format (gestures as
per-class accelerometer waveforms, vibration with an abnormal harmonic), and
scikit-learn's digits for eval of an imported forest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mpml import cli
from mpml.blob import load, save
from mpml.builder import GraphBuilder  # noqa: F401  (the quantizer's builder: present with the pipeline)
from mpml.data import Dataset, save_dataset
from mpml.graph import Edge, Graph, Op, Tensor, block_weights
from mpml import ops
from mpml.recipes import RecipeError, load_recipe, parse_recipe
from mpml.testing import graphs

REPO = Path(__file__).resolve().parents[1]
BOARD_NAMES = ("esp32", "esp32s3", "esp32c3", "pico", "pico2", "m0", "m3", "rv32", "unix")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def gesture_data(tmp_path_factory) -> Path:
    """3 gestures x 8 recordings of 3-axis acceleration at 50 Hz, 320 samples each."""
    rng = np.random.default_rng(0)
    t = np.arange(320) / 50.0
    arrays, labels, subjects = [], [], []
    for k, (label, freq) in enumerate((("wave", 1.0), ("shake", 3.0), ("idle", 0.0))):
        for r in range(8):
            ph = rng.uniform(0, 2 * np.pi)
            x = np.stack([np.sin(2 * np.pi * freq * t + ph) * (0.5 + 0.2 * k),
                          np.cos(2 * np.pi * freq * t + ph) * 0.3, np.full_like(t, 1.0)], axis=1)
            arrays.append(x + rng.normal(0, 0.05, x.shape))
            labels.append(label)
            subjects.append(f"s{r % 4}")
    ds = Dataset.from_float("gestures", arrays, labels, sample_rate_hz=50.0, channels=["ax", "ay", "az"],
                            units=["g"] * 3, scale=1 / 4096, subjects=subjects)
    return save_dataset(ds, tmp_path_factory.mktemp("data") / "gestures")


@pytest.fixture(scope="module")
def vibration_data(tmp_path_factory) -> Path:
    """1 kHz vibration: 'normal' a 50 Hz hum; 'fault' adds a 230 Hz harmonic. 1024 samples per recording."""
    rng = np.random.default_rng(1)
    t = np.arange(1024) / 1000.0
    arrays, labels = [], []
    for label, n in (("normal", 14), ("fault", 6)):
        for _ in range(n):
            x = np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6)) * rng.uniform(0.8, 1.2)
            if label == "fault":
                x = x + 0.6 * np.sin(2 * np.pi * 230 * t)
            arrays.append((x + rng.normal(0, 0.05, t.shape))[:, None])
            labels.append(label)
    ds = Dataset.from_float("vibration", arrays, labels, sample_rate_hz=1000.0, channels=["az"], units=["g"],
                            scale=1 / 4096)
    return save_dataset(ds, tmp_path_factory.mktemp("data") / "vibration")


# -- recipes ------------------------------------------------------------------------------------

def test_recipes_in_models_are_valid():
    names = sorted(p.stem for p in (REPO / "models").glob("*.toml"))
    assert {"gesture", "vibration_anomaly"} <= set(names)
    for n in names:
        r = load_recipe(REPO / "models" / f"{n}.toml")
        assert r.name and r.window > 0 and r.features["blocks"]
    assert load_recipe("gesture").arch == "cnn1d"
    assert load_recipe("vibration_anomaly").task == "anomaly"


def test_recipe_errors_name_the_key(tmp_path):
    import tomllib

    base = tomllib.loads((REPO / "models" / "gesture.toml").read_text())
    cases = [
        (lambda d: d.pop("model"), "missing 'model'"),
        (lambda d: d.update(colour="red"), "unknown key colour"),
        (lambda d: d["model"].update(type="transformer"), "type 'transformer'"),
        (lambda d: d["model"].update(filterz=3), "unknown option 'filterz' for cnn1d"),
        (lambda d: d["train"].update(epochs="many"), r"\[train\]: 'epochs' = 'many' has the wrong type"),
        (lambda d: d["data"].update(split="window"), "never by window"),
        (lambda d: d["features"].update(blocks=[{"wavelet": {}}]), r"\[features\].*unknown kind 'wavelet'"),
        (lambda d: d["features"].update(window=0), "window = 0"),
        (lambda d: d.update(task="anomaly"), "does not suit task"),
    ]
    for change, pattern in cases:
        import copy

        d = copy.deepcopy(base)
        change(d)
        with pytest.raises(RecipeError, match=pattern):
            parse_recipe(d, "x.toml")
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("name = [")
    with pytest.raises(RecipeError, match="bad.toml: not valid TOML"):
        load_recipe(tmp_path / "bad.toml")


# -- inspect ------------------------------------------------------------------------------------

def test_inspect_lists_every_board(tmp_path, capsys):
    g = graphs.mlp()
    save(g, tmp_path / "mlp.mpml")
    code, out, err = run(capsys, "inspect", tmp_path / "mlp.mpml")
    assert code == 0, err
    for name in ("FULLY_CONNECTED", "SOFTMAX", "total", "arena"):
        assert name in out
    assert "2,624" in out  # MACs: 64*32 + 32*16 + 16*4
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln and ln.split()[0] in BOARD_NAMES}
    assert set(lines) == set(BOARD_NAMES)
    assert all(ln.rstrip().endswith("fits") for ln in lines.values())
    assert all(("us" in ln or "ms" in ln) for ln in lines.values())


def _big_fc(n_in: int, n_out: int) -> Graph:
    w = np.random.default_rng(0).integers(-128, 128, (n_out, n_in))
    ts = [Tensor("x", "int8", (1, n_in), scale=0.1), Tensor("w", "uint8", (n_out, n_in), data=block_weights(w), flags=3),
          Tensor("b", "int32", (n_out,), data=np.zeros(n_out, np.int32)),
          Tensor("m", "int32", (n_out,), data=np.full(n_out, 1 << 30, np.int32)),
          Tensor("s", "int32", (n_out,), data=np.full(n_out, -8, np.int32)), Tensor("y", "int8", (1, n_out), scale=0.1)]
    return Graph("big", ts, [Op(ops.FULLY_CONNECTED, [0, 1, 2, 3, 4], [5], [1, n_in, n_out, 0, -128, 127])],
                 [Edge(0, "x")], [Edge(5, "y")])


def test_inspect_says_per_board_when_a_model_does_not_fit(tmp_path, capsys):
    save(_big_fc(512, 400), tmp_path / "big.mpml")  # a 200 KB blob: more heap than a Pico has free
    code, out, err = run(capsys, "inspect", tmp_path / "big.mpml")
    assert code == 0, err
    line = {ln.split()[0]: ln for ln in out.splitlines() if ln and ln.split()[0] in BOARD_NAMES}
    assert "DOES NOT FIT: needs" in line["pico"] and "heap" in line["pico"]
    assert "DOES NOT FIT" in line["m0"] and "DOES NOT FIT" in line["esp32"]
    assert line["pico2"].rstrip().endswith("fits") and line["esp32s3"].rstrip().endswith("fits")
    # with only small boards, inspect says that it fits none
    boards = tmp_path / "boards"
    (boards / "virtual").mkdir(parents=True)
    for f in ("pico.toml", "esp32_devkitc.toml"):
        shutil.copy(REPO / "boards" / f, boards / f)
    code, out, _ = run(capsys, "inspect", tmp_path / "big.mpml", "--boards", boards)
    assert code == 0 and "fits NO board" in out


def test_inspect_and_eval_refuse_missing_or_bad_files(tmp_path, capsys):
    code, _, err = run(capsys, "inspect", tmp_path / "none.mpml")
    assert code == 1 and "none.mpml: no such file" in err
    (tmp_path / "junk.mpml").write_bytes(b"MPML" + bytes(100))
    code, _, err = run(capsys, "inspect", tmp_path / "junk.mpml")
    assert code == 1 and "junk.mpml: not a valid .mpml model" in err
    save(graphs.mlp(), tmp_path / "mlp.mpml")
    code, _, err = run(capsys, "eval", tmp_path / "mlp.mpml", tmp_path / "nodata")
    assert code == 1 and "feature spec" in err  # no spec inside: needs feature vectors
    np.savez(tmp_path / "x.npz", X=np.zeros((3, 10), np.float32), y=np.zeros(3, int))
    code, _, err = run(capsys, "eval", tmp_path / "mlp.mpml", tmp_path / "x.npz")
    assert code == 1 and "10 values; the model's input takes 64" in err
    assert not list(tmp_path.glob("*.png"))


# -- eval -------------------------------------------------------------------------------------

def test_eval_of_an_imported_forest_prints_metrics_and_writes_a_png(tmp_path, capsys):
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_digits(return_X_y=True)
    est = RandomForestClassifier(n_estimators=8, max_depth=8, random_state=0).fit(X[:1200], y[:1200])
    joblib.dump(est, tmp_path / "rf.joblib")
    code, out, err = run(capsys, "import", tmp_path / "rf.joblib", "-o", tmp_path / "rf.mpml")
    assert code == 0, err
    np.savez(tmp_path / "test.npz", X=X[1200:], y=y[1200:])
    code, out, err = run(capsys, "eval", tmp_path / "rf.mpml", tmp_path / "test.npz", "--png", tmp_path / "cm.png")
    assert code == 0, err
    acc = float(out.split("accuracy ")[1].split()[0])
    assert abs(acc - (est.predict(X[1200:]) == y[1200:]).mean()) < 0.02
    assert "precision  recall" in out and "confusion matrix" in out
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- train, quantize, eval end to end ------------------------------------------------------------

def test_train_quantize_eval_gesture_end_to_end(tmp_path, capsys, gesture_data):
    out_base = tmp_path / "gesture"
    code, out, err = run(capsys, "train", "--data", gesture_data, "--recipe", "gesture", "-o", out_base,
                         "--epochs", "15", "-q")
    assert code == 0, err
    assert (tmp_path / "gesture.npz").is_file() and (tmp_path / "gesture.mpml").is_file()
    assert "float" in out and "int8" in out and "accuracy" in out
    g = load(tmp_path / "gesture.mpml").graph
    assert g.features and sorted(g.outputs[0].labels) == ["idle", "shake", "wave"]
    # quantize the float model again with the whole dataset as calibration data
    code, out, err = run(capsys, "quantize", tmp_path / "gesture.npz", "--calib", gesture_data,
                         "-o", tmp_path / "again.mpml")
    assert code == 0, err
    assert "float vs int8" in out and (tmp_path / "again.mpml").is_file()
    # eval on the recipe's test split and on everything
    code, out, err = run(capsys, "eval", tmp_path / "gesture.mpml", gesture_data, "--recipe", "gesture",
                         "--split", "test")
    assert code == 0, err
    assert "accuracy" in out and (tmp_path / "gesture_confusion.png").is_file()
    code, out, err = run(capsys, "eval", tmp_path / "again.mpml", gesture_data, "--png", tmp_path / "all.png")
    assert code == 0, err
    assert float(out.split("accuracy ")[1].split()[0]) > 0.8  # three clearly different waveforms
    code, out, err = run(capsys, "inspect", tmp_path / "gesture.mpml")
    assert code == 0 and "CONV_2D" in out and "raw" in out


def test_train_and_eval_anomaly(tmp_path, capsys, vibration_data):
    code, out, err = run(capsys, "train", "--data", vibration_data, "--recipe", "vibration_anomaly",
                         "-o", tmp_path / "vib", "--epochs", "30", "-q")
    assert code == 0, err
    assert "ROC AUC" in out
    code, out, err = run(capsys, "eval", tmp_path / "vib.mpml", vibration_data)
    assert code == 0, err
    auc = float(out.split("ROC AUC")[1].split()[0])
    assert auc > 0.9 and "threshold" in out


def test_failed_commands_leave_no_output_files(tmp_path, capsys, gesture_data):
    code, _, err = run(capsys, "train", "--data", tmp_path / "missing", "--recipe", "gesture", "-o", tmp_path / "m")
    assert code == 1 and "missing: no such file or folder" in err
    code, _, err = run(capsys, "train", "--data", gesture_data, "--recipe", tmp_path / "none.toml", "-o", tmp_path / "m")
    assert code == 1 and "no such recipe file" in err
    recipe = (REPO / "models" / "gesture.toml").read_text().replace("window = 128", "window = 4000")
    (tmp_path / "long.toml").write_text(recipe)
    code, _, err = run(capsys, "train", "--data", gesture_data, "--recipe", tmp_path / "long.toml", "-o", tmp_path / "m")
    assert code == 1 and "longer than every recording" in err
    code, _, err = run(capsys, "quantize", tmp_path / "none.npz", "--calib", gesture_data)
    assert code == 1 and "none.npz: no such file" in err
    code, _, err = run(capsys, "import", tmp_path / "model.onnx")
    assert code == 1 and "give a .tflite model or a scikit-learn estimator" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.toml"]
