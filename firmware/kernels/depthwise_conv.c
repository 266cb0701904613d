// DEPTHWISE_CONV_2D: signed int8 weights [k_h, k_w, out_c]; output channel
// o = c * depth_mult + m reads input channel c; padded taps read in_zp.
#include "mpml_kernels.h"
#include "requant.h"

void mpml_depthwise_conv_2d(const int32_t *p, const int8_t *in, const int8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], in_h = p[1], in_w = p[2], in_c = p[3];
    int32_t out_h = p[4], out_w = p[5], out_c = p[6], k_h = p[7], k_w = p[8];
    int32_t s_h = p[9], s_w = p[10], d_h = p[11], d_w = p[12];
    int64_t pad_t = p[13], pad_l = p[14];
    int32_t depth_mult = p[15];
    int32_t in_zp = (int8_t)p[16];
    int32_t out_offset = p[17], lo = p[18], hi = p[19];
    size_t row = (size_t)in_w * in_c;
    int8_t *y = out;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *img = in + (size_t)b * in_h * row;
        int64_t iy0 = -pad_t;  // 64-bit geometry by additions (no long multiply on armv6m)
        for (int32_t oy = 0; oy < out_h; oy++, iy0 += s_h) {
            int64_t ix0 = -pad_l;
            for (int32_t ox = 0; ox < out_w; ox++, y += out_c, ix0 += s_w) {
                for (int32_t c = 0, o = 0; c < in_c; c++) {
                    for (int32_t m = 0; m < depth_mult; m++, o++) {
                        uint32_t acc = (uint32_t)bias[o];
                        const int8_t *wt = w + o;
                        int64_t iy = iy0;
                        for (int32_t fy = 0; fy < k_h; fy++, iy += d_h) {
                            int row_in = iy >= 0 && iy < in_h;
                            int64_t ix = ix0;
                            for (int32_t fx = 0; fx < k_w; fx++, wt += out_c, ix += d_w) {
                                int32_t x = in_zp;
                                if (row_in && ix >= 0 && ix < in_w) {
                                    x = img[(size_t)iy * row + (size_t)ix * in_c + c];
                                }
                                acc += (uint32_t)(x * *wt);
                            }
                        }
                        y[o] = mpml_requant8((int32_t)acc, mult[o], shift[o], out_offset, lo, hi);
                    }
                }
            }
        }
    }
}
