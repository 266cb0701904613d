// AVERAGE_POOL_2D and MAX_POOL_2D over windows clipped to the input.
#include "mpml_kernels.h"

// Unsigned division. Cortex-M0 has no divide instruction and a dynruntime
// module has no __aeabi_uidiv: shift and subtract, once per output value.
static uint32_t udiv32(uint32_t n, uint32_t d) {
    #if defined(__ARM_ARCH_6M__)
    uint32_t q = 0, r = 0;
    for (int i = 31; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= (uint32_t)1 << i;
        }
    }
    return q;
    #else
    return n / d;
    #endif
}

static int32_t clip(int64_t v, int32_t hi) {
    return v < 0 ? 0 : (v > hi ? hi : (int32_t)v);
}

void mpml_pool(int code, const int32_t *p, const int8_t *in, int8_t *out) {
    int32_t batches = p[0], in_h = p[1], in_w = p[2], ch = p[3];
    int32_t out_h = p[4], out_w = p[5], f_h = p[6], f_w = p[7];
    int32_t s_h = p[8], s_w = p[9];
    int64_t pad_t = p[10], pad_l = p[11];
    int32_t lo = p[12], hi = p[13];
    size_t row = (size_t)in_w * ch;
    int8_t *y = out;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *img = in + (size_t)b * in_h * row;
        int64_t y0 = -pad_t;  // 64-bit geometry by additions (no long multiply on armv6m)
        for (int32_t oy = 0; oy < out_h; oy++, y0 += s_h) {
            int32_t ya = clip(y0, in_h), yb = clip(y0 + f_h, in_h);
            int64_t x0 = -pad_l;
            for (int32_t ox = 0; ox < out_w; ox++, y += ch, x0 += s_w) {
                int32_t xa = clip(x0, in_w), xb = clip(x0 + f_w, in_w);
                for (int32_t c = 0; c < ch; c++) {
                    uint32_t n = 0, s = 0;
                    int32_t m = -128;
                    for (int32_t iy = ya; iy < yb; iy++) {
                        const int8_t *px = img + (size_t)iy * row + (size_t)xa * ch + c;
                        for (int32_t ix = xa; ix < xb; ix++, px += ch) {
                            int32_t v = *px;
                            s += (uint32_t)v;
                            if (v > m) {
                                m = v;
                            }
                            n++;
                        }
                    }
                    int32_t v;
                    if (code == MPML_MAX_POOL_2D) {
                        v = m;
                    } else if (n == 0) {
                        v = 0;  // a window wholly in the padding
                    } else if ((int32_t)s > 0) {
                        v = (int32_t)udiv32(s + n / 2, n);
                    } else {
                        // (s - n/2) / n truncating = -((-s + n/2) / n); -s as uint32 covers INT32_MIN
                        v = -(int32_t)udiv32((uint32_t)0 - s + n / 2, n);
                    }
                    y[c] = mpml_clamp8(v, lo, hi);
                }
            }
        }
    }
}
