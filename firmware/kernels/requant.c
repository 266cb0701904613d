// The per-block epilogue of FULLY_CONNECTED and CONV_2D: accumulators of up
// to 8 output channels (bias included) to int8, exact for every input
// (requant.h). On Cortex-M0, full blocks whose channels all pass
// mpml_requant_fast() are requantized inside the MAC routine instead
// (mac.c, MPML_RQ1_V6M in requant.h).
#include "mpml_kernels.h"
#include "requant.h"

int mpml_requant_fast(const int32_t *mult, const int32_t *shift, int32_t n) {
    for (int32_t o = 0; o < n; o++) {
        int32_t m = mult[o];
        // mult > 0 needs shift in -31..-1, that is ~shift in 0..30.
        if (m != 0 && (m < 0 || (uint32_t)~shift[o] > 30u)) {
            return 0;
        }
    }
    return 1;
}

void mpml_requant_block(int8_t *y, const int32_t *acc, int r, const mpml_rq_t *q) {
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

