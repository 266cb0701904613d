// The multiply-accumulate engine of FULLY_CONNECTED and CONV_2D.
//
// Weights are offset binary (u = w + 128) and interleaved in blocks of 8
// output channels (docs/blob-format.md), so one loaded input byte feeds 8
// multiply-accumulates whose weights sit at consecutive addresses. Callers
// subtract 128 * sum(x) afterwards, which is why the engine also sums x in
// the first block of a pixel (FC row).
//
// The input comes as a list of runs (mpml_run_t): an FC row is one run, a
// conv pixel one run per kernel row (k_w * in_c contiguous bytes), plus runs
// of in_zp bytes for padded taps. The accumulators stay in registers from
// the first run to the last.
//
// Two entry points: mpml_mac() does one block (up to 8 channels) and leaves
// its sums in acc; mpml_mac_requant() does every full block of a pixel over
// the same run list and requantizes each (requant.h), so on Cortex-M0 a
// whole pixel is one call with no sums going through C.
//
// On Cortex-M0 (armv6m) full blocks run in Thumb-1 assembly, per input byte
// `ldrsb x` then 8 x (ldrb w,[wp,#i]; muls w,x; add acc_i,w), 4 inputs per
// loop iteration (ldrb immediates 0..31). The accumulators live in
// r8-r12 and three more registers; two loops:
//   - SUM (the first block): r5-r7 accumulators, lr the input sum,
//     ldrsb x,[end,-k] and an index step per input: 3.44 instructions/MAC;
//   - FAST (the others): lr and r5-r6 accumulators, so r7 is free to hold
//     end + 1 and one index step serves two inputs: 3.25 instructions/MAC.
// Elsewhere, and for the tail block, the plain C loop computes the same sums.
#include "mpml_kernels.h"
#include "requant.h"

#if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)

// One MAC of input r3 with the weight byte at r1 + off into accumulator acc.
#define MAC_LO(off, acc) "ldrb r4, [r1, #" #off "]\n\tmuls r4, r3, r4\n\tadds " acc ", " acc ", r4\n\t"
#define MAC_HI(off, acc) "ldrb r4, [r1, #" #off "]\n\tmuls r4, r3, r4\n\tadd " acc ", r4\n\t"
// Channels 0-4 are in r8-r12 in both loops; 5-7 in r5-r7 (SUM) or lr, r5, r6 (FAST).
#define MAC8_SUM(b) \
    MAC_HI(b + 0, "r8") MAC_HI(b + 1, "r9") MAC_HI(b + 2, "r10") MAC_HI(b + 3, "r11") \
    MAC_HI(b + 4, "r12") MAC_LO(b + 5, "r5") MAC_LO(b + 6, "r6") MAC_LO(b + 7, "r7")
#define MAC8_FAST(b) \
    MAC_HI(b + 0, "r8") MAC_HI(b + 1, "r9") MAC_HI(b + 2, "r10") MAC_HI(b + 3, "r11") \
    MAC_HI(b + 4, "r12") MAC_HI(b + 5, "lr") MAC_LO(b + 6, "r5") MAC_LO(b + 7, "r6")

// acc = init (r4 = init, advanced by 32).
#define INIT_SUM \
    "ldmia r4!, {r0-r3}\n\t" \
    "mov r8, r0\n\tmov r9, r1\n\tmov r10, r2\n\tmov r11, r3\n\t" \
    "ldmia r4!, {r0, r5, r6, r7}\n\t" \
    "mov r12, r0\n\t"
#define INIT_FAST \
    "ldmia r4!, {r0-r3}\n\t" \
    "mov r8, r0\n\tmov r9, r1\n\tmov r10, r2\n\tmov r11, r3\n\t" \
    "ldmia r4!, {r0, r3, r5, r6}\n\t" \
    "mov r12, r0\n\tmov lr, r3\n\t"
// Store acc[0..7] at r4 (advanced by 32).
#define SPILL_SUM \
    "mov r0, r8\n\tmov r1, r9\n\tmov r2, r10\n\tmov r3, r11\n\t" \
    "stmia r4!, {r0-r3}\n\t" \
    "mov r0, r12\n\t" \
    "stmia r4!, {r0, r5, r6, r7}\n\t"
#define SPILL_FAST \
    "mov r0, r8\n\tmov r1, r9\n\tmov r2, r10\n\tmov r3, r11\n\t" \
    "stmia r4!, {r0-r3}\n\t" \
    "mov r0, r12\n\tmov r3, lr\n\t" \
    "stmia r4!, {r0, r3, r5, r6}\n\t"

// The run loops. Enter at 5 (next run) with r1 = weights and the address of
// the next run at [sp, #NEXT]; leave at 6 when the run with n == 0 comes.
// Inside: r0 end of the run, r2 = -remaining, r3 x, r4 product. A run of 4k
// bytes goes straight to the 4-input loop; others take single inputs until
// 4 divide the rest.
#define NEXT_RUN(NEXT, SETUP) \
    "5:\n\t" \
    "ldr r3, [sp, #" #NEXT "]\n\t" \
    "ldmia r3!, {r0, r2}\n\t"       /* r0 = end, r2 = n */ \
    "str r3, [sp, #" #NEXT "]\n\t" \
    "negs r2, r2\n\t" \
    "beq 6f\n\t" \
    SETUP \
    "lsls r4, r2, #30\n\t" \
    "beq 4b\n\t"
#define SINGLES(MAC8, SUM) \
    "2:\n\t" \
    "ldrsb r3, [r0, r2]\n\t" SUM MAC8(0) \
    "adds r1, #8\n\t" \
    "adds r2, #1\n\t" \
    "lsls r4, r2, #30\n\t" \
    "bne 2b\n\t" \
    "cmp r2, #0\n\t" \
    "beq 5b\n\t" \
    "b 4b\n\t"                      /* (beyond a conditional branch's reach) */
#define LOOP_SUM(NEXT) \
    "4:\n\t" \
    "ldrsb r3, [r0, r2]\n\tadd lr, r3\n\tadds r2, #1\n\t" MAC8_SUM(0) \
    "ldrsb r3, [r0, r2]\n\tadd lr, r3\n\tadds r2, #1\n\t" MAC8_SUM(8) \
    "ldrsb r3, [r0, r2]\n\tadd lr, r3\n\tadds r2, #1\n\t" MAC8_SUM(16) \
    "ldrsb r3, [r0, r2]\n\tadd lr, r3\n\t" MAC8_SUM(24) \
    "adds r1, #32\n\t" \
    "adds r2, #1\n\t" \
    "bne 4b\n\t" \
    NEXT_RUN(NEXT, "") \
    SINGLES(MAC8_SUM, "add lr, r3\n\t") \
    "6:\n\t"
#define LOOP_FAST(NEXT) \
    "4:\n\t" \
    "ldrsb r3, [r0, r2]\n\t" MAC8_FAST(0) \
    "ldrsb r3, [r7, r2]\n\t" MAC8_FAST(8) \
    "adds r2, #2\n\t" \
    "ldrsb r3, [r0, r2]\n\t" MAC8_FAST(16) \
    "ldrsb r3, [r7, r2]\n\t" MAC8_FAST(24) \
    "adds r1, #32\n\t" \
    "adds r2, #2\n\t" \
    "bne 4b\n\t" \
    NEXT_RUN(NEXT, "adds r7, r0, #1\n\t") \
    SINGLES(MAC8_FAST, "") \
    "6:\n\t"

#define SAVE_HIGH \
    "push {r4-r7, lr}\n\t" \
    "mov r4, r8\n\tmov r5, r9\n\tmov r6, r10\n\tmov r7, r11\n\t" \
    "push {r4-r7}\n\t"
#define RESTORE_HIGH \
    "pop {r4-r7}\n\t" \
    "mov r8, r4\n\tmov r9, r5\n\tmov r10, r6\n\tmov r11, r7\n\t" \
    "pop {r4-r7, pc}\n\t"

// One block: r0 = s. Frame: [sp] s, [sp, #4] next run.
__attribute__((naked, noinline)) static void mac8_sum_v6m(mpml_mac_t *s) {
    __asm__ volatile (
        ".syntax unified\n\t"
        SAVE_HIGH
        "ldr r1, [r0, #36]\n\t"      // runs
        "push {r0, r1}\n\t"
        "ldr r4, [r0, #40]\n\t"      // init
        INIT_SUM
        "ldr r3, [sp]\n\t"
        "ldr r4, [r3, #32]\n\t"      // sum
        "mov lr, r4\n\t"
        "ldr r1, [r3, #44]\n\t"      // w
        "b 5f\n\t"
        LOOP_SUM(4)
        "ldr r4, [sp]\n\t"
        "str r1, [r4, #44]\n\t"
        SPILL_SUM                    // acc, then sum
        "mov r0, lr\n\t"
        "str r0, [r4]\n\t"
        "add sp, #8\n\t"
        RESTORE_HIGH);
}

__attribute__((naked, noinline)) static void mac8_v6m(mpml_mac_t *s) {
    __asm__ volatile (
        ".syntax unified\n\t"
        SAVE_HIGH
        "ldr r1, [r0, #36]\n\t"      // runs
        "push {r0, r1}\n\t"
        "ldr r4, [r0, #40]\n\t"      // init
        INIT_FAST
        "ldr r3, [sp]\n\t"
        "ldr r1, [r3, #44]\n\t"      // w
        "b 5f\n\t"
        LOOP_FAST(4)
        "ldr r4, [sp]\n\t"
        "str r1, [r4, #44]\n\t"
        SPILL_FAST
        "add sp, #8\n\t"
        RESTORE_HIGH);
}

// Every full block of a pixel, requantized: r0 = s, r1 = q, r2 = y,
// r3 = n_blocks (>= 1). Frame (72 bytes):
//   [sp, #0..28] the block's sums    [sp, #32] s      [sp, #36] q
//   [sp, #40] blocks left            [sp, #44] y      [sp, #48] mult
//   [sp, #52] shift                  [sp, #56] init   [sp, #60] next run
//   [sp, #64] neg_corr               [sp, #68] w
// The first block takes the SUM loop and sets neg_corr; the others the
// FAST loop. Sums go to the frame, where MPML_RQ1_V6M reads them.
__attribute__((naked, noinline)) static void mac_requant_v6m(mpml_mac_t *s, mpml_rq_t *q, int8_t *y, int32_t n) {
    __asm__ volatile (
        ".syntax unified\n\t"
        SAVE_HIGH
        "sub sp, #72\n\t"
        "str r0, [sp, #32]\n\t"
        "str r1, [sp, #36]\n\t"
        "str r3, [sp, #40]\n\t"
        "str r2, [sp, #44]\n\t"
        "ldr r4, [r1, #0]\n\t"
        "str r4, [sp, #48]\n\t"      // mult
        "ldr r4, [r1, #4]\n\t"
        "str r4, [sp, #52]\n\t"      // shift
        "ldr r3, [r0, #36]\n\t"
        "str r3, [sp, #60]\n\t"      // next run = runs
        "ldr r4, [r0, #40]\n\t"      // init
        INIT_SUM
        "str r4, [sp, #56]\n\t"
        "ldr r0, [sp, #32]\n\t"
        "ldr r1, [r0, #44]\n\t"      // w
        "movs r4, #0\n\t"            // sum
        "mov lr, r4\n\t"
        "b 5f\n\t"
        LOOP_SUM(60)
        "str r1, [sp, #68]\n\t"
        "mov r0, lr\n\t"             // s->sum, neg_corr = -128 * sum
        "ldr r4, [sp, #32]\n\t"
        "str r0, [r4, #32]\n\t"
        "lsls r0, r0, #7\n\t"
        "negs r0, r0\n\t"
        "str r0, [sp, #64]\n\t"
        "mov r4, sp\n\t"
        SPILL_SUM
        "b 7f\n\t"
        "8:\n\t"                     // the next block
        "ldr r4, [sp, #56]\n\t"
        INIT_FAST
        "str r4, [sp, #56]\n\t"
        "ldr r0, [sp, #32]\n\t"
        "ldr r3, [r0, #36]\n\t"
        "str r3, [sp, #60]\n\t"
        "ldr r1, [sp, #68]\n\t"
        "b 5f\n\t"
        LOOP_FAST(60)
        "str r1, [sp, #68]\n\t"
        "mov r4, sp\n\t"
        SPILL_FAST
        "7:\n\t"                     // requantize the block
        "ldr r0, [sp, #64]\n\t"
        "mov r9, r0\n\t"
        "ldr r0, [sp, #36]\n\t"
        "adds r0, #12\n\t"
        "ldmia r0!, {r1, r2, r3}\n\t"  // out_offset, act_min, act_max
        "mov r10, r1\n\tmov r11, r2\n\tmov r12, r3\n\t"
        "add r4, sp, #44\n\t"
        "ldmia r4!, {r5, r6, r7}\n\t"  // y, mult, shift
        MPML_RQ1_V6M(0, 0) MPML_RQ1_V6M(4, 1) MPML_RQ1_V6M(8, 2) MPML_RQ1_V6M(12, 3)
        MPML_RQ1_V6M(16, 4) MPML_RQ1_V6M(20, 5) MPML_RQ1_V6M(24, 6) MPML_RQ1_V6M(28, 7)
        "adds r5, #8\n\t"
        "adds r6, #32\n\t"
        "adds r7, #32\n\t"
        "add r4, sp, #44\n\t"
        "stmia r4!, {r5, r6, r7}\n\t"
        "ldr r0, [sp, #40]\n\t"
        "subs r0, #1\n\t"
        "str r0, [sp, #40]\n\t"
        "beq 9f\n\t"
        "b 8b\n\t"
        "9:\n\t"                     // write back w, init, mult, shift, neg_corr
        "ldr r0, [sp, #32]\n\t"
        "ldr r1, [sp, #68]\n\t"
        "str r1, [r0, #44]\n\t"
        "ldr r1, [sp, #56]\n\t"
        "str r1, [r0, #40]\n\t"
        "ldr r0, [sp, #36]\n\t"
        "ldr r1, [sp, #48]\n\t"
        "ldr r2, [sp, #52]\n\t"
        "ldr r3, [sp, #64]\n\t"
        "stmia r0!, {r1, r2, r3}\n\t"
        "add sp, #72\n\t"
        RESTORE_HIGH);
}

#endif

// The portable engine (other arches, the tail block, -DMPML_NO_ASM).
// Unsigned sums: they wrap as the int32 arithmetic of _pure.py does.
__attribute__((noinline)) static void mac_c(mpml_mac_t *s, int r, int want_sum) {
    // init may be acc itself: read it before writing.
    uint32_t a[8];
    for (int j = 0; j < r; j++) {
        a[j] = (uint32_t)s->init[j];
    }
    uint32_t sum = (uint32_t)s->sum;
    const uint8_t *w = s->w;
    for (const mpml_run_t *run = s->runs; run->n; run++) {
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
    mac_c(s, r, want_sum);
}

// Blocks b0 .. of n_out channels, one at a time: the portable path, the tail
// block, and layers whose requantization needs the exact C.
__attribute__((noinline)) static void mac_requant_c(mpml_mac_t *s, mpml_rq_t *q, int8_t *y, int32_t b0,
    int32_t n_out) {
    if (b0 == 0) {
        s->sum = 0;
    }
    for (int32_t o0 = b0 * MPML_OUT_BLOCK; o0 < n_out; o0 += MPML_OUT_BLOCK) {
        int r = n_out - o0 < MPML_OUT_BLOCK ? n_out - o0 : MPML_OUT_BLOCK;
        mpml_mac(s, r, o0 == 0);
        if (o0 == 0) {
            q->neg_corr = (int32_t)(0u - ((uint32_t)s->sum << 7));
        }
        mpml_requant_block(y + o0, s->acc, r, q);
        s->init += MPML_OUT_BLOCK;
        q->mult += MPML_OUT_BLOCK;
        q->shift += MPML_OUT_BLOCK;
    }
}

void mpml_mac_requant(mpml_mac_t *s, mpml_rq_t *q, int8_t *y, int32_t n_out) {
    #if defined(__ARM_ARCH_6M__) && !defined(MPML_NO_ASM)
    if (q->fast && n_out >= MPML_OUT_BLOCK) {
        int32_t full = (int32_t)((uint32_t)n_out / MPML_OUT_BLOCK);
        mac_requant_v6m(s, q, y, full);
        if ((uint32_t)n_out % MPML_OUT_BLOCK) {
            mac_requant_c(s, q, y, full, n_out);
        }
        return;
    }
    #endif
    mac_requant_c(s, q, y, 0, n_out);
}
