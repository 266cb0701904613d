"""Labelled multi-channel recordings in integer sensor counts.

A `Dataset` is what `mpml collect` records and what training reads: one
`Recording` per take (int16 samples `[n_samples, n_channels]`, a label, a
subject), the sample rate, channel names, units and a per-channel scale
(physical units per count). Samples are integers, as an IMU or an ADC gives
them; data that arrives as floats is converted once, with a scale per
channel (`Dataset.from_float`). The on-disk format is in docs/datasets.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["DatasetError", "Recording", "Dataset", "auto_scale", "FORMAT_VERSION"]

FORMAT_VERSION = 1
INT16_MIN, INT16_MAX = -32768, 32767
# Floats converted with an automatic scale use at most half the int16 range,
# leaving headroom for a live sensor that swings further than the training data.
AUTO_SCALE_FULL = 16384


class DatasetError(ValueError):
    """A dataset that cannot be read or used; the message names the file (or recording) and the problem."""


@dataclass
class Recording:
    """One labelled take: int16 samples `[n_samples, n_channels]` in sensor counts.

    `name` identifies the recording in its dataset (unique; the file stem on
    disk), `subject` who or what was recorded ("" when unknown), `metadata`
    free-form JSON-able extras.
    """

    samples: np.ndarray
    label: str
    subject: str = ""
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples)
        if self.samples.ndim == 1:
            self.samples = self.samples[:, None]
        self.label = str(self.label)
        self.subject = "" if self.subject is None else str(self.subject)

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.samples.shape[1])


@dataclass
class Dataset:
    """Recordings sharing one sample rate and one set of channels.

    `labels` lists the class names in class-index order (a recording's label
    must be one of them); `scale[c]` is the physical value of one count of
    channel `c`, in `units[c]`. `source` is where the data came from, for
    messages.
    """

    name: str
    sample_rate_hz: float
    channels: list[str]
    units: list[str]
    scale: list[float]
    labels: list[str]
    recordings: list[Recording]
    source: str = ""

    def __post_init__(self) -> None:
        self.channels = [str(c) for c in self.channels]
        n = len(self.channels)
        self.units = [str(u) for u in self.units] if self.units is not None else [""] * n
        self.scale = [float(s) for s in self.scale] if self.scale is not None else [1.0] * n
        self.labels = [str(lab) for lab in self.labels]
        self.sample_rate_hz = float(self.sample_rate_hz)

    # -- views --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.recordings)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def y(self) -> np.ndarray:
        """Class index of each recording (int64 `[n_recordings]`)."""
        index = {lab: k for k, lab in enumerate(self.labels)}
        return np.array([index[r.label] for r in self.recordings], dtype=np.int64)

    @property
    def subjects(self) -> list[str]:
        """The distinct subjects, in order of first appearance."""
        return list(dict.fromkeys(r.subject for r in self.recordings))

    def subset(self, indices: Sequence[int]) -> "Dataset":
        """The same dataset with only the recordings at `indices` (labels list unchanged)."""
        return Dataset(self.name, self.sample_rate_hz, list(self.channels), list(self.units),
                       list(self.scale), list(self.labels),
                       [self.recordings[int(i)] for i in indices], self.source)

    def to_physical(self, recording: Recording) -> np.ndarray:
        """A recording's samples in physical units (float64 `[n, channels]`)."""
        return recording.samples.astype(np.float64) * np.asarray(self.scale)

    def summary(self) -> str:
        counts = {lab: 0 for lab in self.labels}
        for r in self.recordings:
            counts[r.label] = counts.get(r.label, 0) + 1
        n = sum(r.n_samples for r in self.recordings)
        per = ", ".join(f"{lab} {c}" for lab, c in counts.items())
        return (f"{self.name}: {len(self)} recordings, {len(self.subjects)} subjects, {n} samples "
                f"({n / self.sample_rate_hz:.1f} s at {self.sample_rate_hz:g} Hz), "
                f"channels {', '.join(self.channels)}; {per}")

    # -- checks -------------------------------------------------------------------------------

    def validate(self, require_all_labels: bool = True) -> "Dataset":
        """Raise DatasetError on anything training could trip over; return self.

        Checked: at least one recording; a positive, finite sample rate; one
        unit and scale per channel, scales positive; distinct labels and
        recording names; every recording int16 `[n >= 1, n_channels]` with a
        known label; and (`require_all_labels`) every label has a recording.
        """
        where = self.source or self.name
        if not self.recordings:
            raise DatasetError(f"{where}: the dataset is empty (no recordings)")
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0):
            raise DatasetError(f"{where}: sample rate {self.sample_rate_hz} Hz is not a positive number")
        if not self.channels:
            raise DatasetError(f"{where}: no channels")
        n = len(self.channels)
        if len(self.units) != n or len(self.scale) != n:
            raise DatasetError(f"{where}: {n} channels but {len(self.units)} units and {len(self.scale)} scales")
        if any(not (math.isfinite(s) and s > 0) for s in self.scale):
            raise DatasetError(f"{where}: every channel scale must be a positive number, got {self.scale}")
        if len(set(self.labels)) != len(self.labels):
            raise DatasetError(f"{where}: duplicate labels in {self.labels}")
        if not self.labels:
            raise DatasetError(f"{where}: no labels")
        known = set(self.labels)
        names: set[str] = set()
        for k, r in enumerate(self.recordings):
            rw = f"{where}: recording {r.name or k}"
            if r.name in names:
                raise DatasetError(f"{rw}: duplicate recording name")
            names.add(r.name)
            if r.samples.ndim != 2 or r.samples.shape[1] != n:
                raise DatasetError(f"{rw}: samples of shape {r.samples.shape}, expected [n, {n}] "
                                   f"(channels {', '.join(self.channels)})")
            if r.samples.dtype != np.int16:
                raise DatasetError(f"{rw}: samples are {r.samples.dtype}, expected int16 sensor counts")
            if r.n_samples == 0:
                raise DatasetError(f"{rw}: no samples")
            if r.label not in known:
                raise DatasetError(f"{rw}: label {r.label!r} is not one of {self.labels}")
        if require_all_labels:
            used = {r.label for r in self.recordings}
            missing = [lab for lab in self.labels if lab not in used]
            if missing:
                raise DatasetError(f"{where}: label{'s' if len(missing) > 1 else ''} "
                                   f"{', '.join(map(repr, missing))} ha{'ve' if len(missing) > 1 else 's'} "
                                   f"no recordings")
        return self

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_float(cls, name: str, arrays: Sequence[np.ndarray], labels: Sequence[Any], *,
                   sample_rate_hz: float, channels: Sequence[str] | None = None,
                   units: Sequence[str] | None = None, scale: Sequence[float] | float | None = None,
                   subjects: Sequence[Any] | None = None, label_names: Sequence[str] | None = None,
                   names: Sequence[str] | None = None, source: str = "") -> "Dataset":
        """A dataset from float recordings in physical units, converted to int16 counts.

        `labels` are class names, or class indices into `label_names`.
        `scale` (physical units per count, per channel or one for all) defaults
        to `auto_scale` of the data. Counts are `round(x / scale)` (half to
        even), clipped to int16; NaN or infinite samples are refused.
        """
        where = source or name
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
        if not arrays:
            raise DatasetError(f"{where}: the dataset is empty (no recordings)")
        widths = {a.shape[1] if a.ndim == 2 else -1 for a in arrays}
        if len(widths) != 1 or -1 in widths:
            shapes = sorted({a.shape for a in arrays}, key=str)[:4]
            raise DatasetError(f"{where}: recordings have inconsistent channel counts (shapes {shapes})")
        n_ch = widths.pop()
        for k, a in enumerate(arrays):
            bad = ~np.isfinite(a)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                rec = names[k] if names is not None else k
                raise DatasetError(f"{where}: recording {rec}: NaN or infinite sample at row {row}, "
                                   f"channel {col}")
        if scale is None:
            scale = auto_scale(arrays)
        elif np.ndim(scale) == 0:
            scale = [float(scale)] * n_ch
        scale = [float(s) for s in scale]
        if len(scale) != n_ch:
            raise DatasetError(f"{where}: {len(scale)} scales for {n_ch} channels")
        if any(not (math.isfinite(s) and s > 0) for s in scale):
            raise DatasetError(f"{where}: every channel scale must be a positive number, got {scale}")
        counts = [np.clip(np.rint(a / np.asarray(scale)), INT16_MIN, INT16_MAX).astype(np.int16) for a in arrays]
        return cls.from_counts(name, counts, labels, sample_rate_hz=sample_rate_hz, channels=channels,
                               units=units, scale=scale, subjects=subjects, label_names=label_names,
                               names=names, source=source)

    @classmethod
    def from_counts(cls, name: str, arrays: Sequence[np.ndarray], labels: Sequence[Any], *,
                    sample_rate_hz: float, channels: Sequence[str] | None = None,
                    units: Sequence[str] | None = None, scale: Sequence[float] | None = None,
                    subjects: Sequence[Any] | None = None, label_names: Sequence[str] | None = None,
                    names: Sequence[str] | None = None, source: str = "") -> "Dataset":
        """A dataset from integer recordings already in sensor counts (checked to fit int16)."""
        where = source or name
        if not len(arrays):
            raise DatasetError(f"{where}: the dataset is empty (no recordings)")
        arrays = [np.asarray(a) for a in arrays]
        arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
        for k, a in enumerate(arrays):
            if a.dtype.kind == "f":
                if not np.isfinite(a).all():
                    raise DatasetError(f"{where}: recording {k}: NaN or infinite samples")
                if (a != np.rint(a)).any():
                    raise DatasetError(f"{where}: recording {k}: non-integer samples given as counts")
            if a.size and (a.min() < INT16_MIN or a.max() > INT16_MAX):
                raise DatasetError(f"{where}: recording {k}: samples outside int16 ({a.min()}..{a.max()})")
        widths = {a.shape[1] for a in arrays}
        if len(widths) != 1:
            raise DatasetError(f"{where}: recordings have inconsistent channel counts {sorted(widths)}")
        n_ch = widths.pop()
        labels = list(labels)
        if len(labels) != len(arrays):
            raise DatasetError(f"{where}: {len(arrays)} recordings but {len(labels)} labels")
        if label_names is None:
            label_names = sorted({str(lab) for lab in labels}, key=_natural)
            labels = [str(lab) for lab in labels]
        else:
            label_names = [str(n) for n in label_names]
            labels = [label_names[int(lab)] if _is_int(lab) else str(lab) for lab in labels]
        subjects = [""] * len(arrays) if subjects is None else [str(s) for s in subjects]
        if len(subjects) != len(arrays):
            raise DatasetError(f"{where}: {len(arrays)} recordings but {len(subjects)} subjects")
        names = [f"r{k:04d}" for k in range(len(arrays))] if names is None else [str(n) for n in names]
        channels = list(channels) if channels is not None else [f"c{k}" for k in range(n_ch)]
        if len(channels) != n_ch:
            raise DatasetError(f"{where}: {len(channels)} channel names for {n_ch} channels")
        recs = [Recording(a.astype(np.int16), lab, subj, nm)
                for a, lab, subj, nm in zip(arrays, labels, subjects, names)]
        ds = cls(name, sample_rate_hz, channels, list(units) if units is not None else [""] * n_ch,
                 list(scale) if scale is not None else [1.0] * n_ch, label_names, recs, source)
        return ds.validate()

    def concat(self, other: "Dataset") -> "Dataset":
        """Both datasets' recordings in one; refuses differing rates, channels or scales."""
        where = f"{self.source or self.name} + {other.source or other.name}"
        if other.sample_rate_hz != self.sample_rate_hz:
            raise DatasetError(f"{where}: inconsistent sample rates {self.sample_rate_hz:g} Hz "
                               f"and {other.sample_rate_hz:g} Hz")
        if other.channels != self.channels or other.scale != self.scale:
            raise DatasetError(f"{where}: inconsistent channels or scales "
                               f"({self.channels} {self.scale} vs {other.channels} {other.scale})")
        labels = self.labels + [lab for lab in other.labels if lab not in self.labels]
        return Dataset(self.name, self.sample_rate_hz, self.channels, self.units, self.scale, labels,
                       self.recordings + other.recordings, self.source).validate()


def auto_scale(arrays: Sequence[np.ndarray]) -> list[float]:
    """Per-channel scale for float data: the smallest power of two 2^k with max|x| / 2^k <= 16384.

    A power of two keeps the conversion exact to describe; half the int16
    range is left as headroom. An all-zero channel gets scale 1.
    """
    peak = np.max([np.abs(a).max(axis=0) if a.size else np.zeros(a.shape[1]) for a in arrays], axis=0)
    out = []
    for p in np.atleast_1d(peak):
        if p == 0:
            out.append(1.0)
            continue
        k = math.ceil(math.log2(p / AUTO_SCALE_FULL))
        while p / 2.0 ** k > AUTO_SCALE_FULL:
            k += 1
        out.append(2.0 ** k)
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _natural(s: str):
    """Sort key putting "2" before "10"."""
    return (0, int(s), "") if s.lstrip("-").isdigit() else (1, 0, s)
