// The feature spec's raw and stats blocks and the int8 quantization
// (docs/features.md), with the checks every entry point makes first.
// Cortex-M0 has neither divide nor long multiply, and a dynruntime module
// links no runtime: divisions are shift-and-subtract (a few per channel,
// one per decimated raw value) and 32x32 -> 64 products are four 16x16 ones.
#include "mpml_features.h"
#include "requant.h"

uint32_t mpml_fx_udiv(uint32_t n, uint32_t d) {
    #if defined(__ARM_ARCH_6M__)
    if (n < d) {
        return 0;
    }
    uint32_t q = 0, bit = 1;
    while (d <= (n >> 1)) {  // the divisor under n's top bit
        d <<= 1;
        bit <<= 1;
    }
    for (;;) {
        if (n >= d) {
            n -= d;
            q |= bit;
        }
        if (bit == 1) {
            return q;
        }
        d >>= 1;
        bit >>= 1;
    }
    #else
    return n / d;
    #endif
}

int32_t mpml_fx_div_round(int32_t a, uint32_t b) {
    if (a >= 0) {
        return (int32_t)mpml_fx_udiv((uint32_t)a + (b >> 1), b);
    }
    return -(int32_t)mpml_fx_udiv((uint32_t)0 - (uint32_t)a + (b >> 1), b);
}

// DivRound(16 u, L) (negated when neg) for u < 2^31 without forming 16 u:
// u = q L + r, so 16 u + L/2 = 16 q L + (16 r + L/2).
static int32_t div16_round(uint32_t u, int neg, uint32_t L) {
    uint32_t q = mpml_fx_udiv(u, L);
    uint32_t r = u - q * L;
    int32_t v = (int32_t)((q << 4) + mpml_fx_udiv((r << 4) + (L >> 1), L));
    return neg ? -v : v;
}

static uint64_t umul32(uint32_t a, uint32_t b) {
    #if defined(__ARM_ARCH_6M__)
    uint32_t al = a & 0xFFFF, ah = a >> 16, bl = b & 0xFFFF, bh = b >> 16;
    uint64_t mid = (uint64_t)(al * bh) + (uint64_t)(ah * bl);
    return ((uint64_t)(ah * bh) << 32) + (mid << 16) + (uint64_t)(al * bl);
    #else
    return (uint64_t)a * b;
    #endif
}

// floor(sqrt(v)), v < 2^62: the digit-by-digit method (docs/features.md ISqrt).
static uint32_t isqrt64(uint64_t v) {
    uint64_t r = 0, bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

mpml_err_t mpml_fx_check(const int32_t *p, size_t np, size_t ch_at, size_t nx, size_t nf, uint32_t n_out) {
    if (np < ch_at) {
        return "features: too few params";
    }
    int32_t L = p[0], C = p[1], k = p[2], off = p[3];
    if (L < 1 || L > 32768 || C < 1 || C > 255 || k < 1 || k > 255 || off < 0 || off > 65535) {
        return "features: bad window length, channels or offset";
    }
    if (np < ch_at + (size_t)k) {
        return "features: too few params for the channels";
    }
    for (int32_t j = 0; j < k; j++) {
        if (p[ch_at + j] < 0 || p[ch_at + j] >= C) {
            return "features: channel outside the window";
        }
    }
    if (nx < (size_t)L * (size_t)C) {
        return "features: window shorter than length x channels";
    }
    if (nf < (size_t)off + n_out) {
        return "features: feature buffer too small";
    }
    return NULL;
}

mpml_err_t mpml_fx_raw(const int32_t *p, size_t np, const int16_t *x, size_t nx, int32_t *f, size_t nf) {
    if (np < 5 || p[4] < 1 || p[4] > p[0]) {
        return "features raw: bad decimation";
    }
    int32_t L = p[0], C = p[1], k = p[2], d = p[4];
    int32_t lo = (int32_t)mpml_fx_udiv((uint32_t)L, (uint32_t)d);
    mpml_err_t err = mpml_fx_check(p, np, 5, nx, nf, (uint32_t)lo * (uint32_t)k);
    if (err) {
        return err;
    }
    const int32_t *ch = p + 5;
    int32_t *y = f + p[3];
    int32_t sh = -1;  // a power-of-two decimation divides by a shift, not a division loop
    if ((d & (d - 1)) == 0) {
        for (sh = 0; (1 << sh) < d; sh++) {
        }
    }
    uint32_t half = (uint32_t)d >> 1;
    for (int32_t t = 0; t < lo; t++) {
        const int16_t *row = x + (size_t)t * (size_t)d * (size_t)C;
        for (int32_t j = 0; j < k; j++) {
            const int16_t *s = row + ch[j];
            if (d == 1) {
                *y++ = *s;
                continue;
            }
            int32_t sum = 0;  // |sum| <= 65535 * 32768 < 2^31
            for (int32_t i = 0; i < d; i++, s += C) {
                sum += *s;
            }
            if (sh < 0) {
                *y++ = mpml_fx_div_round(sum, (uint32_t)d);
            } else if (sum >= 0) {  // DivRound(sum, 2^sh)
                *y++ = (int32_t)(((uint32_t)sum + half) >> sh);
            } else {
                *y++ = -(int32_t)(((uint32_t)0 - (uint32_t)sum + half) >> sh);
            }
        }
    }
    return NULL;
}

mpml_err_t mpml_fx_stats(const int32_t *p, size_t np, const int16_t *x, size_t nx, int32_t *f, size_t nf) {
    if (np < 5 || p[4] < 1 || p[4] > 255 || np < 5 + (size_t)p[4]) {
        return "features stats: bad number of stats";
    }
    int32_t L = p[0], C = p[1], k = p[2], ns = p[4];
    const int32_t *codes = p + 5;
    int need_roots = 0, need_zc = 0;
    for (int32_t s = 0; s < ns; s++) {
        if (codes[s] < 1 || codes[s] > 7) {
            return "features stats: unknown stat code";
        }
        need_roots |= codes[s] == 2 || codes[s] == 5;
        need_zc |= codes[s] == 6;
    }
    mpml_err_t err = mpml_fx_check(p, np, 5 + (size_t)ns, nx, nf, (uint32_t)k * (uint32_t)ns);
    if (err) {
        return err;
    }
    const int32_t *ch = p + 5 + ns;
    int32_t *y = f + p[3];
    for (int32_t j = 0; j < k; j++) {
        const int16_t *col = x + ch[j];
        int32_t sum = 0, mn = 32767, mx = -32768;
        uint64_t q = 0;
        const int16_t *s = col;
        for (int32_t i = 0; i < L; i++, s += C) {
            int32_t v = *s;
            sum += v;
            q += (uint32_t)(v * v);
            if (v < mn) {
                mn = v;
            }
            if (v > mx) {
                mx = v;
            }
        }
        uint32_t usum = sum < 0 ? (uint32_t)0 - (uint32_t)sum : (uint32_t)sum;
        int32_t mean = div16_round(usum, sum < 0, (uint32_t)L);
        int32_t sd = 0, rms = 0, zc = 0;
        if (need_roots) {
            // L Q < 2^60 and S^2 <= 2^60: L < 2^16 and Q < 2^45, so L Q from two products
            uint64_t lq = umul32((uint32_t)L, (uint32_t)q) + (umul32((uint32_t)L, (uint32_t)(q >> 32)) << 32);
            rms = div16_round(isqrt64(lq), 0, (uint32_t)L);
            sd = div16_round(isqrt64(lq - umul32(usum, usum)), 0, (uint32_t)L);
        }
        if (need_zc) {
            s = col;
            int prev = *s * 16 >= mean;
            for (int32_t i = 1; i < L; i++) {
                s += C;
                int cur = *s * 16 >= mean;
                zc += cur != prev;
                prev = cur;
            }
        }
        for (int32_t t = 0; t < ns; t++) {
            int32_t v;
            switch (codes[t]) {
                case 1: v = mean; break;
                case 2: v = sd; break;
                case 3: v = mn; break;
                case 4: v = mx; break;
                case 5: v = rms; break;
                case 6: v = zc; break;
                default: v = mx - mn; break;
            }
            *y++ = v;
        }
    }
    return NULL;
}

mpml_err_t mpml_fx_quant(const int32_t *p, size_t np, const int32_t *f, size_t nf, const int32_t *slots,
    size_t nslots, const uint16_t *sidx, size_t nsidx, int8_t *out, size_t nout) {
    if (np < 2) {
        return "features quant: too few params";
    }
    int32_t n = p[0], zp = p[1];
    if (n < 0 || (size_t)n > nf || (size_t)n > nsidx || (size_t)n > nout) {
        return "features quant: buffers shorter than the features";
    }
    for (int32_t i = 0; i < n; i++) {
        if (3 * (size_t)sidx[i] + 3 > nslots) {
            return "features quant: slot index outside the slots";
        }
    }
    for (int32_t i = 0; i < n; i++) {
        const int32_t *q = slots + 3 * (size_t)sidx[i];
        int32_t a = (int32_t)((uint32_t)f[i] - (uint32_t)q[0]);
        int32_t v = mpml_multiply_by_quantized_multiplier(a, q[1], q[2]);
        out[i] = mpml_clamp8((int32_t)((uint32_t)v + (uint32_t)zp), -128, 127);
    }
    return NULL;
}
