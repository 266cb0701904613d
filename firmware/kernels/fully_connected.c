// FULLY_CONNECTED: y[b,o] = clamp(MBQM(bias'[o] + sum_i x[b,i] * w[o,i]) + out_offset)
// with offset-binary blocked weights: sum x*w = sum x*u - 128 * sum x.
#include "mpml_kernels.h"
#include "requant.h"

void mpml_fully_connected(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], n_in = p[1], n_out = p[2];
    mpml_rq_t q;
    q.out_offset = p[3];
    q.act_min = p[4];
    q.act_max = p[5];
    q.fast = mpml_requant_fast(mult, shift, n_out);
    for (int32_t b = 0; b < batches; b++) {
        // One run: the whole input row.
        mpml_run_t run = {in + (size_t)b * n_in + n_in, n_in};
        int8_t *y = out + (size_t)b * n_out;
        mpml_mac_t s;
        s.w = w;
        s.sum = 0;
        s.runs = &run;
        s.runs_end = &run + 1;
        for (int32_t o0 = 0; o0 < n_out; o0 += MPML_OUT_BLOCK) {
            int r = n_out - o0 < MPML_OUT_BLOCK ? n_out - o0 : MPML_OUT_BLOCK;
            s.init = bias + o0;
            // The first block also sums x, for the -128 * sum(x) of every block.
            mpml_mac(&s, r, o0 == 0);
            if (o0 == 0) {
                q.neg_corr = (int32_t)(0u - ((uint32_t)s.sum << 7));
            }
            q.mult = mult + o0;
            q.shift = shift + o0;
            mpml_requant_block(y + o0, s.acc, r, &q);
        }
    }
}
