// The multiply-accumulate engine of FULLY_CONNECTED and CONV_2D.
//
// Weights are offset binary (u = w + 128) and interleaved in blocks of 8
// output channels (docs/blob-format.md), so one loaded input byte feeds 8
// multiply-accumulates whose weights sit at consecutive addresses. Callers
// subtract 128 * sum(x) afterwards, which is why the engine can also sum x.
//
// The input comes as a list of runs (mpml_run_t): an FC row is one run, a
// conv pixel one run per kernel row (k_w * in_c contiguous bytes), plus runs
// of in_zp bytes for padded taps. One call covers a whole block, so the
// accumulators stay in registers from the first run to the last.
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

// r0 = s (mpml_mac_t). Registers inside: r0 end of run, r1 weights,
// r2 negative index, r3 x, r4 product, r5-r12 accumulators, lr sum.
// Stack frame: [sp] next run, [sp, #4] runs_end, [sp, #8] s.
#define MAC8_BODY(SUM) \
    "push {r4-r7, lr}\n\t" \
    "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t" \
    "push {r4-r7}\n\t" \
    "mov r3, r0\n\t" \
    "ldr r1, [r0, #40]\n\t"          /* runs */ \
    "ldr r2, [r0, #44]\n\t"          /* runs_end */ \
    "push {r1-r3}\n\t" \
    "ldr r4, [r0, #36]\n\t"          /* acc = init: 3 low, 5 high */ \
    "ldmia r4!, {r5-r7}\n\t" \
    "ldm r4, {r0-r4}\n\t" \
    "mov r8, r0\n\tmov r9, r1\n\tmov r10, r2\n\tmov r11, r3\n\tmov r12, r4\n\t" \
    "ldr r3, [sp, #8]\n\t" \
    "ldr r4, [r3, #32]\n\t"          /* sum */ \
    "mov lr, r4\n\t" \
    "ldr r1, [r3, #48]\n\t"          /* w */ \
    "b 5f\n\t" \
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
    "5:\n\t"                        /* next run, or done */ \
    "ldr r3, [sp]\n\t" \
    "ldr r4, [sp, #4]\n\t" \
    "cmp r3, r4\n\t" \
    "beq 6f\n\t" \
    "ldmia r3!, {r0, r2}\n\t"       /* r0 = end, r2 = n */ \
    "str r3, [sp]\n\t" \
    "negs r2, r2\n\t" \
    "b 1b\n\t" \
    "6:\n\t" \
    "ldr r3, [sp, #8]\n\t" \
    "str r1, [r3, #48]\n\t" \
    "stmia r3!, {r5-r7}\n\t"        /* acc[0..2] */ \
    "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t" \
    "stmia r3!, {r4-r7}\n\t"        /* acc[3..6] */ \
    "mov r4, r12\n\tmov r5, lr\n\t" \
    "stmia r3!, {r4, r5}\n\t"       /* acc[7], sum */ \
    "add sp, #12\n\t" \
    "pop {r4-r7}\n\t" \
    "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t" \
    "pop {r4-r7, pc}\n\t"

__attribute__((naked, noinline)) static void mac8_v6m(mpml_mac_t *s) {
    __asm__ volatile (".syntax unified\n\t" MAC8_BODY(""));
}

__attribute__((naked, noinline)) static void mac8_sum_v6m(mpml_mac_t *s) {
    __asm__ volatile (".syntax unified\n\t" MAC8_BODY("add lr, r3\n\t"));
}

#endif

void mpml_mac(mpml_mac_t *s, int r, int want_sum) {
    #if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)
    if (r == 8) {
        if (want_sum) {
            mac8_sum_v6m(s);
        } else {
            mac8_v6m(s);
        }
        return;
    }
    #endif
    // Unsigned sums: they wrap as the int32 arithmetic of _pure.py does.
    // init may be acc itself: read it before writing.
    uint32_t a[8];
    for (int j = 0; j < r; j++) {
        a[j] = (uint32_t)s->init[j];
    }
    uint32_t sum = (uint32_t)s->sum;
    const uint8_t *w = s->w;
    for (const mpml_run_t *run = s->runs; run < s->runs_end; run++) {
        const int8_t *x = run->end - run->n;
        if (r == 8) {
            uint32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            uint32_t a4 = a[4], a5 = a[5], a6 = a[6], a7 = a[7];
            for (int32_t k = 0; k < run->n; k++, w += 8) {
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
            a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
            a[4] = a4, a[5] = a5, a[6] = a6, a[7] = a7;
        } else {
            for (int32_t k = 0; k < run->n; k++, w += r) {
                int32_t v = x[k];
                sum += (uint32_t)v;
                for (int j = 0; j < r; j++) {
                    a[j] += (uint32_t)(v * w[j]);
                }
            }
        }
    }
    for (int j = 0; j < r; j++) {
        s->acc[j] = (int32_t)a[j];
    }
    if (want_sum) {
        s->sum = (int32_t)sum;
    }
    s->w = w;
}
