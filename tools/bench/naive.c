// Plain-C kernels for contrast in kernel_cycles.py: FULLY_CONNECTED and
// CONV_2D written as TFLM's reference kernels are (one output value at a
// time, every weight addressed by index), on the same blob layout and with
// the same rounding, so their outputs must equal the optimized kernels'.
#include "mpml_kernels.h"
#include "requant.h"

static int32_t weight(const uint8_t *w, int32_t n_out, int32_t K, int32_t o, int32_t k) {
    int32_t o0 = o - o % MPML_OUT_BLOCK;
    int32_t r = n_out - o0 < MPML_OUT_BLOCK ? n_out - o0 : MPML_OUT_BLOCK;
    return (int32_t)w[o0 * K + k * r + (o - o0)] - MPML_WEIGHT_OFFSET;
}

void naive_fully_connected(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], n_in = p[1], n_out = p[2];
    for (int32_t b = 0; b < batches; b++) {
        for (int32_t o = 0; o < n_out; o++) {
            int32_t acc = bias[o];
            for (int32_t k = 0; k < n_in; k++) {
                acc += in[b * n_in + k] * weight(w, n_out, n_in, o, k);
            }
            out[b * n_out + o] = mpml_requant8(acc, mult[o], shift[o], p[3], p[4], p[5]);
        }
    }
}

void naive_conv_2d(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], in_h = p[1], in_w = p[2], in_c = p[3];
    int32_t out_h = p[4], out_w = p[5], out_c = p[6], k_h = p[7], k_w = p[8];
    int32_t K = k_h * k_w * in_c;
    for (int32_t b = 0; b < batches; b++) {
        for (int32_t oy = 0; oy < out_h; oy++) {
            for (int32_t ox = 0; ox < out_w; ox++) {
                for (int32_t o = 0; o < out_c; o++) {
                    int32_t acc = bias[o];
                    for (int32_t fy = 0; fy < k_h; fy++) {
                        int32_t iy = oy * p[9] - p[13] + fy * p[11];
                        for (int32_t fx = 0; fx < k_w; fx++) {
                            int32_t ix = ox * p[10] - p[14] + fx * p[12];
                            int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                            for (int32_t c = 0; c < in_c; c++) {
                                int32_t x = inside ? in[((b * in_h + iy) * in_w + ix) * in_c + c] : (int8_t)p[15];
                                acc += x * weight(w, out_c, K, o, (fy * k_w + fx) * in_c + c);
                            }
                        }
                    }
                    out[((b * out_h + oy) * out_w + ox) * out_c + o] =
                        mpml_requant8(acc, mult[o], shift[o], p[16], p[17], p[18]);
                }
            }
        }
    }
}
