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

// SaturatingRoundingDoublingHighMul. With nudge 2^30 for ab >= 0 and
// 1 - 2^30 otherwise, the C division by 2^31 (truncating) of ab + nudge is
// floor((ab + 2^30) / 2^31) in both cases, which is what the Cortex-M0 path
// computes; the only result that does not fit int32 (a == b == INT32_MIN,
// giving 2^31) shows as INT32_MIN there and saturates to INT32_MAX.
static inline int32_t mpml_srdhm(int32_t a, int32_t b) {
    #if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)
    // 64-bit product from four 16x16 products (no long multiply on armv6m).
    uint32_t al, bl, hi;
    __asm__ (
        ".syntax unified\n\t"
        "uxth %[al], %[a]\n\t"
        "asrs %[a], %[a], #16\n\t"         // a = ah
        "uxth %[bl], %[b]\n\t"
        "asrs %[b], %[b], #16\n\t"         // b = bh
        "mov %[hi], %[a]\n\t"
        "muls %[hi], %[b], %[hi]\n\t"      // hi = ah*bh
        "muls %[b], %[al], %[b]\n\t"       // b = al*bh
        "muls %[al], %[bl], %[al]\n\t"     // al = al*bl: the low word
        "muls %[bl], %[a], %[bl]\n\t"      // bl = ah*bl
        "lsls %[a], %[b], #16\n\t"         // + (al*bh) << 16
        "asrs %[b], %[b], #16\n\t"
        "adds %[al], %[al], %[a]\n\t"
        "adcs %[hi], %[b]\n\t"
        "lsls %[a], %[bl], #16\n\t"        // + (ah*bl) << 16
        "asrs %[bl], %[bl], #16\n\t"
        "adds %[al], %[al], %[a]\n\t"
        "adcs %[hi], %[bl]\n\t"
        "movs %[a], #1\n\t"                // + 2^30
        "lsls %[a], %[a], #30\n\t"
        "movs %[bl], #0\n\t"
        "adds %[al], %[al], %[a]\n\t"
        "adcs %[hi], %[bl]\n\t"
        "lsls %[hi], %[hi], #1\n\t"        // >> 31
        "lsrs %[al], %[al], #31\n\t"
        "orrs %[hi], %[al]\n\t"
        "subs %[a], %[hi], #1\n\t"         // INT32_MIN: saturate to INT32_MAX
        "bvc 1f\n\t"
        "mov %[hi], %[a]\n\t"
        "1:\n\t"
        : [a] "+&l" (a), [b] "+&l" (b), [al] "=&l" (al), [bl] "=&l" (bl), [hi] "=&l" (hi)
        :
        : "cc");
    return (int32_t)hi;
    #else
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
    #endif
}

// RoundingDivideByPOT, 0 <= e <= 31
// (remainder > threshold) is computed branch-free as the sign bit of
// threshold - remainder, which cannot overflow (both lie in [0, 2^31)).
static inline int32_t mpml_rounding_divide_by_pot(int32_t x, int e) {
    uint32_t mask = ((uint32_t)1 << e) - 1;
    uint32_t remainder = (uint32_t)x & mask;
    uint32_t threshold = (mask >> 1) + ((uint32_t)x >> 31);
    return (x >> e) + (int32_t)((threshold - remainder) >> 31);
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
