// CONV_2D with offset-binary weights blocked by 8 output channels.
//
// For every output pixel, the taps are listed once as runs of contiguous
// input bytes, and each block of 8 output channels is one call of the MAC
// engine (mac.c) over that list: an interior pixel with dil_w == 1 is k_h
// runs of k_w * in_c bytes. At the borders, padded taps read in_zp
// (docs/ops.md): they are runs from a small buffer filled with in_zp, so
// borders use the same engine and the same sums as the interior. A pixel
// whose runs do not fit the list (wide dilated windows, long padding) is
// listed again for each block and the list is run whenever it fills up.
#include "mpml_kernels.h"

#define ZBUF 64
#define MAX_RUNS 16

typedef struct {
    mpml_mac_t s;
    mpml_rq_t q;
    const uint8_t *w;
    const int32_t *bias, *mult, *shift;
    int32_t out_c;
    int r, want_sum;   // the block being streamed
    int stream;        // a full list is run and the block goes on
    int overflow;      // a run did not fit (not streaming)
    mpml_run_t *next;
    mpml_run_t runs[MAX_RUNS + 1];  // + the end marker
    int8_t zbuf[ZBUF];
} conv_t;

// Run the runs listed so far; the block goes on from its accumulators.
static void flush(conv_t *c) {
    c->next->n = 0;
    c->s.runs = c->runs;
    mpml_mac(&c->s, c->r, c->want_sum);
    c->s.init = c->s.acc;
    c->next = c->runs;
}

static inline __attribute__((always_inline)) void feed(conv_t *c, const int8_t *x, int32_t n) {
    if (n <= 0) {
        return;
    }
    if (c->next == c->runs + MAX_RUNS) {
        if (!c->stream) {
            c->overflow = 1;
            return;
        }
        flush(c);
    }
    c->next->end = x + n;
    c->next->n = n;
    c->next++;
}

static void feed_zp(conv_t *c, int32_t n) {
    while (n > 0) {
        int32_t k = n < ZBUF ? n : ZBUF;
        feed(c, c->zbuf, k);
        n -= k;
    }
}

// The runs of one output pixel whose window is not inside the image (or
// dil_w > 1): row by row, padded taps from the in_zp buffer.
__attribute__((noinline)) static void feed_border(conv_t *c, const int8_t *img, const int32_t *p,
    int64_t iy0, int64_t ix0) {
    int32_t in_h = p[1], in_w = p[2], in_c = p[3], k_h = p[7], k_w = p[8], d_h = p[11], d_w = p[12];
    size_t row = (size_t)in_w * in_c;
    // With dil_w == 1 the valid taps of every row are one contiguous range
    // [lo_fx, hi_fx), the same for all rows.
    int32_t lo_fx = 0, hi_fx = 0;
    if (d_w == 1) {
        int64_t lo = ix0 < 0 ? -ix0 : 0, hi = in_w - ix0;
        lo_fx = lo > k_w ? k_w : (int32_t)lo;
        hi_fx = hi > k_w ? k_w : hi < lo_fx ? lo_fx : (int32_t)hi;
    }
    int64_t iy = iy0 - d_h;
    for (int32_t fy = 0; fy < k_h; fy++) {
        iy += d_h;
        if (iy < 0 || iy >= in_h) {
            feed_zp(c, k_w * in_c);
            continue;
        }
        const int8_t *xr = img + (size_t)iy * row;
        if (d_w == 1) {
            feed_zp(c, lo_fx * in_c);
            if (hi_fx > lo_fx) {
                feed(c, xr + (size_t)(ix0 + lo_fx) * in_c, (hi_fx - lo_fx) * in_c);
            }
            feed_zp(c, (k_w - hi_fx) * in_c);
        } else {
            int64_t ix = ix0;
            for (int32_t fx = 0; fx < k_w; fx++, ix += d_w) {
                if (ix < 0 || ix >= in_w) {
                    feed_zp(c, in_c);
                } else {
                    feed(c, xr + (size_t)ix * in_c, in_c);
                }
            }
        }
    }
}

// Every block of a pixel whose runs are all listed.
static void pixel(conv_t *c, int8_t *y) {
    c->next->n = 0;
    c->s.runs = c->runs;
    c->s.init = c->bias;
    c->s.w = c->w;
    c->q.mult = c->mult;
    c->q.shift = c->shift;
    mpml_mac_requant(&c->s, &c->q, y, c->out_c);
}

// Every block of a pixel with more runs than the list holds: listed again
// for each block, the list run whenever it fills up.
__attribute__((noinline)) static void pixel_streamed(conv_t *c, int8_t *y, const int8_t *img,
    const int32_t *p, int64_t iy0, int64_t ix0) {
    c->s.w = c->w;
    c->s.sum = 0;
    c->q.mult = c->mult;
    c->q.shift = c->shift;
    c->stream = 1;
    for (int32_t o0 = 0; o0 < c->out_c; o0 += MPML_OUT_BLOCK) {
        c->r = c->out_c - o0 < MPML_OUT_BLOCK ? c->out_c - o0 : MPML_OUT_BLOCK;
        c->want_sum = o0 == 0;  // sum(x) once per pixel
        c->s.init = c->bias + o0;
        c->next = c->runs;
        feed_border(c, img, p, iy0, ix0);
        flush(c);
        if (o0 == 0) {
            c->q.neg_corr = (int32_t)(0u - ((uint32_t)c->s.sum << 7));
        }
        mpml_requant_block(y + o0, c->s.acc, c->r, &c->q);
        c->q.mult += MPML_OUT_BLOCK;
        c->q.shift += MPML_OUT_BLOCK;
    }
    c->stream = 0;
}

void mpml_conv_2d(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], in_h = p[1], in_w = p[2], in_c = p[3];
    int32_t out_h = p[4], out_w = p[5], out_c = p[6], k_h = p[7], k_w = p[8];
    int32_t s_h = p[9], s_w = p[10], d_h = p[11], d_w = p[12];
    int64_t pad_t = p[13], pad_l = p[14];
    size_t row = (size_t)in_w * in_c;
    int32_t run_n = k_w * in_c;               // interior run: one kernel row
    size_t run_stride = (size_t)d_h * row;
    conv_t c;
    for (int i = 0; i < ZBUF; i++) {
        c.zbuf[i] = (int8_t)p[15];             // in_zp
    }
    c.q.out_offset = p[16];
    c.q.act_min = p[17];
    c.q.act_max = p[18];
    c.q.fast = mpml_requant_fast(mult, shift, out_c);
    c.w = w;
    c.bias = bias;
    c.mult = mult;
    c.shift = shift;
    c.out_c = out_c;
    c.stream = 0;
    // Interior pixels list k_h runs: the list must hold them.
    int interior_ok = d_w == 1 && k_h <= MAX_RUNS;
    int8_t *y = out;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *img = in + (size_t)b * in_h * row;
        // Geometry in 64 bits (pads are any int32), by additions only:
        // armv6m has no long multiply.
        int64_t iy0 = -pad_t;
        for (int32_t oy = 0; oy < out_h; oy++, iy0 += s_h) {
            int rows_inside = interior_ok && iy0 >= 0 && iy0 + (int64_t)((k_h - 1) * d_h) < in_h;
            int64_t ix0 = -pad_l;
            for (int32_t ox = 0; ox < out_w; ox++, y += out_c, ix0 += s_w) {
                c.next = c.runs;
                if (rows_inside && ix0 >= 0 && ix0 + k_w - 1 < in_w) {
                    const int8_t *x = img + (size_t)iy0 * row + (size_t)ix0 * in_c;
                    for (int32_t fy = 0; fy < k_h; fy++, x += run_stride) {
                        c.next->end = x + run_n;
                        c.next->n = run_n;
                        c.next++;
                    }
                } else {
                    c.overflow = 0;
                    feed_border(&c, img, p, iy0, ix0);
                    if (c.overflow) {
                        pixel_streamed(&c, y, img, p, iy0, ix0);
                        continue;
                    }
                }
                pixel(&c, y);
            }
        }
    }
}
