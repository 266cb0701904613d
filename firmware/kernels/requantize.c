// REQUANTIZE: int8 to int8 with another scale and zero point.
#include "mpml_kernels.h"
#include "requant.h"

void mpml_requantize(const int32_t *p, const int8_t *in, int8_t *out) {
    int32_t n = p[0], in_zp = p[1], out_zp = p[2], m = p[3], sh = p[4];
    for (int32_t i = 0; i < n; i++) {
        int32_t x = (int32_t)((uint32_t)in[i] - (uint32_t)in_zp);
        out[i] = mpml_requant8(x, m, sh, out_zp, -128, 127);
    }
}
