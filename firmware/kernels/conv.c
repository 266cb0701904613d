// CONV_2D with offset-binary weights blocked by 8 output channels.
//
// For every output pixel and block, the taps are handed to the MAC engine
// (mac.c) as a list of runs of contiguous input bytes, one engine call per
// block: an interior pixel with dil_w == 1 is k_h runs of k_w * in_c bytes.
// At the borders, padded taps read in_zp (docs/ops.md): they are runs from a
// small buffer filled with in_zp, so borders use the same engine and the same
// sums as the interior. A list that fills up is run and the block continues
// from its accumulators, so no geometry is too big for the fixed list.
#include "mpml_kernels.h"

#define ZBUF 64
#define MAX_RUNS 16

typedef struct {
    mpml_mac_t s;
    int r, want_sum;
    const int8_t *zbuf;
    mpml_run_t *next;
    mpml_run_t runs[MAX_RUNS];
} feed_t;

// Run the runs listed so far; the block goes on from its accumulators.
static void flush(feed_t *f) {
    if (f->next == f->runs) {
        return;
    }
    f->s.runs = f->runs;
    f->s.runs_end = f->next;
    mpml_mac(&f->s, f->r, f->want_sum);
    f->s.init = f->s.acc;
    f->next = f->runs;
}

static void feed(feed_t *f, const int8_t *x, int32_t n) {
    if (n <= 0) {
        return;
    }
    if (f->next == f->runs + MAX_RUNS) {
        flush(f);
    }
    f->next->end = x + n;
    f->next->n = n;
    f->next++;
}

static void feed_zp(feed_t *f, int32_t n) {
    while (n > 0) {
        int32_t k = n < ZBUF ? n : ZBUF;
        feed(f, f->zbuf, k);
        n -= k;
    }
}

// The runs of one output pixel whose window is not inside the image (or
// dil_w > 1): row by row, padded taps from the in_zp buffer.
static void feed_border(feed_t *f, const int8_t *img, const int32_t *p, int64_t iy0, int64_t ix0) {
    int32_t in_h = p[1], in_w = p[2], in_c = p[3], k_h = p[7], k_w = p[8], d_h = p[11], d_w = p[12];
    size_t row = (size_t)in_w * in_c;
    int64_t iy = iy0 - d_h;
    for (int32_t fy = 0; fy < k_h; fy++) {
        iy += d_h;
        if (iy < 0 || iy >= in_h) {
            feed_zp(f, k_w * in_c);
            continue;
        }
        const int8_t *xr = img + (size_t)iy * row;
        if (d_w == 1) {
            // Valid taps are one contiguous range [lo_fx, hi_fx).
            int64_t lo_fx = ix0 < 0 ? -ix0 : 0;
            int64_t hi_fx = in_w - ix0;
            if (lo_fx > k_w) {
                lo_fx = k_w;
            }
            if (hi_fx > k_w) {
                hi_fx = k_w;
            }
            if (hi_fx < lo_fx) {
                hi_fx = lo_fx;
            }
            feed_zp(f, (int32_t)lo_fx * in_c);
            if (hi_fx > lo_fx) {
                feed(f, xr + (size_t)(ix0 + lo_fx) * in_c, (int32_t)(hi_fx - lo_fx) * in_c);
            }
            feed_zp(f, (k_w - (int32_t)hi_fx) * in_c);
        } else {
            int64_t ix = ix0;
            for (int32_t fx = 0; fx < k_w; fx++, ix += d_w) {
                if (ix < 0 || ix >= in_w) {
                    feed_zp(f, in_c);
                } else {
                    feed(f, xr + (size_t)ix * in_c, in_c);
                }
            }
        }
    }
}

void mpml_conv_2d(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out) {
    int32_t batches = p[0], in_h = p[1], in_w = p[2], in_c = p[3];
    int32_t out_h = p[4], out_w = p[5], out_c = p[6], k_h = p[7], k_w = p[8];
    int32_t s_h = p[9], s_w = p[10], d_h = p[11], d_w = p[12];
    int64_t pad_t = p[13], pad_l = p[14];
    int8_t in_zp = (int8_t)p[15];
    size_t row = (size_t)in_w * in_c;
    int32_t run_n = k_w * in_c;               // interior run: one kernel row
    size_t run_stride = (size_t)d_h * row;
    int8_t zbuf[ZBUF];
    for (int i = 0; i < ZBUF; i++) {
        zbuf[i] = in_zp;
    }
    mpml_rq_t q;
    q.out_offset = p[16];
    q.act_min = p[17];
    q.act_max = p[18];
    q.fast = mpml_requant_fast(mult, shift, out_c);
    feed_t f;
    f.zbuf = zbuf;
    int8_t *y = out;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *img = in + (size_t)b * in_h * row;
        // Geometry in 64 bits (pads are any int32), by additions only:
        // armv6m has no long multiply.
        int64_t iy0 = -pad_t;
        for (int32_t oy = 0; oy < out_h; oy++, iy0 += s_h) {
            int rows_inside = iy0 >= 0 && iy0 + (int64_t)((k_h - 1) * d_h) < in_h;
            int64_t ix0 = -pad_l;
            for (int32_t ox = 0; ox < out_w; ox++, y += out_c, ix0 += s_w) {
                int inside = rows_inside && d_w == 1 && ix0 >= 0 && ix0 + k_w - 1 < in_w;
                const int8_t *x0 = inside ? img + (size_t)iy0 * row + (size_t)ix0 * in_c : NULL;
                f.s.w = w;
                f.s.sum = 0;
                for (int32_t o0 = 0; o0 < out_c; o0 += MPML_OUT_BLOCK) {
                    f.r = out_c - o0 < MPML_OUT_BLOCK ? out_c - o0 : MPML_OUT_BLOCK;
                    f.want_sum = o0 == 0;  // sum(x) once per pixel
                    f.s.init = bias + o0;
                    f.next = f.runs;
                    if (inside) {
                        const int8_t *x = x0;
                        for (int32_t fy = 0; fy < k_h; fy++, x += run_stride) {
                            feed(&f, x, run_n);
                        }
                    } else {
                        feed_border(&f, img, p, iy0, ix0);
                    }
                    flush(&f);  // leaves f.s.w at the next block's weights
                    if (o0 == 0) {
                        q.neg_corr = (int32_t)(0u - ((uint32_t)f.s.sum << 7));
                    }
                    q.mult = mult + o0;
                    q.shift = shift + o0;
                    mpml_requant_block(y + o0, f.s.acc, f.r, &q);
                }
            }
        }
    }
}
