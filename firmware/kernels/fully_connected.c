// FULLY_CONNECTED: y[b,o] = clamp(MBQM(bias'[o] + sum_i x[b,i] * w[o,i]) + out_offset)
// with offset-binary blocked weights: sum x*w = sum x*u - 128 * sum x.
#include "mpml_kernels.h"
#include "requant.h"

void mpml_fully_connected(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], n_in = p[1], n_out = p[2];
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = in + (size_t)b * n_in;
        int8_t *y = out + (size_t)b * n_out;
        const uint8_t *wb = w;
        uint32_t corr = 0;  // 128 * sum(x), from the first block
        for (int32_t o0 = 0; o0 < n_out; o0 += MPML_OUT_BLOCK) {
            int r = n_out - o0 < MPML_OUT_BLOCK ? n_out - o0 : MPML_OUT_BLOCK;
            mpml_mac_t s;
            for (int j = 0; j < 8; j++) {
                s.acc[j] = 0;
            }
            s.sum = 0;
            s.rows = 1;
            s.stride = 0;
            s.n = n_in;
            wb = mpml_mac(&s, x, wb, r, o0 == 0);
            if (o0 == 0) {
                corr = (uint32_t)s.sum << 7;
            }
            mpml_requant_block(y + o0, s.acc, r, corr, bias + o0, mult + o0, shift + o0, p + 3);
        }
    }
}
