// The feature spec's bands block (docs/features.md "bands"): per channel and
// frame, mean removal, window, the Q15 radix-2 FFT in int32, power of the
// bins, band energies summed over frames in 64 bits, and Log2Q. Every
// rounding step is the doc's: RDP(., 16) after the window, RDP(., 15) on
// each of the four products of a butterfly, RDP(., 1) after each add.
// Products are formed in uint32 (wrapping): for a table mpml writes they
// never overflow (the doc's bounds), and a hostile one cannot make them UB.
#include "mpml_features.h"

#define MUL(a, b) ((int32_t)((uint32_t)(a) * (uint32_t)(b)))
// RoundingDivideByPOT(x, 15) = (x + 2^14 - (x < 0)) >> 15 for |x| < 2^31 - 2^14
#define RDP15(x) ((int32_t)((uint32_t)(x) + 0x4000u - ((uint32_t)(x) >> 31)) >> 15)
// RoundingDivideByPOT(y, 1) = (y + (y >= 0)) >> 1
#define RDP1(y) ((int32_t)((uint32_t)(y) + ((y) >= 0)) >> 1)

// Log2Q(v), v >= 1: 256 p + LOG2_TABLE[the 6 bits below the leading one at bit p].
static const uint8_t log2_table[64] = {
    0, 6, 11, 17, 22, 28, 33, 38, 44, 49, 54, 59, 63, 68, 73, 78,
    82, 87, 92, 96, 100, 105, 109, 113, 118, 122, 126, 130, 134, 138, 142, 146,
    150, 154, 157, 161, 165, 169, 172, 176, 179, 183, 186, 190, 193, 197, 200, 203,
    207, 210, 213, 216, 220, 223, 226, 229, 232, 235, 238, 241, 244, 247, 250, 253,
};

static int32_t log2q(uint64_t v) {
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    uint32_t w = hi ? hi : lo;
    int32_t p = hi ? 32 : 0;  // no CLZ on Cortex-M0 (and no __clzsi2 here): halving steps
    if (w >> 16) { w >>= 16; p += 16; }
    if (w >> 8) { w >>= 8; p += 8; }
    if (w >> 4) { w >>= 4; p += 4; }
    if (w >> 2) { w >>= 2; p += 2; }
    if (w >> 1) { p += 1; }
    int32_t s = p - 6;  // bits s .. s+5 of v (32-bit shifts only: no 64-bit shift helper either)
    uint32_t idx;
    if (s >= 32) {
        idx = hi >> (s - 32);
    } else if (s > 0) {
        idx = (lo >> s) | (hi << (32 - s));
    } else {
        idx = lo << -s;
    }
    return 256 * p + log2_table[idx & 63];
}

// One frame of one channel: x points at its first sample, C apart. The
// result is X[k] = (z[2k], z[2k + 1]) (real, imaginary), k < n: one pointer
// reaches both halves, which leaves Cortex-M0's few registers to the loop.
static void frame_fft(const int16_t *x, int32_t C, int32_t n, int32_t log2n, int remove_mean,
    const uint16_t *win, const int16_t *tw, int32_t *z) {
    int32_t m = 0;
    if (remove_mean) {  // DivRound(sum, n), n = 2^log2n
        int32_t s = 0;
        const int16_t *px = x;
        for (int32_t i = 0; i < n; i++, px += C) {
            s += *px;
        }
        int32_t h = n >> 1;
        m = s >= 0 ? (s + h) >> log2n : -((h - s) >> log2n);
    }
    // window, RDP(., 16) in its overflow-free form (the product may reach
    // 65535 * 32768), stored at the bit-reversed index
    uint32_t r = 0;
    const int16_t *px = x;
    for (int32_t i = 0; i < n; i++, px += C) {
        int32_t v = MUL(*px - m, win[i]);
        uint32_t rem = (uint32_t)v & 0xFFFF;
        uint32_t th = 0x7FFF + ((uint32_t)v >> 31);
        z[2 * r] = (v >> 16) + (rem > th);
        z[2 * r + 1] = 0;
        uint32_t bit = (uint32_t)n >> 1;
        while (r & bit) {
            r ^= bit;
            bit >>= 1;
        }
        r |= bit;
    }
    int32_t *end = z + 2 * n;
    // stage 1: the imaginary parts are 0, so two of the four products are RDP(0, 15) = 0
    int32_t wr = tw[0], wi = tw[1];
    for (int32_t *a = z; a < end; a += 4) {
        int32_t ar = a[0], br = a[2];
        int32_t tr = RDP15(MUL(br, wr)), ti = RDP15(MUL(br, wi));
        a[0] = RDP1(ar + tr);
        a[2] = RDP1(ar - tr);
        a[1] = RDP1(ti);
        a[3] = RDP1(-ti);
    }
    for (int32_t h = 2, step = n >> 1; h < n; h <<= 1, step >>= 1) {
        // twiddle j of this stage is tw[j * n / (2h)]: (wr, wi) pairs n / h int16s apart
        const int16_t *w = tw;
        for (int32_t j = 0; j < h; j++, w += step) {
            wr = w[0];
            wi = w[1];
            for (int32_t *a = z + 2 * j; a < end; a += 4 * h) {
                int32_t *b = a + 2 * h;
                int32_t br = b[0], bi = b[1];
                int32_t tr = RDP15(MUL(br, wr)) - RDP15(MUL(bi, wi));
                int32_t ti = RDP15(MUL(br, wi)) + RDP15(MUL(bi, wr));
                int32_t ar = a[0], ai = a[1];
                a[0] = RDP1(ar + tr);
                b[0] = RDP1(ar - tr);
                a[1] = RDP1(ai + ti);
                b[1] = RDP1(ai - ti);
            }
        }
    }
}

mpml_err_t mpml_fx_bands(const int32_t *p, size_t np, const int16_t *x, size_t nx, const uint16_t *tab,
    size_t ntab, int32_t *work, size_t nwork, int32_t *f, size_t nf) {
    if (np < 8) {
        return "features bands: too few params";
    }
    int32_t L = p[0], C = p[1], k = p[2], n = p[4], log2n = p[5], rm = p[6], nb = p[7];
    if (log2n < 2 || log2n > 10 || n != 1 << log2n || n > L || nb < 1 || nb > 65535) {
        return "features bands: bad fft size or band count";
    }
    mpml_err_t err = mpml_fx_check(p, np, 8, nx, nf, (uint32_t)k * (uint32_t)nb);
    if (err) {
        return err;
    }
    if (ntab < 2 * (size_t)n + 2 * (size_t)nb || nwork < 2 * (size_t)n + 2 * (size_t)nb) {
        return "features bands: table or work buffer too small";
    }
    const uint16_t *win = tab;
    const int16_t *tw = (const int16_t *)(tab + n);
    const uint16_t *bands = tab + 2 * n;
    for (int32_t b = 0; b < nb; b++) {
        if (bands[2 * b] >= bands[2 * b + 1] || bands[2 * b + 1] > (n >> 1) + 1) {
            return "features bands: band outside the FFT's bins";
        }
    }
    int32_t *z = work;
    uint32_t *energy = (uint32_t *)(work + 2 * n);  // (low, high) word pairs
    int32_t frames = L >> log2n;
    const int32_t *ch = p + 8;
    int32_t *y = f + p[3];
    for (int32_t j = 0; j < k; j++) {
        for (int32_t b = 0; b < 2 * nb; b++) {
            energy[b] = 0;
        }
        for (int32_t fr = 0; fr < frames; fr++) {
            frame_fft(x + ((size_t)fr * (size_t)n) * (size_t)C + ch[j], C, n, log2n, rm, win, tw, z);
            for (int32_t b = 0; b < nb; b++) {
                uint64_t e = energy[2 * b] | ((uint64_t)energy[2 * b + 1] << 32);
                for (int32_t i = bands[2 * b]; i < bands[2 * b + 1]; i++) {
                    e += (uint32_t)MUL(z[2 * i], z[2 * i]) + (uint32_t)MUL(z[2 * i + 1], z[2 * i + 1]);  // < 2^31
                }
                energy[2 * b] = (uint32_t)e;
                energy[2 * b + 1] = (uint32_t)(e >> 32);
            }
        }
        for (int32_t b = 0; b < nb; b++) {
            *y++ = log2q((energy[2 * b] | ((uint64_t)energy[2 * b + 1] << 32)) + 1);
        }
    }
    return NULL;
}
