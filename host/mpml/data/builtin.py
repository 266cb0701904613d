"""Datasets that come with registry packages, as mpml datasets (for tests and benchmarks).

- `builtin("digits")`: scikit-learn's 8x8 handwritten digits (1797 images,
  labels "0".."9"). Each image is one recording of 8 samples (its rows, top
  to bottom) by 8 channels (columns `col0`..`col7`), counts 0..16, scale
  1/16 ("ink" as a fraction), nominal sample rate 8 Hz. A window of length 8
  is the whole image; a raw feature block turns it into the usual 64 values,
  and a 1-D CNN sees rows as time.
- `builtin("watch")`: the smartwatch IMU set in the seglearn wheel
  (`seglearn/data/watch_dataset.npy`): 140 recordings of 6 channels (ax, ay,
  az in g; wx, wy, wz in rad/s) at 50 Hz, 7 shoulder exercises, 10 subjects.
  Read straight from the wheel's file, without importing seglearn (which
  needs pandas). Converted to counts as a typical IMU at +-8 g and
  +-2000 deg/s would give them: 1/4096 g and (2000/32768) deg/s per count.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from mpml.data.dataset import Dataset, DatasetError

__all__ = ["builtin", "BUILTINS", "watch_path"]

BUILTINS = ("digits", "watch")

ACCEL_SCALE_G = 1.0 / 4096.0                      # +-8 g full scale
GYRO_SCALE_RAD_S = 2000.0 / 32768.0 * math.pi / 180.0  # +-2000 deg/s full scale


def builtin(name: str) -> Dataset:
    """One of the registry datasets in `BUILTINS`, as a validated Dataset."""
    if name == "digits":
        return _digits()
    if name == "watch":
        return _watch()
    raise DatasetError(f"no built-in dataset {name!r} (have: {', '.join(BUILTINS)})")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.int16)  # [1797, 8, 8], 0..16
    return Dataset.from_counts(
        "digits", list(images), [str(int(t)) for t in d.target], sample_rate_hz=8.0,
        channels=[f"col{k}" for k in range(8)], units=["ink"] * 8, scale=[1.0 / 16] * 8,
        label_names=[str(k) for k in range(10)], names=[f"d{k:04d}" for k in range(len(images))],
        source="sklearn.datasets.load_digits")


def watch_path() -> Path:
    """Where the seglearn wheel keeps the smartwatch data set (DatasetError if not installed)."""
    spec = importlib.util.find_spec("seglearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("builtin('watch') needs the seglearn wheel installed (pip install seglearn); "
                           "its data file is read without importing it")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "watch_dataset.npy"
    if not path.is_file():
        raise DatasetError(f"{path}: missing from the seglearn installation")
    return path


def _watch() -> Dataset:
    path = watch_path()
    # The file is a pickled dict inside a registry wheel we depend on: trusted.
    d = np.load(path, allow_pickle=True).item()
    x = [np.asarray(a, dtype=np.float64) for a in d["X"]]
    channels = [str(c) for c in d.get("X_labels", ["ax", "ay", "az", "wx", "wy", "wz"])]
    units = ["g"] * 3 + ["rad/s"] * 3
    scale = [ACCEL_SCALE_G] * 3 + [GYRO_SCALE_RAD_S] * 3
    ds = Dataset.from_float(
        "watch", x, [int(v) for v in d["y"]], sample_rate_hz=50.0, channels=channels, units=units,
        scale=scale, subjects=[f"s{int(s):02d}" for s in d["subject"]],
        label_names=[str(v) for v in d["y_labels"]], names=[f"w{k:03d}" for k in range(len(x))],
        source=str(path))
    if "side" in d:
        for r, side in zip(ds.recordings, d["side"]):
            r.metadata["side"] = str(side)
    return ds
