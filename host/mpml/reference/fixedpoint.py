"""TFLM's and gemmlowp's integer rounding steps, vectorised with numpy.

Every function takes ints or numpy arrays holding int32 values and returns an
int64 numpy array holding int32 values: the arithmetic runs in int64 so that
intermediate products are exact, and results are reduced to int32 exactly
where the C code would (wrapping where C wraps, saturating where it
saturates). Names follow TFLM (`tensorflow/lite/kernels/internal/common.h`)
and gemmlowp (`fixedpoint/fixedpoint.h`); docs/ops.md states the arithmetic.

A gemmlowp `FixedPoint<int32_t, I>` is represented by its raw int32 value;
`I` (integer bits) is passed where a function depends on it.
"""

from __future__ import annotations

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

__all__ = [
    "INT32_MIN", "INT32_MAX", "wrap32", "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot", "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_greater_than_one", "saturating_shift_left",
    "rounding_half_sum", "one_over_one_plus_x_for_x_in_0_1",
    "one_minus_x_over_one_plus_x_for_x_in_0_1", "exp_on_negative_values",
    "logistic", "tanh", "count_leading_zeros", "get_reciprocal",
    "SaturatingRoundingDoublingHighMul", "RoundingDivideByPOT", "MultiplyByQuantizedMultiplier",
]


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(x) -> np.ndarray:
    """Reduce to int32 the way a C int32 wraps (two's complement)."""
    x = _i64(x)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _div_pow2_toward_zero(x: np.ndarray, n: int) -> np.ndarray:
    # C's `/` on signed ints truncates toward zero; `>>` would floor.
    return np.where(x >= 0, x >> n, -((-x) >> n))


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), saturating INT32_MIN^2."""
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    ab = a * b  # |a*b| <= 2^62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    result = _div_pow2_toward_zero(ab + nudge, 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, result)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero (0 <= exponent <= 31)."""
    x, e = np.broadcast_arrays(_i64(x), _i64(exponent))
    mask = (np.int64(1) << e) - 1
    remainder = x & mask  # low bits of the two's complement value, as in int32
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier, double rounding (TFLITE_SINGLE_ROUNDING off).

    `x * 2^left` is an int32 product in C; it wraps here as it does there.
    Shifts beyond ±31 (only a hostile blob has them) are clamped, as every
    device backend does (docs/ops.md, "Values no host writes").
    """
    shift = np.clip(_i64(shift), -31, 31)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap32(_i64(x) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplierGreaterThanOne (used by softmax): SRDHM(x * 2^left_shift, m)."""
    return saturating_rounding_doubling_high_mul(wrap32(_i64(x) << _i64(left_shift)), multiplier)


# The TFLM names, for readers coming from its sources.
SaturatingRoundingDoublingHighMul = saturating_rounding_doubling_high_mul
RoundingDivideByPOT = rounding_divide_by_pot
MultiplyByQuantizedMultiplier = multiply_by_quantized_multiplier


def saturating_shift_left(x, n: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<n> for n > 0: x * 2^n saturated to int32."""
    x = _i64(x)
    threshold = (1 << (31 - n)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << n))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum for int32: (a + b + sign) / 2 in 64 bits, C division."""
    s = _i64(a) + _i64(b)
    return _div_pow2_toward_zero(s + np.where(s >= 0, 1, -1), 1)


_SRDHM = saturating_rounding_doubling_high_mul
_ONE_Q2 = 1 << 29  # FixedPoint<int32, 2>::One()


def _newton_reciprocal(half_denominator: np.ndarray) -> np.ndarray:
    # 1 / (2 * half_denominator) in Q2.29 by three Newton-Raphson steps (gemmlowp).
    x = wrap32(1515870810 + _SRDHM(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap32(_ONE_Q2 - _SRDHM(half_denominator, x))
        x = wrap32(x + saturating_shift_left(_SRDHM(x, one_minus), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: 1/(1+a) for a in [0, 1), Q0.31 in and out."""
    return saturating_shift_left(_newton_reciprocal(rounding_half_sum(a, INT32_MAX)), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: (1-a)/(1+a) for a in [0, 1), Q0.31 in and out."""
    x = _newton_reciprocal(rounding_half_sum(a, INT32_MAX))
    return saturating_shift_left(wrap32(x - _ONE_Q2), 2)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    # Taylor expansion around -1/8, all in Q0.31.
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = _SRDHM(x, x)
    x3 = _SRDHM(x2, x)
    x4 = _SRDHM(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap32(_SRDHM(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap32(constant_term + _SRDHM(constant_term, wrap32(x + poly)))


# exp(-2^k) in Q0.31 for the barrel shifter, k = -2 .. 4 (gemmlowp's constants).
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) for a <= 0 in Q(integer_bits), result Q0.31."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where(remainder & bit, _SRDHM(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: 1/(1+exp(-a)) for a in Q(integer_bits), result Q0.31."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap32(-a))
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_input), integer_bits))
    if_negative = wrap32(INT32_MAX - if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))


def tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh for a in Q(integer_bits), result Q0.31."""
    a = _i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap32(-a))  # -|a|
    # ExactMulByPot<1>: the same raw value read with one more integer bit.
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap32(-t), t))


def count_leading_zeros(x: int) -> int:
    """Leading zero bits of x as a uint32 (32 for 0)."""
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLM GetReciprocal: (Q0.31 scale, num_bits_over_unit) with scale ~ 2^bits / x."""
    headroom_plus_one = count_leading_zeros(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = int(wrap32((((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)))
    scale = int(one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one))
    return scale, num_bits_over_unit
