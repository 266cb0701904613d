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

// The Cortex-M0 requantization of one output (Thumb-1, 37 instructions;
// the C above takes about 74). For mult >= 0 and a right shift
// e = -shift in 1..31 (mpml_requant_fast), TFLM's two rounding steps become
//
//   P  = a * m                           64 bits, from four 16x16 muls
//   X  = floor((2P + 2^31) / 2^32)       SaturatingRoundingDoublingHighMul
//                                        (m != INT32_MIN: never saturates)
//   X' = X - (X < 0)
//   y  = ((X' >> (e - 1)) + 1) >> 1      RoundingDivideByPOT(X, e)
//
// The last line is floor((X + 2^(e-1) - (X < 0)) / 2^e), round half away
// from zero, computed without the overflow of adding 2^(e-1) to X (X stays
// below 2^31 - 1 for m < 2^31, so X' and the +1 cannot wrap). mult == 0
// gives 0 for any shift, as the C does.
#if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)
// Output j. In: [sp, #4j] acc, r9 neg_corr, r6 mult, r7 shift, r5 y,
// r10 out_offset, r11 act_min, r12 act_max. r0-r4 scratch.
#define MPML_RQ1_V6M(j4, j) \
    "ldr r0, [sp, #" #j4 "]\n\t"        /* a = acc - 128 * sum(x) */ \
    "add r0, r9\n\t" \
    "ldr r1, [r6, #" #j4 "]\n\t"        /* m */ \
    "uxth r2, r0\n\t"                   /* al */ \
    "asrs r0, r0, #16\n\t"              /* ah */ \
    "uxth r3, r1\n\t"                   /* ml */ \
    "lsrs r1, r1, #16\n\t"              /* mh (m >= 0) */ \
    "mov r4, r2\n\t" \
    "muls r4, r3, r4\n\t"               /* lo = al*ml */ \
    "muls r3, r0, r3\n\t"               /* ah*ml, signed */ \
    "muls r2, r1, r2\n\t"               /* al*mh, < 2^31 */ \
    "muls r1, r0, r1\n\t"               /* hi = ah*mh */ \
    "lsls r0, r3, #16\n\t"              /* P = hi:lo + (ah*ml << 16) */ \
    "asrs r3, r3, #16\n\t" \
    "adds r4, r4, r0\n\t" \
    "adcs r1, r3\n\t" \
    "lsls r0, r2, #16\n\t"              /*   + (al*mh << 16) */ \
    "lsrs r2, r2, #16\n\t" \
    "adds r4, r4, r0\n\t" \
    "adcs r1, r2\n\t" \
    "adds r4, r4, r4\n\t"               /* 2P */ \
    "adcs r1, r1\n\t" \
    "lsrs r4, r4, #31\n\t"              /* X = high word of 2P + 2^31 */ \
    "adds r1, r1, r4\n\t" \
    "asrs r4, r1, #31\n\t"              /* X' = X - (X < 0) */ \
    "adds r1, r1, r4\n\t" \
    "ldr r0, [r7, #" #j4 "]\n\t"        /* e - 1 = ~shift */ \
    "mvns r0, r0\n\t" \
    "asrs r1, r1, r0\n\t"               /* RoundingDivideByPOT */ \
    "adds r1, #1\n\t" \
    "asrs r1, r1, #1\n\t" \
    "add r1, r10\n\t"                   /* + out_offset, clamp, store */ \
    "cmp r1, r11\n\t" \
    "bge 10f\n\t" \
    "mov r1, r11\n\t" \
    "10:\n\t" \
    "cmp r1, r12\n\t" \
    "ble 11f\n\t" \
    "mov r1, r12\n\t" \
    "11:\n\t" \
    "strb r1, [r5, #" #j "]\n\t"
#endif

#endif
