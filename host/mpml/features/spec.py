"""The feature spec: a declarative, integer-only pipeline from a window to int8 model inputs.

A `FeatureSpec` is a list of blocks, each reading some channels of an int16
window `[length, channels]`:

- `raw`: the samples, optionally decimated (mean of `decimate` samples);
- `stats`: per channel mean, std, min, max, rms, zero_crossings, peak_to_peak;
- `bands`: per channel band energies of a fixed-point FFT, as integer log2.

Every step is integer arithmetic defined in docs/features.md, so a board
computes the same int32 features bit for bit. `fit()` then gives every feature
an integer offset and a requantization (TFLM's QuantizeMultiplier) so that
`transform()` yields standardized int8 values in one common scale and zero
point: the model's input tensor has `input_scale` and `input_zero_point`.
`to_bytes()` is what the `.mpml` blob carries (`Graph.features`).

    spec = FeatureSpec.from_dict({"blocks": [{"stats": {}}, {"bands": {"fft": 64, "bands": 8}}]})
    spec.fit(train.x)                 # int16 [n, length, channels] (or a Windows)
    q = spec.transform(test.x)        # int8 [n, spec.n_features]
    graph.features = spec.to_bytes()
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from mpml.features import intmath as im
from mpml.reference.fixedpoint import multiply_by_quantized_multiplier
from mpml.reference.tflm import quantize_multiplier, round_half_away

__all__ = ["FeatureError", "FeatureSpec", "RawBlock", "StatsBlock", "BandsBlock", "STATS",
           "STATS_FRAC_BITS", "SPEC_VERSION", "MAGIC", "MAX_MULTIPLIER"]


class FeatureError(ValueError):
    """A feature spec (dict, bytes or data) that cannot be used, with the reason."""


MAGIC = b"MPFS"
SPEC_VERSION = 1
HEADER = struct.Struct("<4sHHIHHHBBffi")        # 32 bytes
BLOCK_HEADER = struct.Struct("<BBHHHI")         # 12 bytes
QUANT = struct.Struct("<iii")                   # offset, multiplier, shift
KIND_RAW, KIND_STATS, KIND_BANDS = 1, 2, 3
FLAG_FITTED, FLAG_NAMES = 1, 2
BANDS_REMOVE_MEAN, BANDS_HANN = 1, 2
STATS_FRAC_BITS = 4  # mean, std and rms are in 1/16 count
# stat name -> code in the spec bytes
STATS = {"mean": 1, "std": 2, "min": 3, "max": 4, "rms": 5, "zero_crossings": 6, "peak_to_peak": 7}
STAT_NAMES = {v: k for k, v in STATS.items()}
MAX_LENGTH = 32768
MAX_FFT = 1024
# Largest real multiplier fit() gives a feature (std below 8/256 units saturate anyway):
# keeps MultiplyByQuantizedMultiplier's left shift <= 9, so (f - offset) << 9 fits int32.
MAX_MULTIPLIER = 256.0
# A twiddle (wr, wi) above magnitude 1 (plus a Q15 table's rounding) would let
# the FFT's values outgrow int32 on the board: from_bytes refuses it.
MAX_TWIDDLE_SQ = (1 << 30) + (1 << 16)


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


# -- blocks ------------------------------------------------------------------------------------


@dataclass
class RawBlock:
    """The samples of `channels`, time-major; `decimate` > 1 averages groups of samples (DivRound)."""

    channels: list[int] | None = None
    decimate: int = 1

    kind = "raw"

    def out_length(self, length: int) -> int:
        return length // self.decimate

    def n_features(self, length: int) -> int:
        return self.out_length(length) * len(self.channels)

    def n_slots(self) -> int:
        return len(self.channels)

    def slot_of(self, length: int) -> np.ndarray:
        return np.tile(np.arange(len(self.channels)), self.out_length(length))

    def names(self, length: int, ch: list[str], fs: float) -> list[str]:
        return [f"{ch[c]}[{t}]" for t in range(self.out_length(length)) for c in self.channels]

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "decimate": self.decimate}

    def compute(self, x: np.ndarray) -> np.ndarray:
        """x int16 [n, length, channels] -> int64 [n, length // decimate * len(channels)]."""
        n, length, _ = x.shape
        d, lo = self.decimate, self.out_length(length)
        sel = x[:, :lo * d, self.channels].astype(np.int64)
        if d > 1:
            sel = im.div_round(sel.reshape(n, lo, d, len(self.channels)).sum(axis=2), d)
        return sel.reshape(n, -1)


@dataclass
class StatsBlock:
    """Per channel (channel-major) the statistics in `stats`, in the given order."""

    channels: list[int] | None = None
    stats: list[str] = field(default_factory=lambda: list(STATS))

    kind = "stats"

    def n_features(self, length: int) -> int:
        return len(self.channels) * len(self.stats)

    def n_slots(self) -> int:
        return len(self.channels) * len(self.stats)

    def slot_of(self, length: int) -> np.ndarray:
        return np.arange(self.n_slots())

    def names(self, length: int, ch: list[str], fs: float) -> list[str]:
        return [f"{ch[c]}.{s}" for c in self.channels for s in self.stats]

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "stats": list(self.stats)}

    def compute(self, x: np.ndarray) -> np.ndarray:
        n, length, _ = x.shape
        v = x[:, :, self.channels].astype(np.int64)       # [n, L, c]
        one = 1 << STATS_FRAC_BITS
        s = v.sum(axis=1)
        q = (v * v).sum(axis=1)
        mean = im.div_round(one * s, length)
        out = {}
        for name in self.stats:
            if name == "mean":
                out[name] = mean
            elif name == "std":
                out[name] = im.div_round(one * im.isqrt(length * q - s * s), length)
            elif name == "rms":
                out[name] = im.div_round(one * im.isqrt(length * q), length)
            elif name == "min":
                out[name] = v.min(axis=1)
            elif name == "max":
                out[name] = v.max(axis=1)
            elif name == "peak_to_peak":
                out[name] = v.max(axis=1) - v.min(axis=1)
            elif name == "zero_crossings":
                above = (one * v) >= mean[:, None, :]
                out[name] = (above[:, 1:] != above[:, :-1]).sum(axis=1).astype(np.int64)
        return np.stack([out[name] for name in self.stats], axis=2).reshape(n, -1)  # [n, c, stats]


@dataclass
class BandsBlock:
    """Per channel (channel-major) the log2 energy of each band of bins of an `fft`-point FFT.

    Frames of `fft` samples (no overlap, from the window's start) are each
    mean-removed (`remove_mean`), windowed (`window`: "hann" or "rect"),
    transformed by the Q15 FFT, and |X_k|^2 summed over frames and the bins
    [lo, hi) of a band; the feature is Log2Q(energy + 1).
    """

    channels: list[int] | None = None
    fft: int = 64
    bands: list[tuple[int, int]] = field(default_factory=list)
    window: str = "hann"
    remove_mean: bool = True
    window_coeffs: np.ndarray | None = None
    twiddle_table: np.ndarray | None = None

    kind = "bands"

    def __post_init__(self) -> None:
        n = self.fft
        if n < 4 or n > MAX_FFT or n & (n - 1):
            raise FeatureError(f"bands: fft size {n} must be a power of two from 4 to {MAX_FFT}")
        if self.window_coeffs is None:
            try:
                self.window_coeffs = im.window_table(n, self.window)
            except ValueError as e:
                raise FeatureError(f"bands: {e}") from None
        if self.twiddle_table is None:
            self.twiddle_table = im.twiddles(n)
        self.window_coeffs = np.asarray(self.window_coeffs, np.uint16)
        self.twiddle_table = np.asarray(self.twiddle_table, np.int16).reshape(n // 2, 2)
        self.bands = [(int(lo), int(hi)) for lo, hi in self.bands]
        if not self.bands:
            raise FeatureError("bands: no bands")
        for lo, hi in self.bands:
            if not 0 <= lo < hi <= n // 2 + 1:
                raise FeatureError(f"bands: band [{lo}, {hi}) must satisfy 0 <= lo < hi <= {n // 2 + 1} "
                                   f"(bins of a {n}-point FFT)")

    def n_features(self, length: int) -> int:
        return len(self.channels) * len(self.bands)

    def n_slots(self) -> int:
        return len(self.channels) * len(self.bands)

    def slot_of(self, length: int) -> np.ndarray:
        return np.arange(self.n_slots())

    def names(self, length: int, ch: list[str], fs: float) -> list[str]:
        def band(lo, hi):
            if fs > 0:
                return f"{lo * fs / self.fft:.3g}-{hi * fs / self.fft:.3g}Hz"
            return f"bin{lo}-{hi}"
        return [f"{ch[c]}.{band(lo, hi)}" for c in self.channels for lo, hi in self.bands]

    def to_dict(self) -> dict:
        return {"channels": list(self.channels), "fft": self.fft, "bands": [list(b) for b in self.bands],
                "window": self.window, "remove_mean": self.remove_mean}

    def energies(self, x: np.ndarray) -> np.ndarray:
        """Band energies (int64 [n, channels, bands]) before the log."""
        n, length, _ = x.shape
        nf, frames = self.fft, length // self.fft
        v = x[:, :frames * nf, self.channels].astype(np.int64)
        v = v.reshape(n, frames, nf, len(self.channels)).transpose(0, 1, 3, 2)  # [n, F, c, nf]
        if self.remove_mean:
            v = v - im.div_round(v.sum(axis=3, keepdims=True), nf)
        v = im.rdp(v * self.window_coeffs.astype(np.int64), 16)
        re, imag = im.fft_q15(v, self.twiddle_table)
        p = re[..., : nf // 2 + 1] ** 2 + imag[..., : nf // 2 + 1] ** 2         # [n, F, c, bins]
        p = p.sum(axis=1)                                                      # [n, c, bins]
        c = np.concatenate([np.zeros(p.shape[:-1] + (1,), np.int64), np.cumsum(p, axis=-1)], axis=-1)
        return np.stack([c[..., hi] - c[..., lo] for lo, hi in self.bands], axis=-1)

    def compute(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        return im.log2q(self.energies(x) + 1).reshape(n, -1)


Block = RawBlock | StatsBlock | BandsBlock


def _block_features(b: Block, length: int) -> int:
    if isinstance(b, RawBlock):
        return (length // b.decimate if b.decimate else 0) * len(b.channels)
    return b.n_features(length)
_KINDS = {"raw": KIND_RAW, "stats": KIND_STATS, "bands": KIND_BANDS}


# -- the spec ----------------------------------------------------------------------------------


class FeatureSpec:
    """Blocks over windows of `window_length` x `n_channels` int16 samples, and their int8 quantization.

    `window_length` and `n_channels` may be left None until `fit()` sees data.
    After `fit()`, `offsets`, `multipliers` and `shifts` (int32, one per
    quantization slot, block by block) turn feature f into
    `clamp(MultiplyByQuantizedMultiplier(f - offset, multiplier, shift) + input_zero_point, -128, 127)`.
    """

    def __init__(self, blocks: Sequence[Block], window_length: int | None = None,
                 n_channels: int | None = None, sample_rate_hz: float = 0.0,
                 channel_names: Sequence[str] | None = None, input_scale: float = 1 / 32,
                 input_zero_point: int = 0):
        self.blocks: list[Block] = list(blocks)
        if not self.blocks:
            raise FeatureError("a feature spec needs at least one block")
        self.window_length = None if window_length is None else int(window_length)
        self.n_channels = None if n_channels is None else int(n_channels)
        self.sample_rate_hz = float(sample_rate_hz or 0.0)
        self.channel_names = list(channel_names) if channel_names is not None else None
        self.input_scale = float(input_scale)
        self.input_zero_point = int(input_zero_point)
        if not (self.input_scale > 0 and math.isfinite(self.input_scale)):
            raise FeatureError(f"input scale {input_scale} must be a positive number")
        if not -128 <= self.input_zero_point <= 127:
            raise FeatureError(f"input zero point {input_zero_point} must be an int8")
        self.offsets: np.ndarray | None = None
        self.multipliers: np.ndarray | None = None
        self.shifts: np.ndarray | None = None
        if self.window_length is not None and self.n_channels is not None:
            self._bind(self.window_length, self.n_channels)

    # -- shape ---------------------------------------------------------------------------------

    def _bind(self, length: int, channels: int) -> None:
        if not 1 <= length <= MAX_LENGTH:
            raise FeatureError(f"window length {length} must be 1..{MAX_LENGTH}")
        if not 1 <= channels <= 255:
            raise FeatureError(f"{channels} channels: must be 1..255")
        if self.channel_names is not None and len(self.channel_names) != channels:
            raise FeatureError(f"{len(self.channel_names)} channel names for {channels} channels")
        for k, b in enumerate(self.blocks):
            where = f"block {k} ({b.kind})"
            if b.channels is None:
                b.channels = list(range(channels))
            b.channels = [int(c) for c in b.channels]
            if not b.channels:
                raise FeatureError(f"{where}: no channels")
            bad = [c for c in b.channels if not 0 <= c < channels]
            if bad:
                raise FeatureError(f"{where}: channel {bad[0]} does not exist (window has {channels} channels)")
            if isinstance(b, RawBlock):
                if not 1 <= b.decimate <= 65535 or b.decimate > length:
                    raise FeatureError(f"{where}: decimate {b.decimate} must be 1..{length} (the window length)")
            elif isinstance(b, StatsBlock):
                bad = [s for s in b.stats if s not in STATS]
                if bad or not b.stats:
                    raise FeatureError(f"{where}: unknown stat {bad[0] if bad else '(none)'}; "
                                       f"choose from {', '.join(STATS)}")
            elif isinstance(b, BandsBlock):
                if b.fft > length:
                    raise FeatureError(f"{where}: fft size {b.fft} is longer than the window ({length})")
        self.window_length, self.n_channels = length, channels
        if self.n_features > 65535:
            raise FeatureError(f"{self.n_features} features: at most 65535")

    @property
    def bound(self) -> bool:
        return self.window_length is not None and self.n_channels is not None

    def _need_bound(self) -> None:
        if not self.bound:
            raise FeatureError("the spec does not know its window yet: give window_length and n_channels, "
                               "or fit() it on windows")

    @property
    def n_features(self) -> int:
        self._need_bound()
        return sum(b.n_features(self.window_length) for b in self.blocks)

    @property
    def n_slots(self) -> int:
        return sum(b.n_slots() for b in self.blocks)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The model input's shape per window: `(length', channels')` for a single raw block
        (a 1-D CNN's input), else `(n_features,)`."""
        self._need_bound()
        if len(self.blocks) == 1 and isinstance(self.blocks[0], RawBlock):
            b = self.blocks[0]
            return (b.out_length(self.window_length), len(b.channels))
        return (self.n_features,)

    @property
    def feature_names(self) -> list[str]:
        self._need_bound()
        ch = self.channel_names or [f"c{k}" for k in range(self.n_channels)]
        return [nm for b in self.blocks for nm in b.names(self.window_length, ch, self.sample_rate_hz)]

    @property
    def fitted(self) -> bool:
        return self.offsets is not None

    def _slot_index(self) -> np.ndarray:
        """Quantization slot of each feature."""
        parts, base = [], 0
        for b in self.blocks:
            parts.append(b.slot_of(self.window_length) + base)
            base += b.n_slots()
        return np.concatenate(parts)

    # -- computing -----------------------------------------------------------------------------

    def _windows(self, x) -> np.ndarray:
        x = getattr(x, "x", x)  # a mpml.data.Windows
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise FeatureError(f"windows of shape {x.shape}: expected [n, length, channels]")
        if x.dtype != np.int16:
            if x.dtype.kind not in "iu" or (x.size and (x.min() < -32768 or x.max() > 32767)):
                raise FeatureError(f"windows are {x.dtype}: expected int16 sensor counts")
            x = x.astype(np.int16)
        if not self.bound:
            self._bind(x.shape[1], x.shape[2])
        if x.shape[1:] != (self.window_length, self.n_channels):
            raise FeatureError(f"windows of shape {x.shape[1:]}: the spec is for "
                               f"[{self.window_length}, {self.n_channels}]")
        return x

    def features(self, x, batch: int = 4096) -> np.ndarray:
        """Integer features, int32 `[n, n_features]`, of int16 windows `[n, length, channels]`."""
        x = self._windows(x)
        out = np.empty((x.shape[0], self.n_features), np.int32)
        for s in range(0, x.shape[0], batch):
            out[s:s + batch] = np.concatenate([b.compute(x[s:s + batch]) for b in self.blocks], axis=1)
        return out

    def fit(self, x) -> "FeatureSpec":
        """Set each slot's offset (rounded training mean) and multiplier/shift (TFLM QuantizeMultiplier
        of 1 / (input_scale * training std), at most MAX_MULTIPLIER; 0 for a constant slot)."""
        f = self.features(x).astype(np.float64)
        if f.shape[0] == 0:
            raise FeatureError("fit() needs at least one window")
        slot = self._slot_index()
        n = self.n_slots
        offsets = np.zeros(n, np.int64)
        mults = np.zeros(n, np.int64)
        shifts = np.zeros(n, np.int64)
        for k in range(n):
            vals = f[:, slot == k]
            mu, sd = float(vals.mean()), float(vals.std())
            offsets[k] = int(round_half_away(mu))
            if sd > 0:
                real = min(1.0 / (self.input_scale * sd), MAX_MULTIPLIER)
                mults[k], shifts[k] = quantize_multiplier(real)
        self.offsets, self.multipliers, self.shifts = offsets, mults, shifts
        return self

    def quantize(self, f: np.ndarray) -> np.ndarray:
        """int8 `[n, n_features]` from integer features `[n, n_features]` (the fitted requantization)."""
        if not self.fitted:
            raise FeatureError("the spec is not fitted: call fit() on training windows first")
        slot = self._slot_index()
        d = np.asarray(f, np.int64) - self.offsets[slot]
        q = multiply_by_quantized_multiplier(d, self.multipliers[slot], self.shifts[slot])
        return np.clip(q + self.input_zero_point, -128, 127).astype(np.int8)

    def transform(self, x, shaped: bool = False) -> np.ndarray:
        """int8 model inputs `[n, n_features]` (`shaped`: `[n, *output_shape]`) of int16 windows."""
        q = self.quantize(self.features(x))
        return q.reshape(-1, *self.output_shape) if shaped else q

    def transform_float(self, x, shaped: bool = False) -> np.ndarray:
        """What the int8 inputs stand for, float32 `(q - zero_point) * scale`: train float models on this."""
        q = self.transform(x, shaped).astype(np.float32)
        return (q - np.float32(self.input_zero_point)) * np.float32(self.input_scale)

    def summary(self) -> str:
        self._need_bound()
        lines = [f"features: {self.n_features} from windows of {self.window_length} x {self.n_channels}"
                 + (f" at {self.sample_rate_hz:g} Hz" if self.sample_rate_hz else "")
                 + f"; int8 input scale {self.input_scale:g}, zero point {self.input_zero_point}"
                 + ("" if self.fitted else " (not fitted)")]
        for b in self.blocks:
            d = b.to_dict()
            d.pop("channels")
            lines.append(f"  {b.kind} channels {b.channels} {d} -> {b.n_features(self.window_length)}")
        return "\n".join(lines)

    # -- dict (recipes) ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """A TOML/JSON-friendly description; includes the fitted quantization when there is one."""
        d: dict[str, Any] = {"blocks": [{b.kind: b.to_dict()} for b in self.blocks],
                             "quantize": {"scale": self.input_scale, "zero_point": self.input_zero_point}}
        if self.window_length is not None:
            d["window_length"] = self.window_length
        if self.n_channels is not None:
            d["channels"] = self.n_channels
        if self.sample_rate_hz:
            d["sample_rate_hz"] = self.sample_rate_hz
        if self.channel_names:
            d["channel_names"] = list(self.channel_names)
        if self.fitted:
            d["quantize"].update(offsets=[int(v) for v in self.offsets],
                                 multipliers=[int(v) for v in self.multipliers],
                                 shifts=[int(v) for v in self.shifts])
        return d

    @classmethod
    def from_dict(cls, d: dict, *, window_length: int | None = None, n_channels: int | None = None,
                  sample_rate_hz: float | None = None, channel_names: Sequence[str] | None = None
                  ) -> "FeatureSpec":
        """A spec from a dict like `{"blocks": [{"raw": {"decimate": 2}}, {"stats": {...}},
        {"bands": {"fft": 64, "bands": [[1, 4], [4, 8]]}}]}`; keyword arguments fill what it leaves out.

        Block options: every block `channels` (indices, default all); raw
        `decimate` (1); stats `stats` (names, default all seven); bands `fft`
        (64), `bands` (bin ranges [lo, hi), or an int: that many equal bands
        over bins 1..fft/2), `bands_hz` ([lo, hi) in Hz, needs the sample
        rate), `window` ("hann"), `remove_mean` (true). Top level:
        `window_length`, `channels`, `sample_rate_hz`, `channel_names`,
        `quantize` {`scale` (1/32), `zero_point` (0), and fitted `offsets`,
        `multipliers`, `shifts`}.
        """
        if not isinstance(d, dict) or not isinstance(d.get("blocks"), list):
            raise FeatureError("a feature spec dict needs a 'blocks' list")
        fs = sample_rate_hz if sample_rate_hz is not None else float(d.get("sample_rate_hz", 0.0) or 0.0)
        blocks: list[Block] = []
        for k, item in enumerate(d["blocks"]):
            if not isinstance(item, dict) or len(item) != 1:
                raise FeatureError(f"block {k}: expected one {{kind: options}} entry, got {item!r}")
            (kind, opts), = item.items()
            opts = dict(opts or {})
            where = f"block {k} ({kind})"
            try:
                ch = opts.pop("channels", None)
                if kind == "raw":
                    blocks.append(RawBlock(ch, int(opts.pop("decimate", 1))))
                elif kind == "stats":
                    blocks.append(StatsBlock(ch, list(opts.pop("stats", list(STATS)))))
                elif kind == "bands":
                    n = int(opts.pop("fft", 64))
                    bands = opts.pop("bands", None)
                    bands_hz = opts.pop("bands_hz", None)
                    if bands_hz is not None:
                        if not fs:
                            raise FeatureError(f"{where}: bands_hz needs the sample rate (sample_rate_hz)")
                        bands = [(math.ceil(lo * n / fs - 1e-9), min(math.ceil(hi * n / fs - 1e-9), n // 2 + 1))
                                 for lo, hi in bands_hz]
                        empty = [b for b, (lo, hi) in zip(bands_hz, bands) if lo >= hi]
                        if empty:
                            raise FeatureError(f"{where}: band {empty[0]} Hz holds no bin of a {n}-point FFT "
                                               f"at {fs:g} Hz (bins every {fs / n:g} Hz)")
                    elif bands is None or isinstance(bands, int):
                        count = 8 if bands is None else int(bands)
                        edges = np.unique(np.round(np.linspace(1, n // 2 + 1, count + 1)).astype(int))
                        if len(edges) - 1 < count:
                            raise FeatureError(f"{where}: {count} bands do not fit a {n}-point FFT")
                        bands = list(zip(edges[:-1], edges[1:]))
                    blocks.append(BandsBlock(ch, n, bands, str(opts.pop("window", "hann")),
                                             bool(opts.pop("remove_mean", True))))
                else:
                    raise FeatureError(f"block {k}: unknown kind {kind!r} (raw, stats or bands)")
            except (TypeError, ValueError) as e:
                if isinstance(e, FeatureError):
                    raise
                raise FeatureError(f"{where}: {e}") from None
            if opts:
                raise FeatureError(f"{where}: unknown option{'s' if len(opts) > 1 else ''} {', '.join(opts)}")
        q = dict(d.get("quantize", {}) or {})
        spec = cls(blocks,
                   window_length if window_length is not None else d.get("window_length"),
                   n_channels if n_channels is not None else d.get("channels"),
                   fs, channel_names if channel_names is not None else d.get("channel_names"),
                   float(q.get("scale", 1 / 32)), int(q.get("zero_point", 0)))
        if "offsets" in q:
            spec._need_bound()
            arrays = [np.asarray(q[key], np.int64) for key in ("offsets", "multipliers", "shifts")]
            if any(a.shape != (spec.n_slots,) for a in arrays):
                raise FeatureError(f"quantize: need {spec.n_slots} offsets, multipliers and shifts")
            spec.offsets, spec.multipliers, spec.shifts = arrays
        return spec

    # -- bytes (the blob's feature section) ----------------------------------------------------

    def to_bytes(self) -> bytes:
        """The spec as the board reads it (docs/features.md, "Bytes"), little-endian, version 1."""
        self._need_bound()
        names = self.channel_names or []
        out = bytearray(HEADER.size)
        nb = bytearray()
        for nm in names:
            raw = nm.encode()[:255]
            nb += bytes([len(raw)]) + raw
        nb += b"\0" * _pad4(len(nb))
        out += nb
        fitted = self.fitted
        slot0 = 0
        for b in self.blocks:
            body = bytearray(bytes(b.channels)) + b"\0" * _pad4(len(b.channels))
            if isinstance(b, RawBlock):
                body += struct.pack("<HH", b.decimate, 0)
            elif isinstance(b, StatsBlock):
                codes = bytes([len(b.stats)] + [STATS[s] for s in b.stats])
                body += codes + b"\0" * _pad4(len(codes))
            else:
                flags = (BANDS_REMOVE_MEAN if b.remove_mean else 0) | (BANDS_HANN if b.window == "hann" else 0)
                body += struct.pack("<HBBHH", b.fft, b.fft.bit_length() - 1, flags, len(b.bands), 0)
                body += b.window_coeffs.astype("<u2").tobytes()
                body += b.twiddle_table.astype("<i2").tobytes()
                body += np.asarray(b.bands, "<u2").reshape(-1).tobytes()
                body += b"\0" * _pad4(len(body))
            ns = b.n_slots()
            for k in range(slot0, slot0 + ns):
                body += QUANT.pack(int(self.offsets[k]), int(self.multipliers[k]), int(self.shifts[k])) \
                    if fitted else QUANT.pack(0, 0, 0)
            slot0 += ns
            rec = BLOCK_HEADER.pack(_KINDS[b.kind], len(b.channels), ns, b.n_features(self.window_length), 0,
                                    BLOCK_HEADER.size + len(body)) + body
            out += rec
        flags = (FLAG_FITTED if fitted else 0) | (FLAG_NAMES if names else 0)
        HEADER.pack_into(out, 0, MAGIC, SPEC_VERSION, HEADER.size, len(out), self.window_length,
                         self.n_channels, self.n_features, len(self.blocks), flags,
                         self.sample_rate_hz, self.input_scale, self.input_zero_point)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> "FeatureSpec":
        """Parse and check spec bytes (FeatureError naming the problem); the inverse of to_bytes()."""
        data = bytes(data)
        if len(data) < HEADER.size:
            raise FeatureError(f"feature spec: {len(data)} bytes, shorter than its {HEADER.size}-byte header")
        (magic, version, hsize, total, length, channels, n_features, n_blocks, flags, fs, scale,
         zp) = HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise FeatureError(f"feature spec: bad magic {magic!r}")
        if version != SPEC_VERSION:
            raise FeatureError(f"feature spec version {version}; this mpml reads version {SPEC_VERSION}")
        if hsize != HEADER.size or total != len(data):
            raise FeatureError(f"feature spec: header size {hsize} / total size {total} do not match "
                               f"({HEADER.size} / {len(data)})")
        pos = HEADER.size
        names = []
        if flags & ~(FLAG_FITTED | FLAG_NAMES):
            raise FeatureError(f"feature spec: unknown flags {flags:#x}")
        if flags & FLAG_NAMES:
            for _ in range(channels):
                if pos >= len(data):
                    raise FeatureError("feature spec: channel names run past the end")
                n = data[pos]
                names.append(data[pos + 1:pos + 1 + n].decode("utf-8", "replace"))
                pos += 1 + n
            pos += _pad4(pos)
        blocks: list[Block] = []
        quant = []
        for k in range(n_blocks):
            if pos + BLOCK_HEADER.size > len(data):
                raise FeatureError(f"feature spec: block {k} runs past the end")
            kind, n_sel, n_slots, n_feat, _r, size = BLOCK_HEADER.unpack_from(data, pos)
            end = pos + size
            if size < BLOCK_HEADER.size or end > len(data) or size % 4:
                raise FeatureError(f"feature spec: block {k} has a bad size {size}")
            p = pos + BLOCK_HEADER.size
            chans = list(data[p:p + n_sel])
            p += n_sel + _pad4(n_sel)
            try:
                if kind == KIND_RAW:
                    dec, _ = struct.unpack_from("<HH", data, p)
                    p += 4
                    blk: Block = RawBlock(chans, dec)
                elif kind == KIND_STATS:
                    ns = data[p]
                    codes = list(data[p + 1:p + 1 + ns])
                    p += 1 + ns + _pad4(1 + ns)
                    bad = [c for c in codes if c not in STAT_NAMES]
                    if bad:
                        raise FeatureError(f"feature spec: block {k}: unknown stat code {bad[0]}")
                    blk = StatsBlock(chans, [STAT_NAMES[c] for c in codes])
                elif kind == KIND_BANDS:
                    n, log2n, bflags, nbands, _ = struct.unpack_from("<HBBHH", data, p)
                    p += 8
                    if n < 4 or n > MAX_FFT or n != 1 << log2n:
                        raise FeatureError(f"feature spec: block {k}: fft size {n} / log2 {log2n} invalid")
                    win = np.frombuffer(data, "<u2", n, p).astype(np.uint16)
                    p += 2 * n
                    tw = np.frombuffer(data, "<i2", n, p).astype(np.int16).reshape(n // 2, 2)
                    p += 2 * n
                    bands = np.frombuffer(data, "<u2", 2 * nbands, p).reshape(nbands, 2)
                    p += 4 * nbands
                    p += _pad4(p - pos)
                    if win.max(initial=0) > im.WINDOW_ONE:
                        raise FeatureError(f"feature spec: block {k}: window coefficient above 32768")
                    mag = (tw.astype(np.int64) ** 2).sum(axis=1)
                    if mag.max(initial=0) > MAX_TWIDDLE_SQ:
                        i = int(np.argmax(mag))
                        raise FeatureError(f"feature spec: block {k}: twiddle {i} {tuple(map(int, tw[i]))} has a "
                                           "magnitude above 1")
                    blk = BandsBlock(chans, n, [tuple(map(int, b)) for b in bands],
                                     "hann" if bflags & BANDS_HANN else "rect",
                                     bool(bflags & BANDS_REMOVE_MEAN), win, tw)
                else:
                    raise FeatureError(f"feature spec: block {k}: unknown kind {kind}")
            except (struct.error, ValueError, IndexError) as e:
                if isinstance(e, FeatureError):
                    raise
                raise FeatureError(f"feature spec: block {k} is truncated or malformed ({e})") from None
            if blk.n_slots() != n_slots or p + QUANT.size * n_slots != end:
                raise FeatureError(f"feature spec: block {k}: {n_slots} quantization slots and size {size} "
                                   f"do not fit its contents")
            for s in range(n_slots):
                quant.append(QUANT.unpack_from(data, p + QUANT.size * s))
            if blk.n_slots() and n_feat != _block_features(blk, length):
                raise FeatureError(f"feature spec: block {k} says {n_feat} features, its contents give "
                                   f"{_block_features(blk, length)}")
            blocks.append(blk)
            pos = end
        if pos != len(data):
            raise FeatureError(f"feature spec: {len(data) - pos} bytes after the last block")
        try:
            spec = cls(blocks, length, channels, fs, names or None, scale, zp)
        except FeatureError as e:
            raise FeatureError(f"feature spec: {e}") from None
        counts = [b.n_features(length) for b in blocks]
        if spec.n_features != n_features:
            raise FeatureError(f"feature spec: header says {n_features} features, blocks give {sum(counts)}")
        if flags & FLAG_FITTED:
            qa = np.asarray(quant, np.int64).reshape(-1, 3)
            if qa.size and (qa[:, 2].min() < -31 or qa[:, 2].max() > 31 or qa[:, 1].min() < 0):
                raise FeatureError("feature spec: a shift outside [-31, 31] or a negative multiplier")
            spec.offsets, spec.multipliers, spec.shifts = qa[:, 0].copy(), qa[:, 1].copy(), qa[:, 2].copy()
        return spec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSpec) and self.to_bytes() == other.to_bytes()

    def __repr__(self) -> str:
        kinds = ", ".join(b.kind for b in self.blocks)
        shape = f"{self.window_length}x{self.n_channels}" if self.bound else "unbound"
        return f"<FeatureSpec [{kinds}] {shape}{' fitted' if self.fitted else ''}>"
