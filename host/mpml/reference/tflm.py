"""TFLM's Prepare-time arithmetic: multipliers, shifts, ranges, paddings and tables.

What TFLM's kernels compute once in `Prepare` from the tensors' float scales,
the host computes here, exactly the same way (float32 where TFLM uses float,
double where it uses double), so that an imported model's blob holds the very
int32 parameters TFLM would use. The integer algorithms of SOFTMAX, LOGISTIC
and TANH are run here on every possible int8 input to fill the lookup tables
the board uses (docs/ops.md).
"""

from __future__ import annotations

import math

import numpy as np

from . import fixedpoint as fp

__all__ = [
    "round_half_away", "quantize_multiplier", "quantize_multiplier_smaller_than_one_exp",
    "conv_multipliers", "fc_per_tensor_multiplier", "activation_range", "compute_out_size",
    "compute_padding", "add_params", "requantize_params", "softmax_tables",
    "logistic_table", "tanh_table", "calculate_input_radius",
]


def round_half_away(x: float) -> float:
    """C's std::round / TfLiteRound: halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier (double rounding build): (Q31 multiplier, shift) from a double.

    frexp gives real = q * 2^shift with q in [0.5, 1); the multiplier is
    round(q * 2^31), renormalised if rounding reached 2^31; multipliers below
    2^-31 flush to zero as TFLM does.
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplierSmallerThanOneExp: as quantize_multiplier, for 0 < real < 1."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} not in (0, 1)")
    return quantize_multiplier(real)


def _f32(x) -> np.float32:
    return np.float32(x)


def conv_multipliers(input_scale: float, filter_scales, output_scale: float, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) as TFLM's PopulateConvolutionQuantizationParams.

    effective = double(input_scale) * double(filter_scale[c]) / double(output_scale),
    the scales being float32; a single filter scale is broadcast to every channel.
    Also TFLM's per-channel FULLY_CONNECTED.
    """
    scales = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    mult = np.empty(channels, np.int32)
    shift = np.empty(channels, np.int32)
    for c in range(channels):
        s = scales[c] if scales.size > 1 else scales[0]
        real = float(_f32(input_scale)) * float(s) / float(_f32(output_scale))
        mult[c], shift[c] = quantize_multiplier(real)
    return mult, shift


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """Per-tensor FULLY_CONNECTED (multiplier, shift) as TFLM's GetQuantizedConvolutionMultipler.

    Unlike the per-channel path, the input and filter scales are multiplied in
    float32 first: double(float(input_scale * filter_scale)) / double(output_scale).
    """
    product = float(_f32(input_scale) * _f32(filter_scale))
    return quantize_multiplier(product / float(_f32(output_scale)))


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized for an int8 output.

    `activation` is NONE, RELU, RELU6 or RELU_N1_TO_1; a bound is
    zero_point + round(float32(f / scale)), clamped to [-128, 127].
    """
    def q(f: float) -> int:
        return int(zero_point) + int(round_half_away(float(_f32(_f32(f) / _f32(scale)))))

    lo, hi = -128, 127
    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, q(0.0)), hi
    if activation == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise ValueError(f"fused activation {activation} is not supported")


def compute_out_size(padding: str, image: int, filter_size: int, stride: int, dilation: int = 1) -> int:
    """TFLM ComputeOutSize for SAME or VALID padding."""
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (image + stride - 1) // stride
    if padding == "VALID":
        return (image + stride - effective) // stride
    raise ValueError(f"padding {padding}")


def compute_padding(stride: int, dilation: int, image: int, filter_size: int, out: int) -> int:
    """TFLM ComputePaddingWithOffset: the leading (top/left) padding; the odd extra goes after."""
    effective = (filter_size - 1) * dilation + 1
    total = (out - 1) * stride + effective - image
    return max(total, 0) // 2


def add_params(scale1: float, zp1: int, scale2: float, zp2: int, out_scale: float, out_zp: int) -> dict[str, int]:
    """ADD's int8 params as TFLM's CalculateOpDataAdd (left_shift 20, twice the larger input scale)."""
    left_shift = 20
    twice_max = 2.0 * float(max(_f32(scale1), _f32(scale2)))
    m1, s1 = quantize_multiplier_smaller_than_one_exp(float(_f32(scale1)) / twice_max)
    m2, s2 = quantize_multiplier_smaller_than_one_exp(float(_f32(scale2)) / twice_max)
    mo, so = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * float(_f32(out_scale))))
    return dict(in1_offset=-int(zp1), in2_offset=-int(zp2), left_shift=left_shift,
                in1_mult=m1, in1_shift=s1, in2_mult=m2, in2_shift=s2,
                out_mult=mo, out_shift=so, out_offset=int(out_zp))


def requantize_params(in_scale: float, out_scale: float) -> tuple[int, int]:
    """QUANTIZE int8 -> int8 (multiplier, shift): double(in_scale) / double(out_scale)."""
    return quantize_multiplier(float(_f32(in_scale)) / float(_f32(out_scale)))


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLM CalculateInputRadius: largest input magnitude the fixed-point path handles."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def _quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    if not real > 1.0:
        raise ValueError(f"multiplier {real} not greater than one")
    m, s = quantize_multiplier(real)
    if s < 0:
        raise ValueError(f"multiplier {real} gave a negative shift")
    return m, s


def softmax_tables(beta: float, input_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """SOFTMAX's (exp_sum_table, exp_table), int32[256] indexed by d = max(row) - x.

    TFLM's int8 softmax: PreprocessSoftmaxScaling(beta, input_scale, 5) gives
    the multiplier and left shift that take -d into Q5.26, diff_min =
    -CalculateInputRadius(5, left_shift); for -d >= diff_min, e =
    exp_on_negative_values(...) in Q0.31, exp_table[d] = e and exp_sum_table[d]
    = e rescaled to Q12.19 (RoundingDivideByPOT by 12); else both 0.
    """
    scaled_diff_integer_bits = 5
    max_real = float((1 << 31) - 1)  # double rounding build (TFLITE_SINGLE_ROUNDING off)
    real = min(float(_f32(beta)) * float(_f32(input_scale)) * (1 << (31 - scaled_diff_integer_bits)), max_real)
    mult, left_shift = _quantize_multiplier_greater_than_one(real)
    diff_min = -calculate_input_radius(scaled_diff_integer_bits, left_shift)
    diff = -np.arange(256, dtype=np.int64)
    rescaled = fp.multiply_by_quantized_multiplier_greater_than_one(diff, mult, left_shift)
    e = fp.exp_on_negative_values(rescaled, scaled_diff_integer_bits)
    used = diff >= diff_min
    exp_table = np.where(used, e, 0).astype(np.int32)
    exp_sum_table = np.where(used, fp.rounding_divide_by_pot(e, 12), 0).astype(np.int32)
    return exp_sum_table, exp_table


def _input_q4_params(input_scale: float) -> tuple[int, int, int]:
    # LOGISTIC/TANH int8 Prepare: the input in Q4.27 via frexp of scale * 2^27.
    real = float(_f32(input_scale)) * float(1 << (31 - 4))
    q, left_shift = math.frexp(real)
    mult = int(round_half_away(q * (1 << 31)))
    if mult == 1 << 31:  # static_cast<int32_t> of 2^31: wraps on the targets TFLM runs on
        mult = fp.INT32_MIN
    radius = calculate_input_radius(4, left_shift, 31)
    return mult, left_shift, radius


def logistic_table(input_scale: float, input_zp: int) -> np.ndarray:
    """LOGISTIC's int8[256] table, table[q + 128] = TFLM's int8 logistic of q."""
    mult, left_shift, radius = _input_q4_params(input_scale)
    x = np.arange(-128, 128, dtype=np.int64) - int(input_zp)
    inside = (x > -radius) & (x < radius)
    xq = np.where(inside, x, 0)
    q4 = fp.multiply_by_quantized_multiplier(xq, mult, left_shift)
    out = fp.rounding_divide_by_pot(fp.logistic(q4, 4), 31 - 8) - 128
    out = np.clip(out, -128, 127)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return out.astype(np.int8)


def tanh_table(input_scale: float, input_zp: int) -> np.ndarray:
    """TANH's int8[256] table, table[q + 128] = TFLM's int8 tanh of q."""
    mult, left_shift, radius = _input_q4_params(input_scale)
    x = np.arange(-128, 128, dtype=np.int64) - int(input_zp)
    inside = (x > -radius) & (x < radius)
    xq = np.where(inside, x, 0)
    q4 = fp.multiply_by_quantized_multiplier(xq, mult, left_shift)
    out = np.clip(fp.rounding_divide_by_pot(fp.tanh(q4, 4), 31 - 7), -128, 127)
    out = np.where(x <= -radius, -128, np.where(x >= radius, 127, out))
    return out.astype(np.int8)
