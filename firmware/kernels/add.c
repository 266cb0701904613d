// ADD: elementwise, both inputs rescaled to a common scale, then requantized.
#include "mpml_kernels.h"
#include "requant.h"

void mpml_add(const int32_t *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    int32_t n = p[0], off1 = p[1], off2 = p[2], left = p[3];
    int32_t m1 = p[4], s1 = p[5], m2 = p[6], s2 = p[7], mo = p[8], so = p[9];
    int32_t out_offset = p[10], lo = p[11], hi = p[12];
    left = left < 0 ? 0 : (left > 31 ? 31 : left);  // defined for any blob
    for (int32_t i = 0; i < n; i++) {
        int32_t a = (int32_t)(((uint32_t)in1[i] + (uint32_t)off1) << left);
        int32_t b = (int32_t)(((uint32_t)in2[i] + (uint32_t)off2) << left);
        int32_t s = (int32_t)((uint32_t)mpml_multiply_by_quantized_multiplier(a, m1, s1)
            + (uint32_t)mpml_multiply_by_quantized_multiplier(b, m2, s2));
        out[i] = mpml_requant8(s, mo, so, out_offset, lo, hi);
    }
}
