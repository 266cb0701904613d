// The rounding steps of TFLM's reference kernels (docs/ops.md), exact for
// every int32 input. Named as in TFLM/gemmlowp.
#ifndef MPML_REQUANT_H
#define MPML_REQUANT_H

#include <stdint.h>

// Signed 32x32 -> 64 multiply. Cortex-M0 has no long multiply and gcc would
// call __aeabi_lmul (not available to a dynruntime module without the
// runtime); four 16x16 products are as fast and link anywhere.
static inline int64_t mpml_mul64(int32_t a, int32_t b) {
    #if defined(__ARM_ARCH_6M__)
    uint32_t al = (uint32_t)a & 0xFFFF, bl = (uint32_t)b & 0xFFFF;
    int32_t ah = a >> 16, bh = b >> 16;
    int64_t mid = (int64_t)(ah * (int32_t)bl) + (int64_t)((int32_t)al * bh);
    return (int64_t)((uint64_t)(int64_t)(ah * bh) << 32) + (int64_t)((uint64_t)mid << 16) + (int64_t)(al * bl);
    #else
    return (int64_t)a * b;
    #endif
}

// SaturatingRoundingDoublingHighMul
static inline int32_t mpml_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = mpml_mul64(a, b);
    int64_t v = ab + (ab >= 0 ? (1 << 30) : 1 - (1 << 30));
    // Division by 2^31 truncating toward zero.
    if (v < 0) {
        v += ((int64_t)1 << 31) - 1;
    }
    return (int32_t)(v >> 31);
}

// RoundingDivideByPOT, 0 <= e <= 31
static inline int32_t mpml_rounding_divide_by_pot(int32_t x, int e) {
    int32_t mask = (int32_t)(((uint32_t)1 << e) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

// MultiplyByQuantizedMultiplier: TFLM's double rounding. Shifts beyond +-31
// only come from a hostile blob; they are clamped (as _pure.py does).
static inline int32_t mpml_multiply_by_quantized_multiplier(int32_t x, int32_t m, int32_t shift) {
    if (shift > 0) {
        if (shift > 31) {
            shift = 31;
        }
        return mpml_srdhm((int32_t)((uint32_t)x << shift), m);
    }
    if (shift < -31) {
        shift = -31;
    }
    return mpml_rounding_divide_by_pot(mpml_srdhm(x, m), -shift);
}

// acc -> int8 with output offset and activation range.
static inline int8_t mpml_requant8(int32_t acc, int32_t m, int32_t shift,
    int32_t out_offset, int32_t lo, int32_t hi) {
    int32_t v = mpml_multiply_by_quantized_multiplier(acc, m, shift);
    v = (int32_t)((uint32_t)v + (uint32_t)out_offset);
    if (v < lo) {
        v = lo;
    }
    if (v > hi) {
        v = hi;
    }
    return (int8_t)v;
}

#endif
