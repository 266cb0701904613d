// The multiply-accumulate engine of FULLY_CONNECTED and CONV_2D.
//
// Weights are offset binary (u = w + 128) and interleaved in blocks of 8
// output channels (docs/blob-format.md), so one loaded input byte feeds 8
// multiply-accumulates whose weights sit at consecutive addresses. Callers
// subtract 128 * sum(x) afterwards, which is why the engine can also sum x.
//
// On Cortex-M0 (armv6m) a full block runs in Thumb-1 assembly: per input
// byte `ldrsb x` then 8 x (ldrb w,[wp,#i]; muls w,x; add acc_i,w), the 8
// accumulators in r5-r7 and r8-r12, the input sum in lr, 4 inputs per loop
// iteration (ldrb immediates 0..31): 3.3 instructions per MAC. Elsewhere,
// and for the tail block, the plain C loop below computes the same sums.
#include "mpml_kernels.h"

#if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)

// One MAC of input r3 with weight byte at r1+off into accumulator `acc`.
#define MAC_LO(off, acc) "ldrb r4, [r1, #" #off "]\n\tmuls r4, r3, r4\n\tadds " acc ", " acc ", r4\n\t"
#define MAC_HI(off, acc) "ldrb r4, [r1, #" #off "]\n\tmuls r4, r3, r4\n\tadd " acc ", r4\n\t"
#define MAC8(b) \
    MAC_LO(b + 0, "r5") MAC_LO(b + 1, "r6") MAC_LO(b + 2, "r7") MAC_HI(b + 3, "r8") \
    MAC_HI(b + 4, "r9") MAC_HI(b + 5, "r10") MAC_HI(b + 6, "r11") MAC_HI(b + 7, "r12")
// Load the next input byte (r0 = end of the run, r2 = -remaining), sign extended.
#define LOADX(SUM) "ldrsb r3, [r0, r2]\n\t" SUM

// r0 = state, r1 = x, r2 = w. Registers inside: r0 end of run, r1 weights,
// r2 negative index, r3 x, r4 product, r5-r12 accumulators, lr sum.
#define MAC8_BODY(SUM) \
    "push {r4-r7, lr}\n\t" \
    "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t" \
    "push {r4-r7}\n\t" \
    "push {r0}\n\t" \
    "ldr r4, [r0, #12]\n\tmov r8, r4\n\t" \
    "ldr r4, [r0, #16]\n\tmov r9, r4\n\t" \
    "ldr r4, [r0, #20]\n\tmov r10, r4\n\t" \
    "ldr r4, [r0, #24]\n\tmov r11, r4\n\t" \
    "ldr r4, [r0, #28]\n\tmov r12, r4\n\t" \
    "ldr r4, [r0, #32]\n\tmov lr, r4\n\t" \
    "ldr r3, [r0, #44]\n\t" \
    "ldr r5, [r0, #0]\n\tldr r6, [r0, #4]\n\tldr r7, [r0, #8]\n\t" \
    "adds r0, r1, r3\n\t" \
    "mov r1, r2\n\t" \
    "negs r2, r3\n\t" \
    "1:\n\t"                        /* a run: singles until 4 | remaining */ \
    "lsls r4, r2, #30\n\t" \
    "beq 3f\n\t" \
    "2:\n\t" \
    LOADX(SUM) MAC8(0) \
    "adds r1, #8\n\t" \
    "adds r2, #1\n\t" \
    "lsls r4, r2, #30\n\t" \
    "bne 2b\n\t" \
    "3:\n\t" \
    "cmp r2, #0\n\t" \
    "beq 5f\n\t" \
    "4:\n\t"                        /* 4 inputs, 32 MACs */ \
    LOADX(SUM) "adds r2, #1\n\t" MAC8(0) \
    LOADX(SUM) "adds r2, #1\n\t" MAC8(8) \
    LOADX(SUM) "adds r2, #1\n\t" MAC8(16) \
    LOADX(SUM) MAC8(24) \
    "adds r1, #32\n\t" \
    "adds r2, #1\n\t" \
    "bne 4b\n\t" \
    "5:\n\t"                        /* end of a run: next row or done */ \
    "ldr r3, [sp]\n\t" \
    "ldr r4, [r3, #36]\n\t" \
    "subs r4, #1\n\t" \
    "beq 6f\n\t" \
    "str r4, [r3, #36]\n\t" \
    "ldr r4, [r3, #40]\n\t" \
    "adds r0, r0, r4\n\t" \
    "ldr r2, [r3, #44]\n\t" \
    "negs r2, r2\n\t" \
    "b 1b\n\t" \
    "6:\n\t" \
    "str r4, [r3, #36]\n\t" \
    "str r5, [r3, #0]\n\tstr r6, [r3, #4]\n\tstr r7, [r3, #8]\n\t" \
    "mov r4, r8\n\tstr r4, [r3, #12]\n\t" \
    "mov r4, r9\n\tstr r4, [r3, #16]\n\t" \
    "mov r4, r10\n\tstr r4, [r3, #20]\n\t" \
    "mov r4, r11\n\tstr r4, [r3, #24]\n\t" \
    "mov r4, r12\n\tstr r4, [r3, #28]\n\t" \
    "mov r4, lr\n\tstr r4, [r3, #32]\n\t" \
    "pop {r0}\n\t" \
    "pop {r4-r7}\n\t" \
    "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t" \
    "pop {r4-r7, pc}\n\t"

__attribute__((naked, noinline)) static void mac8_v6m(mpml_mac_t *s, const int8_t *x, const uint8_t *w) {
    __asm__ volatile (".syntax unified\n\t" MAC8_BODY(""));
}

__attribute__((naked, noinline)) static void mac8_sum_v6m(mpml_mac_t *s, const int8_t *x, const uint8_t *w) {
    __asm__ volatile (".syntax unified\n\t" MAC8_BODY("add lr, r3\n\t"));
}

#endif

const uint8_t *mpml_mac(mpml_mac_t *s, const int8_t *x, const uint8_t *w, int r, int want_sum) {
    int32_t rows = s->rows, n = s->n;
    const uint8_t *w_end = w + (size_t)rows * (size_t)n * (size_t)r;
    #if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)
    if (r == 8) {
        if (want_sum) {
            mac8_sum_v6m(s, x, w);
        } else {
            mac8_v6m(s, x, w);
        }
        return w_end;
    }
    #endif
    // Unsigned sums: they wrap as the int32 arithmetic of _pure.py does.
    uint32_t sum = (uint32_t)s->sum;
    for (; rows > 0; rows--) {
        if (r == 8) {
            uint32_t a0 = s->acc[0], a1 = s->acc[1], a2 = s->acc[2], a3 = s->acc[3];
            uint32_t a4 = s->acc[4], a5 = s->acc[5], a6 = s->acc[6], a7 = s->acc[7];
            for (int32_t k = 0; k < n; k++, w += 8) {
                int32_t v = x[k];
                sum += (uint32_t)v;
                a0 += (uint32_t)(v * w[0]);
                a1 += (uint32_t)(v * w[1]);
                a2 += (uint32_t)(v * w[2]);
                a3 += (uint32_t)(v * w[3]);
                a4 += (uint32_t)(v * w[4]);
                a5 += (uint32_t)(v * w[5]);
                a6 += (uint32_t)(v * w[6]);
                a7 += (uint32_t)(v * w[7]);
            }
            s->acc[0] = (int32_t)a0;
            s->acc[1] = (int32_t)a1;
            s->acc[2] = (int32_t)a2;
            s->acc[3] = (int32_t)a3;
            s->acc[4] = (int32_t)a4;
            s->acc[5] = (int32_t)a5;
            s->acc[6] = (int32_t)a6;
            s->acc[7] = (int32_t)a7;
        } else {
            for (int32_t k = 0; k < n; k++, w += r) {
                int32_t v = x[k];
                sum += (uint32_t)v;
                for (int j = 0; j < r; j++) {
                    s->acc[j] = (int32_t)((uint32_t)s->acc[j] + (uint32_t)(v * w[j]));
                }
            }
        }
        x += s->stride;
    }
    s->rows = 0;
    if (want_sum) {
        s->sum = (int32_t)sum;
    }
    return w_end;
}
