"""The integer steps of the feature pipeline, vectorised with numpy (docs/features.md).

Every function is exact integer arithmetic on int64 arrays; the values stay
within the int32/int64 bounds docs/features.md states, so a C or viper
implementation with those widths gives the same numbers.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["div_round", "isqrt", "log2q", "LOG2_FRAC_BITS", "LOG2_INDEX_BITS", "LOG2_TABLE",
           "twiddles", "window_table", "bit_reverse", "fft_q15", "rdp", "WINDOW_ONE"]

LOG2_FRAC_BITS = 8     # log2 results in 1/256 of an octave
LOG2_INDEX_BITS = 6    # mantissa bits looked up in LOG2_TABLE
# LOG2_TABLE[i] = round(256 * log2(1 + i/64)), i = 0..63 (values 0..253, one byte each)
LOG2_TABLE = tuple(int(math.floor(256 * math.log2(1 + i / 64) + 0.5)) for i in range(64))
WINDOW_ONE = 32768     # window coefficient 1.0 (coefficients are u16 in [0, 32768])



def rdp(x, e: int) -> np.ndarray:
    """RoundingDivideByPOT(x, e) for a constant 1 <= e <= 31 (docs/ops.md), x int64 array.

    Same values as `mpml.reference.fixedpoint.rounding_divide_by_pot` (the
    tests compare them), written as `(x + 2^(e-1) - (x < 0)) >> e`, which is
    round half away from zero, and faster with a scalar exponent.
    """
    x = np.asarray(x, dtype=np.int64)
    return (x + ((1 << (e - 1)) - (x < 0))) >> e


def div_round(a, b) -> np.ndarray:
    """DivRound(a, b) for b > 0: a / b rounded half away from zero.

    Equals AVERAGE_POOL_2D's `a > 0 ? (a + b/2) / b : (a - b/2) / b` with C's
    truncating division (docs/ops.md).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    q = (np.abs(a) + b // 2) // b
    return np.where(a < 0, -q, q)


def isqrt(v) -> np.ndarray:
    """floor(sqrt(v)) for int64 0 <= v < 2^62, exactly (float estimate, then integer correction)."""
    v = np.asarray(v, dtype=np.int64)
    if v.size and v.min() < 0:
        raise ValueError("isqrt of a negative value")
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    for _ in range(4):
        r = np.where(r * r > v, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return r


def log2q(v) -> np.ndarray:
    """Log2Q(v) for 1 <= v < 2^63: 256*floor(log2 v) + LOG2_TABLE[the 6 bits after the leading one]."""
    v = np.asarray(v, dtype=np.int64)
    if v.size and v.min() < 1:
        raise ValueError("log2q needs v >= 1")
    # position of the leading one, exactly: a float estimate corrected until v >> p == 1
    p = np.minimum(np.floor(np.log2(v.astype(np.float64))).astype(np.int64), 62)
    for _ in range(2):
        p = np.where((v >> p) == 0, p - 1, p)
        p = np.where((p < 62) & ((v >> np.minimum(p, 62)) >= 2), p + 1, p)
    shift = p - LOG2_INDEX_BITS
    idx = np.where(shift >= 0, v >> np.maximum(shift, 0), v << np.maximum(-shift, 0)) & ((1 << LOG2_INDEX_BITS) - 1)
    return (p << LOG2_FRAC_BITS) + np.asarray(LOG2_TABLE, np.int64)[idx]


def twiddles(n: int) -> np.ndarray:
    """Q15 twiddles `[n/2, 2]` int16: (round(32768 cos(2 pi k/n)), round(-32768 sin(2 pi k/n))), clamped."""
    k = np.arange(n // 2)
    ang = 2 * np.pi * k / n
    wr = np.floor(32768 * np.cos(ang) + 0.5)
    wi = np.floor(-32768 * np.sin(ang) + 0.5)
    return np.clip(np.stack([wr, wi], axis=1), -32768, 32767).astype(np.int16)


def window_table(n: int, kind: str) -> np.ndarray:
    """Window coefficients u16 `[n]` in [0, 32768]: "hann" (periodic) or "rect" (all 32768)."""
    if kind == "rect":
        return np.full(n, WINDOW_ONE, np.uint16)
    if kind == "hann":
        i = np.arange(n)
        return np.floor(WINDOW_ONE * (0.5 - 0.5 * np.cos(2 * np.pi * i / n)) + 0.5).astype(np.uint16)
    raise ValueError(f"unknown window {kind!r} (hann or rect)")


def bit_reverse(n: int) -> np.ndarray:
    """Index permutation: position rev(i) receives input i (log2 n bits reversed)."""
    bits = n.bit_length() - 1
    i = np.arange(n)
    r = np.zeros(n, np.int64)
    for b in range(bits):
        r |= ((i >> b) & 1) << (bits - 1 - b)
    return r


def fft_q15(v: np.ndarray, tw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-point radix-2 decimation-in-time FFT of real rows `v` `[..., n]` (docs/features.md).

    Inputs in bit-reversed order, imaginary parts 0; stage s (half size
    h = 2^s) butterflies positions p and p + h with twiddle `tw[j * n/(2h)]`:
    t = b*w with each of the four products rounded by RoundingDivideByPOT(., 15),
    then a' = RDP(a + t, 1), b' = RDP(a - t, 1). Returns (re, im) int64 `[..., n]`.
    """
    v = np.asarray(v, dtype=np.int64)
    n = v.shape[-1]
    lead = v.shape[:-1]
    re = np.ascontiguousarray(v[..., bit_reverse(n)].reshape(-1, n))
    im = np.zeros_like(re)
    wr_all = tw[:, 0].astype(np.int64)
    wi_all = tw[:, 1].astype(np.int64)
    h = 1
    while h < n:
        step = n // (2 * h)
        wr = wr_all[::step][:h]
        wi = wi_all[::step][:h]
        r4 = re.reshape(-1, n // (2 * h), 2, h)
        i4 = im.reshape(-1, n // (2 * h), 2, h)
        ar, br = r4[:, :, 0, :], r4[:, :, 1, :]
        ai, bi = i4[:, :, 0, :], i4[:, :, 1, :]
        tr = rdp(br * wr, 15) - rdp(bi * wi, 15)
        ti = rdp(br * wi, 15) + rdp(bi * wr, 15)
        br[...] = rdp(ar - tr, 1)   # views into re / im: b first, a is still needed
        ar[...] = rdp(ar + tr, 1)
        bi[...] = rdp(ai - ti, 1)
        ai[...] = rdp(ai + ti, 1)
        h *= 2
    return re.reshape(*lead, n), im.reshape(*lead, n)
