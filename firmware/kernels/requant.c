// The per-block epilogue of FULLY_CONNECTED and CONV_2D: accumulators of up
// to 8 output channels (bias included) to int8.
//
// The C loop is exact for every input (requant.h). On Cortex-M0 a full block
// whose channels all pass mpml_requant_fast() takes a Thumb-1 routine of 37
// instructions per output instead of about 74: for mult >= 0 and a right
// shift e = -shift in 1..31, TFLM's two rounding steps become
//
//   P  = a * m                           64 bits, from four 16x16 muls
//   X  = floor((2P + 2^31) / 2^32)       SaturatingRoundingDoublingHighMul
//                                        (m != INT32_MIN: never saturates)
//   X' = X - (X < 0)
//   y  = ((X' >> (e - 1)) + 1) >> 1      RoundingDivideByPOT(X, e)
//
// The last line is floor((X + 2^(e-1) - (X < 0)) / 2^e), round half away
// from zero, computed without the overflow of adding 2^(e-1) to X (X stays
// below 2^31 - 1 for m < 2^31, so X' and the +1 cannot wrap).
#include "mpml_kernels.h"
#include "requant.h"

int mpml_requant_fast(const int32_t *mult, const int32_t *shift, int32_t n) {
    for (int32_t o = 0; o < n; o++) {
        int32_t m = mult[o], sh = shift[o];
        if (m < 0 || (m > 0 && (sh > -1 || sh < -31))) {
            return 0;
        }
    }
    return 1;
}

#if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)

// One output j. In: [sp, #4j] acc, r9 neg_corr, r6 mult, r7 shift, r5 y,
// r10 out_offset, r11 act_min, r12 act_max. r0-r4 scratch.
#define RQ1(j4, j) \
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
    "bge 1f\n\t" \
    "mov r1, r11\n\t" \
    "1:\n\t" \
    "cmp r1, r12\n\t" \
    "ble 2f\n\t" \
    "mov r1, r12\n\t" \
    "2:\n\t" \
    "strb r1, [r5, #" #j "]\n\t"

// r0 = y, r1 = acc, r2 = q (mpml_rq_t).
__attribute__((naked, noinline)) static void requant8_v6m(int8_t *y, const int32_t *acc, const mpml_rq_t *q) {
    __asm__ volatile (
        ".syntax unified\n\t"
        "push {r4-r7, lr}\n\t"
        "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t"
        "push {r4-r7}\n\t"
        "mov r8, r0\n\t"
        "mov r9, r2\n\t"
        "ldm r1, {r0-r7}\n\t"            // the accumulators, onto the stack
        "push {r0-r7}\n\t"
        "mov r2, r9\n\t"
        "ldmia r2!, {r6, r7}\n\t"        // mult, shift
        "ldmia r2!, {r0, r3, r4, r5}\n\t"
        "mov r9, r0\n\t"                 // neg_corr
        "mov r10, r3\n\t"                // out_offset
        "mov r11, r4\n\t"                // act_min
        "mov r12, r5\n\t"                // act_max
        "mov r5, r8\n\t"                 // y
        RQ1(0, 0) RQ1(4, 1) RQ1(8, 2) RQ1(12, 3) RQ1(16, 4) RQ1(20, 5) RQ1(24, 6) RQ1(28, 7)
        "add sp, #32\n\t"
        "pop {r4-r7}\n\t"
        "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t"
        "pop {r4-r7, pc}\n\t");
}

#endif

void mpml_requant_block(int8_t *y, const int32_t *acc, int r, const mpml_rq_t *q) {
    #if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)
    if (r == 8 && q->fast) {
        requant8_v6m(y, acc, q);
        return;
    }
    #endif
    int32_t out_offset = q->out_offset, lo = q->act_min, hi = q->act_max;
    uint32_t neg_corr = (uint32_t)q->neg_corr;
    const int32_t *mult = q->mult, *shift = q->shift;
    const int8_t *end = y + r;
    // acc, mult and shift walk together: pointer arithmetic keeps gcc's
    // Cortex-M0 loop in registers.
    while (y < end) {
        int32_t a = (int32_t)((uint32_t)*acc++ + neg_corr);
        int32_t m = *mult++, sh = *shift++;
        int32_t v;
        if (sh > 0) {
            v = mpml_srdhm((int32_t)((uint32_t)a << (sh > 31 ? 31 : sh)), m);
        } else {
            v = mpml_rounding_divide_by_pot(mpml_srdhm(a, m), sh < -31 ? 31 : -sh);
        }
        v = (int32_t)((uint32_t)v + (uint32_t)out_offset);
        *y++ = mpml_clamp8(v, lo, hi);
    }
}
