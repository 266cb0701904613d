// The per-block epilogue of FULLY_CONNECTED and CONV_2D: accumulators of up
// to 8 output channels to int8. A separate, small function so its loop keeps
// everything in registers (inlined into the kernels' nested loops, gcc spills
// on Cortex-M0).
#include "mpml_kernels.h"
#include "requant.h"

void mpml_requant_block(int8_t *y, const int32_t *acc, int r, uint32_t corr,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, const int32_t *q) {
    int32_t out_offset = q[0], lo = q[1], hi = q[2];
    const int8_t *end = y + r;
    // bias - corr per channel, acc, mult and shift walk together: pointer
    // arithmetic keeps gcc's Cortex-M0 loop in registers.
    while (y < end) {
        int32_t a = (int32_t)((uint32_t)*bias++ + (uint32_t)*acc++ - corr);
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
