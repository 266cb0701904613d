"""Windows cut from recordings, and splits that never leak a recording (or subject).

`windows(dataset, length, hop)` cuts every recording into windows of
`length` samples starting at 0, hop, 2*hop, ... (a window never spans two
recordings; the tail shorter than a window is dropped). `split()` assigns
whole recordings, or whole subjects, to train / validation / test, so the
windows of one recording (or one person) are never on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mpml.data.dataset import Dataset, DatasetError

__all__ = ["Windows", "windows", "Split", "split"]


@dataclass
class Windows:
    """Windows as arrays: `x` int16 `[n, length, channels]`, `y` class index `[n]`,
    `recording` and `subject` indices `[n]` into `recordings` / `subjects`
    (names), and the dataset's description (labels, channels, rate, scale)."""

    x: np.ndarray
    y: np.ndarray
    recording: np.ndarray
    subject: np.ndarray
    labels: list[str]
    recordings: list[str]
    subjects: list[str]
    channels: list[str]
    sample_rate_hz: float
    scale: list[float] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    hop: int = 0

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def length(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_channels(self) -> int:
        return int(self.x.shape[2])

    def subset(self, index) -> "Windows":
        """The windows selected by `index` (boolean mask or indices); name tables unchanged."""
        return Windows(self.x[index], self.y[index], self.recording[index], self.subject[index],
                       self.labels, self.recordings, self.subjects, self.channels, self.sample_rate_hz,
                       self.scale, self.units, self.hop)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=len(self.labels))


def windows(dataset: Dataset, length: int, hop: int | None = None) -> Windows:
    """Cut every recording into windows of `length` samples every `hop` samples (default: `length`).

    Recordings shorter than `length` give no window; if none is long enough,
    DatasetError says so with the longest recording's length.
    """
    dataset.validate(require_all_labels=False)
    length = int(length)
    hop = length if hop is None else int(hop)
    where = dataset.source or dataset.name
    if length < 1 or hop < 1:
        raise DatasetError(f"{where}: window length {length} and hop {hop} must be at least 1")
    longest = max(r.n_samples for r in dataset.recordings)
    if length > longest:
        raise DatasetError(f"{where}: windows of {length} samples are longer than every recording "
                           f"(longest: {longest} samples, {longest / dataset.sample_rate_hz:g} s)")
    subjects = dataset.subjects
    subj_index = {s: k for k, s in enumerate(subjects)}
    label_index = {lab: k for k, lab in enumerate(dataset.labels)}
    xs, ys, rs, ss = [], [], [], []
    for k, r in enumerate(dataset.recordings):
        if r.n_samples < length:
            continue
        v = sliding_window_view(r.samples, length, axis=0)[::hop]  # [n, channels, length]
        xs.append(np.ascontiguousarray(v.transpose(0, 2, 1)))
        n = v.shape[0]
        ys.append(np.full(n, label_index[r.label], np.int64))
        rs.append(np.full(n, k, np.int64))
        ss.append(np.full(n, subj_index[r.subject], np.int64))
    return Windows(np.concatenate(xs).astype(np.int16), np.concatenate(ys), np.concatenate(rs),
                   np.concatenate(ss), list(dataset.labels), [r.name for r in dataset.recordings],
                   subjects, list(dataset.channels), dataset.sample_rate_hz, list(dataset.scale),
                   list(dataset.units), hop)


T = TypeVar("T", Dataset, Windows)


class Split(NamedTuple):
    """Train, validation and test parts, each a Dataset or Windows like the input."""

    train: object
    val: object
    test: object


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Counts per part (summing to n) by largest remainder; every nonzero part gets one if n allows."""
    raw = [f * n for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    # a part asked for but empty takes one from the largest part, while that leaves it non-empty
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0:
            j = max(range(len(counts)), key=lambda m: counts[m])
            if counts[j] > 1:
                counts[j] -= 1
                counts[i] += 1
    return counts


def split(data: T, by: str = "recording", fractions: Sequence[float] = (0.7, 0.15, 0.15),
          seed: int = 0) -> Split:
    """Split a Dataset or Windows into train / val / test by whole recordings or whole subjects.

    `by="recording"`: recordings are shuffled (seeded) within each label and
    allotted by `fractions`, so every label is spread over the parts as far
    as its recordings allow. `by="subject"`: subjects are shuffled and
    allotted; each part needs at least one subject for every nonzero
    fraction. Never by window: no recording (or subject) is in two parts.
    Zero fractions give empty parts.
    """
    if by not in ("recording", "subject"):
        raise DatasetError(f"split by {by!r}: choose 'recording' or 'subject' (never by window)")
    fractions = [float(f) for f in fractions]
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(f"split fractions {fractions}: need three non-negative numbers summing to 1")
    rng = np.random.default_rng(seed)
    if isinstance(data, Dataset):
        where = data.source or data.name
        rec_label = [r.label for r in data.recordings]
        subjects = [r.subject for r in data.recordings]
        n_items = len(data.recordings)
    elif isinstance(data, Windows):
        where = "windows"
        n_items = len(data.recordings)
        rec_label = [None] * n_items
        for r, yv in zip(data.recording, data.y):
            rec_label[r] = data.labels[yv]
        subjects = [None] * n_items
        for r, sv in zip(data.recording, data.subject):
            subjects[r] = data.subjects[sv]
    else:
        raise TypeError(f"split() takes a Dataset or Windows, not {type(data).__name__}")
    if n_items == 0:
        raise DatasetError(f"{where}: nothing to split (no recordings)")
    part = np.full(n_items, -1)
    wanted = sum(f > 0 for f in fractions)
    if by == "recording":
        items = [i for i in range(n_items) if rec_label[i] is not None]
        if len(items) < wanted:
            raise DatasetError(f"{where}: {wanted} non-empty parts need at least {wanted} recordings; "
                               f"there are {len(items)}")
        by_label: dict[str, list[int]] = {}
        for i in items:
            by_label.setdefault(rec_label[i], []).append(i)
        for lab in sorted(by_label):
            members = np.array(by_label[lab])
            rng.shuffle(members)
            counts = _allocate(len(members), fractions)
            pos = 0
            for p, c in enumerate(counts):
                part[members[pos:pos + c]] = p
                pos += c
        # tiny labels may leave a requested part empty: give it a recording from the largest part
        for p, f in enumerate(fractions):
            if f > 0 and not (part == p).any():
                donor = max(range(3), key=lambda q: (part == q).sum())
                cand = np.flatnonzero(part == donor)
                part[cand[rng.integers(len(cand))]] = p
    else:
        names = [s for s in dict.fromkeys(subjects) if s is not None]
        if len(names) < wanted:
            raise DatasetError(f"{where}: splitting by subject into {wanted} non-empty parts needs at least "
                               f"{wanted} subjects; there {'is' if len(names) == 1 else 'are'} {len(names)}"
                               f" ({', '.join(map(repr, names[:5]))})")
        order = np.array(names, dtype=object)
        rng.shuffle(order)
        counts = _allocate(len(order), fractions)
        of_subject: dict[str, int] = {}
        pos = 0
        for p, c in enumerate(counts):
            for s in order[pos:pos + c]:
                of_subject[s] = p
            pos += c
        for i, s in enumerate(subjects):
            if s is not None:
                part[i] = of_subject[s]
    if isinstance(data, Dataset):
        return Split(*(data.subset(np.flatnonzero(part == p)) for p in range(3)))
    wpart = part[data.recording]
    return Split(*(data.subset(wpart == p) for p in range(3)))
