// LOGISTIC and TANH: y = table[x + 128] (the host runs TFLM's integer
// algorithm on all 256 inputs); RESHAPE: a copy that tolerates aliasing.
#include "mpml_kernels.h"

void mpml_lut(const int32_t *p, const uint8_t *in, const uint8_t *table, uint8_t *out) {
    for (int32_t i = 0; i < p[0]; i++) {
        out[i] = table[in[i] ^ 0x80];
    }
}

void mpml_reshape(const int32_t *p, const uint8_t *in, uint8_t *out) {
    size_t n = (size_t)p[0];
    if (out == in) {
        return;
    }
    if (out < in || out >= in + n) {
        for (size_t i = 0; i < n; i++) {
            out[i] = in[i];
        }
    } else {
        for (size_t i = n; i > 0; i--) {
            out[i - 1] = in[i - 1];
        }
    }
}
