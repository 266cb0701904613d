"""Datasets: the folder format, CSV and NumPy readers, windows, leak-free splits, bad input.

Real data from the registries: scikit-learn's digits and the smartwatch IMU set
in the seglearn wheel (builtin("digits"), builtin("watch")).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from mpml.data import (Dataset, DatasetError, Recording, builtin, load_dataset, save_dataset, split,
                       windows)


@pytest.fixture(scope="module")
def watch() -> Dataset:
    return builtin("watch")


def small(n_rec: int = 6, n_ch: int = 2, labels=("a", "b"), subjects=("s1", "s2", "s3"), seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    recs = [Recording(rng.integers(-1000, 1000, size=(40 + 7 * k, n_ch)).astype(np.int16),
                      labels[k % len(labels)], subjects[k % len(subjects)], f"r{k}", {"k": k})
            for k in range(n_rec)]
    return Dataset("small", 100.0, [f"ch{c}" for c in range(n_ch)], ["g"] * n_ch, [1 / 4096] * n_ch,
                   list(labels), recs).validate()


def same(a: Dataset, b: Dataset) -> bool:
    return (a.sample_rate_hz == b.sample_rate_hz and a.channels == b.channels and a.units == b.units
            and a.scale == b.scale and a.labels == b.labels and len(a) == len(b)
            and all(ra.label == rb.label and ra.subject == rb.subject and ra.metadata == rb.metadata
                    and ra.samples.dtype == rb.samples.dtype and np.array_equal(ra.samples, rb.samples)
                    for ra, rb in zip(a.recordings, b.recordings)))


# -- builtins --------------------------------------------------------------------------------------

def test_builtin_watch(watch):
    assert len(watch) == 140 and watch.sample_rate_hz == 50.0
    assert watch.channels == ["ax", "ay", "az", "wx", "wy", "wz"] and len(watch.labels) == 7
    assert len(watch.subjects) >= 3
    assert all(r.samples.dtype == np.int16 and r.n_channels == 6 for r in watch.recordings)
    # counts times scale give back the wheel's floats to half a count
    from mpml.data.builtin import watch_path
    raw = np.load(watch_path(), allow_pickle=True).item()
    r0 = watch.recordings[0]
    assert np.abs(watch.to_physical(r0) - raw["X"][0]).max() <= 0.5 * max(watch.scale) + 1e-12


def test_builtin_digits():
    d = builtin("digits")
    assert len(d) == 1797 and d.labels == [str(k) for k in range(10)]
    assert all(r.samples.shape == (8, 8) for r in d.recordings)
    assert min(r.samples.min() for r in d.recordings) == 0 and max(r.samples.max() for r in d.recordings) == 16
    w = windows(d, 8)
    assert w.x.shape == (1797, 8, 8) and np.array_equal(w.y, d.y)
    with pytest.raises(DatasetError, match="no built-in dataset 'mnist'"):
        builtin("mnist")


# -- the folder format -----------------------------------------------------------------------------

def test_folder_round_trip(tmp_path, watch):
    sub = watch.subset(range(0, 140, 10))
    sub.labels = sorted({r.label for r in sub.recordings}, key=watch.labels.index)
    path = save_dataset(sub, tmp_path / "w")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "mpml-dataset" and manifest["version"] == 1
    assert manifest["sample_rate_hz"] == 50.0 and manifest["scale"] == sub.scale
    entry = manifest["recordings"][0]
    raw = (path / entry["file"]).read_bytes()
    assert entry["file"].startswith("recordings/") and entry["file"].endswith(".i16")
    assert len(raw) == 2 * 6 * entry["n_samples"]
    assert raw == sub.recordings[0].samples.astype("<i2").tobytes()  # raw LE int16, row by row
    back = load_dataset(path)
    assert same(sub, back) and [r.name for r in back.recordings] == [r.name for r in sub.recordings]
    with pytest.raises(DatasetError, match="already exists"):
        save_dataset(sub, path)
    save_dataset(small(), path, overwrite=True)
    assert same(load_dataset(path), small())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_folder_written_without_numpy(tmp_path):
    """What a board (struct/array, no numpy) would write: the manifest and raw int16 frames."""
    root = tmp_path / "board"
    (root / "recordings").mkdir(parents=True)
    rows = [(i, -i, 3 * i) for i in range(50)]
    with open(root / "recordings" / "take1.i16", "wb") as f:
        for row in rows:
            f.write(struct.pack("<3h", *row))
    (root / "manifest.json").write_text(json.dumps({
        "format": "mpml-dataset", "version": 1, "name": "b", "sample_rate_hz": 104,
        "channels": ["x", "y", "z"], "units": ["g"] * 3, "scale": [0.000244140625] * 3, "labels": ["idle"],
        "recordings": [{"file": "recordings/take1.i16", "label": "idle", "subject": "me"}]}))
    ds = load_dataset(root)
    assert np.array_equal(ds.recordings[0].samples, np.array(rows, np.int16))
    assert ds.recordings[0].name == "take1" and ds.recordings[0].subject == "me"


# -- CSV and NumPy ---------------------------------------------------------------------------------

def test_csv_file_runs_and_floats(tmp_path):
    p = tmp_path / "log.csv"
    lines = ["time,ax,ay,label,subject"]
    for i in range(30):
        lab, subj = ("walk", "ann") if i < 10 else ("run", "ann") if i < 20 else ("walk", "bob")
        lines.append(f"{i * 0.02:.2f},{0.5 * np.sin(i):.6f},{-1.25 + i / 100:.4f},{lab},{subj}")
    p.write_text("\n".join(lines) + "\n")
    ds = load_dataset(p)
    assert ds.sample_rate_hz == pytest.approx(50.0) and ds.channels == ["ax", "ay"]
    assert [(r.label, r.subject, r.n_samples) for r in ds.recordings] == \
        [("walk", "ann", 10), ("run", "ann", 10), ("walk", "bob", 10)]
    # floats: power-of-two scale, max |x| within 16384 counts, round trip within half a count
    assert all(np.log2(s) == int(np.log2(s)) for s in ds.scale)
    back = np.concatenate([ds.to_physical(r) for r in ds.recordings])
    assert np.abs(back[:, 1] - (-1.25 + np.arange(30) / 100)).max() <= ds.scale[1] / 2
    assert ds.scale[1] * 16384 >= 1.25 > ds.scale[1] * 8192


def test_csv_recording_column_integers(tmp_path):
    p = tmp_path / "counts.csv"
    p.write_text("recording,label,x\n" + "".join(f"{'AB'[i % 2]},{'pq'[i % 2]},{i - 20}\n" for i in range(40)))
    ds = load_dataset(p, sample_rate_hz=10, scale=[0.5])
    assert [r.name for r in ds.recordings] == ["A", "B"] and ds.scale == [0.5]
    assert np.array_equal(ds.recordings[0].samples[:, 0], np.arange(-20, 20, 2))


def test_csv_folder_labels_from_folders(tmp_path):
    for label in ("up", "down"):
        for k in range(2):
            d = tmp_path / "set" / label
            d.mkdir(parents=True, exist_ok=True)
            (d / f"t{k}.csv").write_text("x,y\n" + "".join(f"{i},{-i}\n" for i in range(20 + k)))
    ds = load_dataset(tmp_path / "set", sample_rate_hz=20)
    assert sorted(ds.labels) == ["down", "up"] and len(ds) == 4
    assert {r.name for r in ds.recordings} == {"down_t0", "down_t1", "up_t0", "up_t1"}


def test_csv_per_recording_with_manifest(tmp_path):
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "a.csv").write_text("x\n0.5\n-0.25\n1\n")
    (tmp_path / "manifest.json").write_text(json.dumps({
        "sample_rate_hz": 10, "channels": ["x"], "scale": [0.25], "labels": ["L"],
        "recordings": [{"file": "recordings/a.csv", "label": "L"}]}))
    ds = load_dataset(tmp_path)
    assert ds.recordings[0].samples[:, 0].tolist() == [2, -1, 4]


def test_npz(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 30, 3)).astype(np.float32)
    p = tmp_path / "d.npz"
    np.savez(p, X=X, y=np.array([0, 1, 0, 1, 1], np.int8), classes=np.array(["no", "yes"]),
             n_samples=np.array([30, 30, 20, 25, 30]), samplerate_hz=np.int64(100),
             subject=np.array([1, 1, 2, 2, 3]))
    ds = load_dataset(p)
    assert ds.labels == ["no", "yes"] and ds.sample_rate_hz == 100
    assert [r.n_samples for r in ds.recordings] == [30, 30, 20, 25, 30]
    assert ds.subjects == ["1", "2", "3"] and [r.label for r in ds.recordings][:2] == ["no", "yes"]
    # a .npy holding a dict needs pickle, and says so
    q = tmp_path / "d.npy"
    np.save(q, {"X": [a for a in X], "y": [0, 1, 0, 1, 1]}, allow_pickle=True)
    with pytest.raises(DatasetError, match="d.npy: holds Python objects"):
        load_dataset(q, sample_rate_hz=100)
    assert len(load_dataset(q, sample_rate_hz=100, allow_pickle=True)) == 5


# -- windows and splits ----------------------------------------------------------------------------

def test_windows():
    ds = small()
    w = windows(ds, 16, 5)
    want = sum((r.n_samples - 16) // 5 + 1 for r in ds.recordings)
    assert w.x.shape == (want, 16, 2) and w.x.dtype == np.int16
    k = int(np.flatnonzero(w.recording == 3)[2])
    assert np.array_equal(w.x[k], ds.recordings[3].samples[10:26])
    assert w.labels[w.y[k]] == ds.recordings[3].label
    assert w.subjects[w.subject[k]] == ds.recordings[3].subject
    # recordings shorter than a window give none; longer than all is an error naming the longest
    w2 = windows(ds, 70)
    assert set(w2.recording) == {k for k, r in enumerate(ds.recordings) if r.n_samples >= 70}
    with pytest.raises(DatasetError, match=r"longer than every recording \(longest: 75 samples"):
        windows(ds, 76)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_splits_never_leak(watch, seed):
    w = windows(watch, 100, 25)
    for by in ("recording", "subject"):
        parts = split(w, by=by, fractions=(0.6, 0.2, 0.2), seed=seed)
        assert sum(len(p) for p in parts) == len(w)
        key = (lambda p: set(p.recording)) if by == "recording" else (lambda p: set(p.subject))
        sets = [key(p) for p in parts]
        assert all(sets) and not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        # subject splits also keep every recording whole (a recording has one subject)
        recs = [set(p.recording) for p in parts]
        assert not (recs[0] & recs[1] or recs[0] & recs[2] or recs[1] & recs[2])
        again = split(w, by=by, fractions=(0.6, 0.2, 0.2), seed=seed)
        assert all(np.array_equal(a.recording, b.recording) for a, b in zip(parts, again))
    # splitting the dataset, then windowing: the same guarantee by recording name
    dparts = split(watch, by="recording", seed=seed)
    names = [{r.name for r in p.recordings} for p in dparts]
    assert sum(map(len, names)) == 140 and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert all(len({r.label for r in p.recordings}) == 7 for p in dparts)  # stratified by label


def test_split_errors():
    d = builtin("digits").subset(range(100))
    with pytest.raises(DatasetError, match="by subject into 3 non-empty parts needs at least 3 subjects; there is 1"):
        split(d, by="subject")
    with pytest.raises(DatasetError, match="never by window"):
        split(d, by="window")
    with pytest.raises(DatasetError, match="summing to 1"):
        split(d, fractions=(0.5, 0.2, 0.2))
    tr, va, te = split(d, fractions=(0.8, 0.0, 0.2))
    assert len(va) == 0 and len(tr) + len(te) == 100


# -- bad input -------------------------------------------------------------------------------------

def write_folder(root, manifest: dict, files: dict[str, bytes]):
    (root / "recordings").mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    base = {"format": "mpml-dataset", "version": 1, "sample_rate_hz": 50, "channels": ["x", "y"],
            "labels": ["a"], "recordings": [{"file": f, "label": "a"} for f in files]}
    base.update(manifest)
    (root / "manifest.json").write_text(json.dumps(base))
    return root


def test_bad_input(tmp_path):
    ok = np.arange(20, dtype="<i2").tobytes()
    # empty
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(write_folder(tmp_path / "e", {"recordings": []}, {}))
    with pytest.raises(DatasetError, match="empty"):
        Dataset.from_float("x", [], [], sample_rate_hz=1)
    # truncated recording: names the file
    with pytest.raises(DatasetError, match=r"t\.i16: 41 bytes is not a whole number of 2-channel"):
        load_dataset(write_folder(tmp_path / "t", {}, {"recordings/t.i16": ok + b"\0"}))
    with pytest.raises(DatasetError, match=r"gone\.i16: cannot read"):
        load_dataset(write_folder(tmp_path / "g", {"recordings": [{"file": "recordings/gone.i16", "label": "a"}]},
                                  {}))
    with pytest.raises(DatasetError, match=r"n\.i16: 10 samples, the manifest says 12"):
        load_dataset(write_folder(tmp_path / "n", {"recordings": [{"file": "recordings/n.i16", "label": "a",
                                                                   "n_samples": 12}]}, {"recordings/n.i16": ok}))
    # a label with no recordings
    with pytest.raises(DatasetError, match="label 'b' has no recordings"):
        load_dataset(write_folder(tmp_path / "l", {"labels": ["a", "b"]}, {"recordings/a.i16": ok}))
    # inconsistent rates
    with pytest.raises(DatasetError, match=r"r\.i16: sample rate 25 Hz differs .*inconsistent rates"):
        load_dataset(write_folder(tmp_path / "r", {"recordings": [{"file": "recordings/r.i16", "label": "a",
                                                                   "sample_rate_hz": 25}]},
                                  {"recordings/r.i16": ok}))
    # not JSON
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "manifest.json").write_text("{nope")
    with pytest.raises(DatasetError, match=r"manifest\.json: not valid JSON"):
        load_dataset(tmp_path / "j")
    # inconsistent channel counts
    with pytest.raises(DatasetError, match="inconsistent channel counts"):
        Dataset.from_float("x", [np.zeros((5, 2)), np.zeros((5, 3))], ["a", "a"], sample_rate_hz=1)
    d = tmp_path / "c" / "a"
    d.mkdir(parents=True)
    (d / "1.csv").write_text("x,y\n1,2\n")
    (d / "2.csv").write_text("x,y,z\n1,2,3\n")
    with pytest.raises(DatasetError, match=r"2\.csv: columns .*inconsistent channels"):
        load_dataset(tmp_path / "c", sample_rate_hz=1)
    # NaN samples
    (tmp_path / "nan.csv").write_text("x,label\n1.5,a\nnan,a\n")
    with pytest.raises(DatasetError, match=r"nan\.csv:3: column 'x': NaN"):
        load_dataset(tmp_path / "nan.csv", sample_rate_hz=1)
    with pytest.raises(DatasetError, match="recording 1: NaN or infinite sample at row 2, channel 0"):
        Dataset.from_float("x", [np.zeros((3, 1)), np.array([[0.0], [1.0], [np.nan]])], ["a", "a"],
                           sample_rate_hz=1)
    # unreadable or wrong files
    (tmp_path / "bad.csv").write_text("x,label\n1,a\nfoo,a\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:3: column 'x': 'foo' is not a number"):
        load_dataset(tmp_path / "bad.csv", sample_rate_hz=1)
    (tmp_path / "nolabel.csv").write_text("x\n1\n")
    with pytest.raises(DatasetError, match=r"nolabel\.csv: no label column"):
        load_dataset(tmp_path / "nolabel.csv", sample_rate_hz=1)
    (tmp_path / "norate.csv").write_text("x,label\n1,a\n")
    with pytest.raises(DatasetError, match=r"norate\.csv: the sample rate is unknown"):
        load_dataset(tmp_path / "norate.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"junk\.npz: not a readable NumPy file"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DatasetError, match=r"x\.txt: not a dataset"):
        load_dataset(tmp_path / "x.txt")
    # a recording that is not int16 counts
    ds = small()
    ds.recordings[0].samples = ds.recordings[0].samples.astype(np.float32)
    with pytest.raises(DatasetError, match="recording r0: samples are float32, expected int16"):
        ds.validate()
