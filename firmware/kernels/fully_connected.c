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
        mpml_run_t runs[2] = {{in + (size_t)b * n_in + n_in, n_in}, {NULL, 0}};
        mpml_mac_t s;
        s.runs = runs;
        s.init = bias;
        s.w = w;
        q.mult = mult;
        q.shift = shift;
        mpml_mac_requant(&s, &q, out + (size_t)b * n_out, n_out);
    }
}
