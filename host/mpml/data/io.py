"""Reading and writing datasets: mpml's folder format, CSV and NumPy files.

The folder format (docs/datasets.md) is what `mpml collect` writes: a
`manifest.json` and one raw little-endian int16 file per recording. The
readers here also take CSV files (one file with label/subject/recording
columns, or one file per recording) and NumPy `.npz`/`.npy` files with X and
y. Every problem is a `DatasetError` naming the file.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mpml.data.dataset import FORMAT_VERSION, INT16_MAX, INT16_MIN, Dataset, DatasetError, Recording

__all__ = ["load_dataset", "save_dataset", "read_recording", "write_recording", "DatasetAppender", "MANIFEST",
           "FORMAT"]

MANIFEST = "manifest.json"
FORMAT = "mpml-dataset"
RECORDINGS_DIR = "recordings"
EXT = ".i16"

# CSV columns that are not channels (compared lower-cased).
_LABEL_COLS = ("label", "class")
_SUBJECT_COLS = ("subject", "subject_id")
_RECORDING_COLS = ("recording", "recording_id", "take")
_TIME_COLS = {"time": 1.0, "time_s": 1.0, "timestamp": 1.0, "time_ms": 1e-3, "timestamp_ms": 1e-3}


# -- recordings on disk --------------------------------------------------------------------------

def write_recording(path: str | Path, samples: np.ndarray) -> None:
    """Write int16 samples `[n, channels]` as raw little-endian int16, row by row (no header)."""
    np.ascontiguousarray(samples, dtype="<i2").tofile(str(path))


def read_recording(path: str | Path, n_channels: int) -> np.ndarray:
    """Read a raw `.i16` recording as int16 `[n, n_channels]`; DatasetError if its size does not fit."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read recording: {e.strerror or e}") from None
    frame = 2 * n_channels
    if len(raw) == 0:
        raise DatasetError(f"{path}: empty recording (no samples)")
    if len(raw) % frame:
        raise DatasetError(f"{path}: {len(raw)} bytes is not a whole number of {n_channels}-channel "
                           f"int16 samples ({frame} bytes each): truncated or wrong channel count")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16).reshape(-1, n_channels)


# -- save ----------------------------------------------------------------------------------------

def _safe_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "rec"
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def save_dataset(dataset: Dataset, path: str | Path, overwrite: bool = False) -> Path:
    """Write `dataset` as an mpml dataset folder at `path` (docs/datasets.md); return the path.

    The folder is built beside `path` and renamed into place, so a failure
    leaves no partial dataset; an existing `path` is replaced only with
    `overwrite=True`.
    """
    dataset.validate(require_all_labels=False)
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetError(f"{path}: already exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / RECORDINGS_DIR).mkdir()
        taken: set[str] = set()
        entries = []
        for r in dataset.recordings:
            fname = f"{RECORDINGS_DIR}/{_safe_name(r.name, taken)}{EXT}"
            write_recording(tmp / fname, r.samples)
            entry: dict[str, Any] = {"file": fname, "label": r.label, "subject": r.subject,
                                     "n_samples": r.n_samples}
            if r.metadata:
                entry["metadata"] = r.metadata
            entries.append(entry)
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION, "name": dataset.name,
            "sample_rate_hz": dataset.sample_rate_hz, "channels": dataset.channels,
            "units": dataset.units, "scale": dataset.scale, "labels": dataset.labels,
            "recordings": entries,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# -- append (mpml collect) ------------------------------------------------------------------------

class DatasetAppender:
    """Adds recordings to a dataset folder as they are recorded; creates the folder on the first one.

        app = DatasetAppender("data/gestures", sample_rate_hz=100, channels=["ax", "ay", "az"],
                              units=["g"] * 3, scale=[1 / 4096] * 3)
        path, stem = app.new_file("wave")        # recordings/wave-0001.i16, created empty, name reserved
        ...append raw little-endian int16 rows to path, flushing as you go...
        app.add(path, label="wave", subject="ann", metadata={...})

    An existing dataset must have the same rate, channels, units and scale
    (DatasetError naming what differs, before anything is written). The
    manifest is rewritten whole through `mpml.files.write_atomic` after each
    `add`, re-read first under a lock, so several writers in one process
    (`mpml collect --all`) can add to one folder: readers see the old manifest
    or the new one, never half of one. A recording file not (yet) in the
    manifest is ignored by `load_dataset`.
    """

    def __init__(self, path: str | Path, *, sample_rate_hz: float, channels: Sequence[str],
                 units: Sequence[str] | None = None, scale: Sequence[float] | None = None,
                 name: str | None = None):
        import threading

        self.path = Path(path)
        n = len(channels)
        self.header = {"sample_rate_hz": float(sample_rate_hz), "channels": [str(c) for c in channels],
                       "units": [str(u) for u in units] if units is not None else [""] * n,
                       "scale": [float(s) for s in scale] if scale is not None else [1.0] * n}
        self.name = name or self.path.name
        self._lock = threading.Lock()
        self.created = False
        existing = self._read()
        if existing is not None:
            self.check(existing)
        elif self.path.is_dir() and any(p.name != RECORDINGS_DIR for p in self.path.iterdir()):
            raise DatasetError(f"{self.path}: a folder without {MANIFEST} that holds other files: not a dataset "
                               f"folder to add to (choose a new or empty folder)")

    @staticmethod
    def compatible(manifest: dict, header: dict) -> list[str]:
        """What differs between a manifest and a recording's header (rate, channels, units, scale)."""
        why = []
        if float(manifest.get("sample_rate_hz", 0)) != header["sample_rate_hz"]:
            why.append(f"sample rate {manifest.get('sample_rate_hz'):g} Hz, not {header['sample_rate_hz']:g} Hz")
        n = len(manifest.get("channels", []))
        for key in ("channels", "units", "scale"):
            have = manifest.get(key)
            if have is None and key != "channels":
                have = [""] * n if key == "units" else [1.0] * n
            if key == "scale" and have is not None:
                have = [float(v) for v in have]
            if have != header[key]:
                why.append(f"{key} {have}, not {header[key]}")
        return why

    def check(self, manifest: dict) -> None:
        why = self.compatible(manifest, self.header)
        if why:
            raise DatasetError(f"{self.path}: this dataset has " + "; ".join(why)
                               + ": collect into another folder, or with the dataset's settings")

    def _read(self) -> dict | None:
        mpath = self.path / MANIFEST
        if not mpath.exists():
            return None
        try:
            m = json.loads(mpath.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DatasetError(f"{mpath}: cannot read: {e}") from None
        if not isinstance(m, dict) or m.get("format", FORMAT) != FORMAT:
            raise DatasetError(f"{mpath}: not an mpml dataset manifest")
        if m.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise DatasetError(f"{mpath}: dataset format version {m.get('version')}; this mpml writes version "
                               f"{FORMAT_VERSION}")
        return m

    def new_file(self, stem: str) -> tuple[Path, str]:
        """Create the next free `recordings/<stem>-NNNN.i16`, empty; returns (its path, its name)."""
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "rec"
        rec_dir = self.path / RECORDINGS_DIR
        with self._lock:
            if not rec_dir.is_dir():
                self.created = self.created or not self.path.exists()
                rec_dir.mkdir(parents=True, exist_ok=True)
            pattern = re.compile(re.escape(base) + r"-(\d+)$")
            taken = [int(m.group(1)) for p in rec_dir.iterdir() if (m := pattern.match(p.stem))]
            k = max(taken, default=0) + 1
            while True:
                stem_k = f"{base}-{k:04d}"
                p = rec_dir / f"{stem_k}{EXT}"
                try:
                    with open(p, "xb"):  # exclusive: another writer cannot take the same name
                        pass
                    return p, stem_k
                except FileExistsError:
                    k += 1

    def add(self, file: str | Path, label: str, subject: str = "", metadata: dict | None = None) -> dict:
        """Enter a finished recording file in the manifest (written atomically); returns its entry.

        The file's size must be a whole number of samples; an empty file is
        removed instead (a recording needs samples).
        """
        from mpml.files import write_atomic

        file = Path(file)
        size = file.stat().st_size
        frame = 2 * len(self.header["channels"])
        if size % frame:
            raise DatasetError(f"{file}: {size} bytes is not a whole number of samples ({frame} bytes each)")
        if size == 0:
            file.unlink()
            return {}
        entry: dict[str, Any] = {"file": f"{RECORDINGS_DIR}/{file.name}", "label": str(label),
                                 "subject": str(subject or ""), "n_samples": size // frame}
        if metadata:
            entry["metadata"] = metadata
        with self._lock:
            m = self._read()
            if m is None:
                m = {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name, **self.header,
                     "labels": [], "recordings": []}
            else:
                self.check(m)
            if entry["label"] not in m["labels"]:
                m["labels"].append(entry["label"])
            m["recordings"] = [r for r in m["recordings"] if r.get("file") != entry["file"]] + [entry]
            write_atomic(self.path / MANIFEST, (json.dumps(m, indent=1) + "\n").encode())
        return entry


# -- load ----------------------------------------------------------------------------------------

def load_dataset(path: str | Path, *, sample_rate_hz: float | None = None,
                 scale: Sequence[float] | float | None = None, channels: Sequence[str] | None = None,
                 name: str | None = None, allow_pickle: bool = False) -> Dataset:
    """Read a dataset, detecting its kind from `path`.

    - a folder with `manifest.json`: mpml's format (recording files `.i16`,
      or `.csv` with the label from the manifest);
    - a folder of CSV files, one per recording (label from a `label` column or
      the file's sub-folder name: `root/<label>/<take>.csv`);
    - a `.csv` file: rows with channel columns and a `label` column, optional
      `subject` and `recording` columns (without `recording`, each run of
      rows with the same label and subject is one recording);
    - a `.npz` (or a `.npy` holding a dict, with `allow_pickle=True`): `X`
      (`[n_recordings, n_samples, channels]`, `[n_recordings, n_samples]`
      for one channel, or a sequence of `[n_i, channels]` arrays), `y`
      (names or indices), optional `subject`, `classes`/`labels`/`y_labels`,
      `n_samples`, `samplerate_hz`/`sample_rate_hz`, `channels`/`X_labels`,
      `units`, `scale`.

    Integer data within int16 is taken as sensor counts (scale from `scale`,
    the manifest or 1); floats are physical units, converted to counts with
    `scale` or `auto_scale`. `sample_rate_hz` is required where the files do
    not say it. The result is validated (Dataset.validate).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / MANIFEST).is_file():
            ds = _load_folder(path, scale=scale)
        else:
            ds = _load_csv_folder(path, sample_rate_hz=sample_rate_hz, scale=scale, channels=channels)
    elif path.suffix.lower() == ".csv":
        ds = _load_csv_file(path, sample_rate_hz=sample_rate_hz, scale=scale, channels=channels)
    elif path.suffix.lower() in (".npz", ".npy"):
        ds = _load_numpy(path, sample_rate_hz=sample_rate_hz, scale=scale, channels=channels,
                         allow_pickle=allow_pickle)
    else:
        raise DatasetError(f"{path}: not a dataset (expected a folder, .csv, .npz or .npy)")
    if name:
        ds.name = name
    return ds.validate()


def _load_folder(root: Path, scale=None) -> Dataset:
    mpath = root / MANIFEST
    try:
        manifest = json.loads(mpath.read_text())
    except OSError as e:
        raise DatasetError(f"{mpath}: cannot read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{mpath}: not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise DatasetError(f"{mpath}: expected a JSON object")
    if manifest.get("format", FORMAT) != FORMAT:
        raise DatasetError(f"{mpath}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise DatasetError(f"{mpath}: dataset format version {version}; this mpml reads version {FORMAT_VERSION}")
    for key in ("sample_rate_hz", "channels", "labels", "recordings"):
        if key not in manifest:
            raise DatasetError(f"{mpath}: missing {key!r}")
    channels = manifest["channels"]
    if not isinstance(channels, list) or not channels:
        raise DatasetError(f"{mpath}: 'channels' must be a non-empty list of names")
    n_ch = len(channels)
    rate = manifest["sample_rate_hz"]
    if not isinstance(rate, (int, float)) or not rate > 0 or not math.isfinite(rate):
        raise DatasetError(f"{mpath}: sample_rate_hz {rate!r} is not a positive number")
    units = manifest.get("units", [""] * n_ch)
    mscale = manifest.get("scale", [1.0] * n_ch)
    if not isinstance(units, list) or len(units) != n_ch:
        raise DatasetError(f"{mpath}: {n_ch} channels but units {units!r}")
    if not isinstance(mscale, list) or len(mscale) != n_ch:
        raise DatasetError(f"{mpath}: {n_ch} channels but scale {mscale!r}")
    if not isinstance(manifest["recordings"], list):
        raise DatasetError(f"{mpath}: 'recordings' must be a list")
    recs = []
    for k, entry in enumerate(manifest["recordings"]):
        if not isinstance(entry, dict) or "file" not in entry or "label" not in entry:
            raise DatasetError(f"{mpath}: recording entry {k} needs 'file' and 'label'")
        fpath = root / entry["file"]
        erate = entry.get("sample_rate_hz", rate)
        if erate != rate:
            raise DatasetError(f"{fpath}: sample rate {erate} Hz differs from the dataset's {rate} Hz "
                               f"(inconsistent rates)")
        if fpath.suffix.lower() == ".csv":
            table = _read_csv(fpath)
            if table.channels != [str(c) for c in channels]:
                raise DatasetError(f"{fpath}: columns {table.channels} differ from the manifest's channels "
                                   f"{channels} (inconsistent channels)")
            samples = _to_counts(fpath, table.values, mscale if scale is None else scale, given=True)
        else:
            samples = read_recording(fpath, n_ch)
        want = entry.get("n_samples")
        if want is not None and want != samples.shape[0]:
            raise DatasetError(f"{fpath}: {samples.shape[0]} samples, the manifest says {want} (truncated?)")
        recs.append(Recording(samples, entry["label"], entry.get("subject", ""),
                              Path(entry["file"]).stem, dict(entry.get("metadata", {}))))
    return Dataset(manifest.get("name", root.name), rate, channels, units,
                   mscale if scale is None else _scale_list(scale, n_ch, mpath),
                   manifest["labels"], recs, str(root))


class _Table:
    """A parsed CSV file: channel columns as float64, the role columns as strings."""

    def __init__(self, path: Path, channels: list[str], values: np.ndarray, roles: dict[str, list[str]],
                 dt: float | None, integral: bool):
        self.path, self.channels, self.values, self.roles, self.dt, self.integral = \
            path, channels, values, roles, dt, integral


def _read_csv(path: Path) -> _Table:
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: not a readable CSV file: {e}") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise DatasetError(f"{path}: empty CSV file")
    header = [h.strip() for h in rows[0]]
    try:
        [float(h) for h in header]
        raise DatasetError(f"{path}: the first row must name the columns (channels, optional label, "
                           f"subject, recording, time)")
    except ValueError:
        pass
    lower = [h.lower() for h in header]
    role_idx: dict[str, int] = {}
    time_idx, time_unit = None, 1.0
    chan_idx = []
    for i, h in enumerate(lower):
        if h in _LABEL_COLS and "label" not in role_idx:
            role_idx["label"] = i
        elif h in _SUBJECT_COLS and "subject" not in role_idx:
            role_idx["subject"] = i
        elif h in _RECORDING_COLS and "recording" not in role_idx:
            role_idx["recording"] = i
        elif h in _TIME_COLS and time_idx is None:
            time_idx, time_unit = i, _TIME_COLS[h]
        else:
            chan_idx.append(i)
    if not chan_idx:
        raise DatasetError(f"{path}: no channel columns (header {header})")
    body = rows[1:]
    if not body:
        raise DatasetError(f"{path}: no samples (only a header)")
    values = np.empty((len(body), len(chan_idx)), np.float64)
    integral = True
    times = []
    for ln, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DatasetError(f"{path}:{ln}: {len(row)} fields, the header has {len(header)}")
        for j, i in enumerate(chan_idx):
            cell = row[i].strip()
            try:
                v = float(cell)
            except ValueError:
                raise DatasetError(f"{path}:{ln}: column {header[i]!r}: {cell!r} is not a number") from None
            if not math.isfinite(v):
                raise DatasetError(f"{path}:{ln}: column {header[i]!r}: NaN or infinite sample {cell!r}")
            if integral and not re.fullmatch(r"[+-]?\d+", cell):
                integral = False
            values[ln - 2, j] = v
        if time_idx is not None:
            try:
                times.append(float(row[time_idx]) * time_unit)
            except ValueError:
                raise DatasetError(f"{path}:{ln}: time {row[time_idx]!r} is not a number") from None
    dt = None
    if len(times) > 1:
        d = np.diff(np.asarray(times))
        dt = float(np.median(d)) if np.median(d) > 0 else None
    roles = {role: [row[i].strip() for row in body] for role, i in role_idx.items()}
    return _Table(path, [header[i] for i in chan_idx], values, roles, dt, integral)


def _scale_list(scale, n_ch: int, where) -> list[float]:
    s = [float(scale)] * n_ch if np.ndim(scale) == 0 else [float(v) for v in scale]
    if len(s) != n_ch:
        raise DatasetError(f"{where}: {len(s)} scales for {n_ch} channels")
    return s


def _to_counts(where, values: np.ndarray, scale, given: bool) -> np.ndarray:
    """Counts from a table already known to be counts (integers) or floats with a scale."""
    if scale is None:
        raise DatasetError(f"{where}: float samples need a scale")
    s = np.asarray(_scale_list(scale, values.shape[1], where))
    counts = np.rint(values / s)
    if counts.size and (counts.min() < INT16_MIN or counts.max() > INT16_MAX):
        raise DatasetError(f"{where}: samples exceed int16 with scale {list(s)} "
                           f"({counts.min():g}..{counts.max():g} counts)")
    return counts.astype(np.int16)


def _build(where: Path, name: str, arrays: list[np.ndarray], labels: list, subjects: list, names: list,
           integral: bool, sample_rate_hz, channels, scale, label_names=None, units=None) -> Dataset:
    if sample_rate_hz is None:
        raise DatasetError(f"{where}: the sample rate is unknown: give sample_rate_hz (or a time column)")
    common = dict(sample_rate_hz=sample_rate_hz, channels=channels, units=units, subjects=subjects,
                  names=names, label_names=label_names, source=str(where))
    fits = all(a.size == 0 or (a.min() >= INT16_MIN and a.max() <= INT16_MAX) for a in arrays)
    if integral and fits:
        n_ch = arrays[0].shape[1] if arrays and arrays[0].ndim == 2 else 1
        return Dataset.from_counts(name, arrays, labels,
                                   scale=None if scale is None else _scale_list(scale, n_ch, where), **common)
    return Dataset.from_float(name, arrays, labels, scale=scale, **common)


def _load_csv_file(path: Path, sample_rate_hz=None, scale=None, channels=None) -> Dataset:
    t = _read_csv(path)
    if "label" not in t.roles:
        raise DatasetError(f"{path}: no label column (need one of {', '.join(_LABEL_COLS)}), "
                           f"or give one CSV per recording in label folders")
    n = len(t.values)
    labels, subjects = t.roles["label"], t.roles.get("subject", [""] * n)
    if "recording" in t.roles:
        keys = t.roles["recording"]
    else:  # runs of equal (label, subject)
        keys, run = [], 0
        for i in range(n):
            if i and (labels[i], subjects[i]) != (labels[i - 1], subjects[i - 1]):
                run += 1
            keys.append(str(run))
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    arrays, rlabels, rsubjects, names = [], [], [], []
    for k, rows in groups.items():
        labs = {labels[i] for i in rows}
        if len(labs) != 1:
            raise DatasetError(f"{path}: recording {k!r} has rows with different labels {sorted(labs)}")
        arrays.append(t.values[rows])
        rlabels.append(labels[rows[0]])
        rsubjects.append(subjects[rows[0]])
        names.append(f"{path.stem}_{k}" if "recording" not in t.roles else k)
    rate = sample_rate_hz or (1.0 / t.dt if t.dt else None)
    return _build(path, path.stem, arrays, rlabels, rsubjects, names, t.integral, rate,
                  channels or t.channels, scale)


def _load_csv_folder(root: Path, sample_rate_hz=None, scale=None, channels=None) -> Dataset:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".csv")
    if not files:
        raise DatasetError(f"{root}: no {MANIFEST} and no CSV files: not a dataset folder")
    arrays, labels, subjects, names = [], [], [], []
    first = None
    integral, dts = True, []
    for f in files:
        t = _read_csv(f)
        if first is None:
            first = t
        elif t.channels != first.channels:
            raise DatasetError(f"{f}: columns {t.channels} differ from {first.path.name}'s {first.channels} "
                               f"(inconsistent channels)")
        if "label" in t.roles:
            labs = set(t.roles["label"])
            if len(labs) != 1:
                raise DatasetError(f"{f}: one recording per file, but rows have labels {sorted(labs)}")
            label = labs.pop()
        elif f.parent != root:
            label = f.parent.relative_to(root).parts[0]
        else:
            raise DatasetError(f"{f}: no label: add a label column or put the file in a folder named "
                               f"after its label")
        subj = set(t.roles.get("subject", [""]))
        if len(subj) != 1:
            raise DatasetError(f"{f}: one recording per file, but rows have subjects {sorted(subj)}")
        arrays.append(t.values)
        labels.append(label)
        subjects.append(subj.pop())
        names.append(str(f.relative_to(root).with_suffix("")).replace(os.sep, "_"))
        integral &= t.integral
        if t.dt:
            dts.append(t.dt)
    if sample_rate_hz is None and dts:
        if max(dts) > 1.01 * min(dts):
            raise DatasetError(f"{root}: the files' time columns give inconsistent sample rates "
                               f"({1 / max(dts):g}..{1 / min(dts):g} Hz)")
        sample_rate_hz = 1.0 / float(np.median(dts))
    return _build(root, root.name, arrays, labels, subjects, names, integral, sample_rate_hz,
                  channels or first.channels, scale)


def _load_numpy(path: Path, sample_rate_hz=None, scale=None, channels=None, allow_pickle=False) -> Dataset:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from None
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise DatasetError(f"{path}: not a readable NumPy file (neither .npy nor .npz content)")
    try:
        obj = np.load(path, allow_pickle=allow_pickle)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DatasetError(f"{path}: holds Python objects (pickle); load it with allow_pickle=True "
                               f"only if you trust the file") from None
        raise DatasetError(f"{path}: not a readable NumPy file: {e}") from None
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable NumPy file: {e}") from None
    if isinstance(obj, np.ndarray):
        if obj.dtype == object and obj.ndim == 0 and isinstance(obj.item(), dict):
            d = obj.item()
        else:
            raise DatasetError(f"{path}: a .npy file holds one array {obj.shape}, so no labels: "
                               f"use a .npz with X and y")
    else:
        with obj:
            try:
                d = {k: obj[k] for k in obj.files}
            except ValueError as e:
                raise DatasetError(f"{path}: holds Python objects (pickle); load it with allow_pickle=True "
                                   f"only if you trust the file ({e})") from None
    return dataset_from_arrays(d, path, sample_rate_hz=sample_rate_hz, scale=scale, channels=channels)


def _pick(d: dict, *keys):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def dataset_from_arrays(d: dict, where: str | Path, *, sample_rate_hz=None, scale=None, channels=None,
                        name: str | None = None, units=None) -> Dataset:
    """A dataset from a dict of arrays (the keys `load_dataset` reads from `.npz` files)."""
    where = Path(where)
    X, y = _pick(d, "X", "x"), _pick(d, "y", "Y")
    if X is None or y is None:
        raise DatasetError(f"{where}: needs arrays X and y (found {sorted(d)})")
    y = list(np.asarray(y).reshape(-1))
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 2:
            X = X[:, :, None]
        if X.ndim != 3:
            raise DatasetError(f"{where}: X has shape {X.shape}; expected [recordings, samples, channels]")
        arrays = list(X)
    else:
        arrays = [np.asarray(a) for a in X]
        arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
        if any(a.ndim != 2 for a in arrays):
            raise DatasetError(f"{where}: every recording in X must be [samples, channels]")
        widths = sorted({a.shape[1] for a in arrays})
        if len(widths) > 1:
            bad = next(k for k, a in enumerate(arrays) if a.shape[1] != arrays[0].shape[1])
            raise DatasetError(f"{where}: recording {bad} has {arrays[bad].shape[1]} channels, recording 0 "
                               f"has {arrays[0].shape[1]} (inconsistent channel counts)")
    if len(arrays) != len(y):
        raise DatasetError(f"{where}: {len(arrays)} recordings in X but {len(y)} labels in y")
    n_samples = _pick(d, "n_samples", "lengths")
    if n_samples is not None:
        n_samples = np.asarray(n_samples).reshape(-1)
        if len(n_samples) != len(arrays):
            raise DatasetError(f"{where}: {len(n_samples)} n_samples for {len(arrays)} recordings")
        arrays = [a[:int(n)] for a, n in zip(arrays, n_samples)]
    rate = _pick(d, "sample_rate_hz", "samplerate_hz", "sample_rate", "fs")
    if rate is not None:
        rates = np.unique(np.asarray(rate, dtype=np.float64).reshape(-1))
        if len(rates) != 1:
            raise DatasetError(f"{where}: inconsistent sample rates {list(rates)}")
        rate = float(rates[0])
    if sample_rate_hz is not None:
        rate = float(sample_rate_hz)
    label_names = _pick(d, "classes", "labels", "y_labels", "label_names")
    if label_names is not None:
        label_names = [str(v) for v in np.asarray(label_names).reshape(-1)]
        if all(isinstance(v, (int, np.integer)) for v in y):
            bad = [int(v) for v in y if not 0 <= int(v) < len(label_names)]
            if bad:
                raise DatasetError(f"{where}: class index {bad[0]} out of range for {len(label_names)} classes")
    else:
        y = [int(v) if isinstance(v, (np.integer,)) else str(v) for v in y]
    subjects = _pick(d, "subject", "subjects", "groups")
    if subjects is not None:
        subjects = [str(s) for s in np.asarray(subjects).reshape(-1)]
    names = _pick(d, "names", "source_file", "recording")
    if names is not None:
        names = [Path(str(s)).stem for s in np.asarray(names).reshape(-1)]
        if len(set(names)) != len(names):
            names = None
    chans = channels or _pick(d, "channels", "X_labels", "channel_names")
    if chans is not None:
        chans = [str(c) for c in np.asarray(chans).reshape(-1)]
    units = units if units is not None else _pick(d, "units")
    if units is not None:
        units = [str(u) for u in np.asarray(units).reshape(-1)]
    if scale is None and _pick(d, "scale") is not None:
        scale = [float(s) for s in np.asarray(_pick(d, "scale")).reshape(-1)]
    integral = all(a.dtype.kind in "iu" for a in arrays)
    return _build(where, name or where.stem, arrays, y, subjects, names, integral, rate, chans, scale,
                  label_names=label_names, units=units)
