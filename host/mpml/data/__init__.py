"""Datasets: labelled int16 recordings, their on-disk format, readers, windows and splits.

    from mpml.data import load_dataset, builtin, windows, split
    ds = load_dataset("data/gestures")          # mpml folder, CSV, or .npz
    w = windows(ds, length=128, hop=64)         # x int16 [n, 128, channels], y, recording, subject
    parts = split(w, by="subject", fractions=(0.7, 0.15, 0.15), seed=0)

docs/datasets.md describes the folder format and every reader.
"""

from mpml.data.builtin import BUILTINS, builtin
from mpml.data.dataset import Dataset, DatasetError, Recording, auto_scale
from mpml.data.io import dataset_from_arrays, load_dataset, read_recording, save_dataset, write_recording
from mpml.data.windows import Split, Windows, split, windows

__all__ = ["Dataset", "DatasetError", "Recording", "auto_scale", "load_dataset", "save_dataset",
           "dataset_from_arrays", "read_recording", "write_recording", "builtin", "BUILTINS",
           "Windows", "windows", "Split", "split"]
