"""Every recipe in models/ trained on its data: float vs int8 on the test split.

    build/venv/bin/python tools/bench/recipes.py

Runs the same pipeline as `mpml train` (mpml.recipes.train: windows, split,
feature spec, numpy training, post-training quantization, host reference) and
prints one row per recipe and dataset: accuracy of the float model and of the
int8 graph and their agreement (classifiers), or ROC AUC of each and the
correlation of their anomaly scores (anomaly detectors).

Data: the smartwatch IMU set from the seglearn wheel (real, 10 subjects), a
synthetic 1 kHz vibration set made here (a motor's hum; faults add a bearing
defect's impulse train or an imbalance harmonic), and, when this checkout sits
beside a `shared/data` folder with 3-axis accelerometer recordings (.npz with
X, y, classes, samplerate_hz), those too (local work only; the suite never
needs them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mpml.data import Dataset, builtin, load_dataset
from mpml.recipes import load_recipe, train

REPO = Path(__file__).resolve().parents[2]
LOCAL_DATA = REPO.parent / "shared" / "data"


def vibration(seed: int = 0) -> Dataset:
    """Synthetic 1 kHz accelerometer recordings of a motor: 'normal' or 'fault'.

    normal: 50 Hz hum with its 2nd and 3rd harmonics, random phases and
    amplitudes, broadband noise. fault: the same plus either a bearing defect
    (an impulse train at 87 Hz, each impulse ringing at 380 Hz) or an
    imbalance (a strong component at 25 Hz).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(2048) / 1000.0
    arrays, labels, subjects = [], [], []
    for k in range(60):
        label = "normal" if k < 40 else "fault"
        a = rng.uniform(0.7, 1.3)
        x = a * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 6.3))
        x += 0.3 * a * np.sin(2 * np.pi * 100 * t + rng.uniform(0, 6.3))
        x += 0.1 * a * np.sin(2 * np.pi * 150 * t + rng.uniform(0, 6.3))
        if label == "fault":
            if k % 2:
                phase = (t * 87.0) % 1.0
                x += 0.4 * np.exp(-phase * 40) * np.sin(2 * np.pi * 380 * t)
            else:
                x += 0.35 * np.sin(2 * np.pi * 25 * t + rng.uniform(0, 6.3))
        x += rng.normal(0, 0.08, t.shape)
        arrays.append(x[:, None])
        labels.append(label)
        subjects.append(f"motor{k % 12}")
    return Dataset.from_float("vibration (synthetic)", arrays, labels, sample_rate_hz=1000.0, channels=["az"],
                              units=["g"], scale=1 / 4096, subjects=subjects)


def runs():
    yield "activity_imu", "watch (seglearn, 6-axis)", lambda: builtin("watch")
    yield "gesture", "watch (seglearn, accelerometer)", lambda: builtin("watch")
    yield "vibration_anomaly", "vibration (synthetic)", vibration
    if LOCAL_DATA.is_dir():
        for path in sorted(LOCAL_DATA.glob("*.npz")):
            yield "gesture", f"{path.stem} (local)", lambda p=path: load_dataset(p)


def main() -> int:
    print("Recipes: float model vs int8 graph (host reference, = the board) on each test split")
    print("| recipe | data | split | test windows | float | int8 | agreement / score corr. | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, label, data in runs():
        recipe = load_recipe(name)
        t0 = time.perf_counter()
        result = train(recipe, data(), verbose=False)
        seconds = time.perf_counter() - t0
        r = result.report
        if r.task == "classifier":
            cells = (f"acc {r.float_acc:.1%}", f"acc {r.int8_acc:.1%}", f"{r.agreement:.1%}")
        else:
            cells = (f"AUC {r.float_auc:.3f}", f"AUC {r.int8_auc:.3f}", f"{r.score_corr:.3f}")
        print(f"| {name} | {label} | {recipe.split_by}, {result.report_split} | {r.n} | " + " | ".join(cells)
              + f" | {seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
