// SOFTMAX: TFLM's integer algorithm, with the per-difference exponentials
// precomputed by the host into two int32 tables indexed by d = max - x.
#include "mpml_kernels.h"
#include "requant.h"

// RoundingHalfSum (gemmlowp), in 64 bits with C division.
static int32_t rounding_half_sum(int32_t a, int32_t b) {
    int64_t s = (int64_t)a + b;
    s += s >= 0 ? 1 : -1;
    return (int32_t)(s >= 0 ? s >> 1 : -((-s) >> 1));
}

// SaturatingRoundingMultiplyByPOT<n> for n > 0: v * 2^n saturated.
static int32_t saturating_shift_left(int32_t v, int n) {
    int32_t threshold = (int32_t)(((uint32_t)1 << (31 - n)) - 1);
    if (v > threshold) {
        return INT32_MAX;
    }
    if (v < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)v << n);
}

static int count_leading_zeros(uint32_t x) {
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

// one_over_one_plus_x_for_x_in_0_1 (gemmlowp), raw int32 values.
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
    int32_t half = rounding_half_sum(a, INT32_MAX);
    int32_t x = (int32_t)(1515870810u + (uint32_t)mpml_srdhm(half, -1010580540));
    for (int i = 0; i < 3; i++) {
        int32_t t = (int32_t)((1u << 29) - (uint32_t)mpml_srdhm(half, x));
        x = (int32_t)((uint32_t)x + (uint32_t)saturating_shift_left(mpml_srdhm(x, t), 2));
    }
    return saturating_shift_left(x, 1);
}

// GetReciprocal(x, integer_bits): the scale, and the bits over unit.
static int32_t get_reciprocal(int32_t x, int integer_bits, int *bits) {
    int h = count_leading_zeros((uint32_t)x);
    *bits = integer_bits - h;
    uint32_t shifted = h < 32 ? (uint32_t)x << h : 0;
    return one_over_one_plus_x_for_x_in_0_1((int32_t)(shifted - 0x80000000u));
}

void mpml_softmax(const int32_t *p, const int8_t *in, const int32_t *exp_sum_table,
    const int32_t *exp_table, int8_t *out) {
    int32_t outer = p[0], depth = p[1];
    for (int32_t r = 0; r < outer; r++) {
        const int8_t *x = in + (size_t)r * depth;
        int8_t *y = out + (size_t)r * depth;
        int32_t mx = -128;
        for (int32_t i = 0; i < depth; i++) {
            if (x[i] > mx) {
                mx = x[i];
            }
        }
        uint32_t sum = 0;
        for (int32_t i = 0; i < depth; i++) {
            sum += (uint32_t)exp_sum_table[mx - x[i]];
        }
        int bits;
        int32_t scale = get_reciprocal((int32_t)sum, 12, &bits);
        int e = bits + 31 - 8;
        e = e < 0 ? 0 : (e > 31 ? 31 : e);
        for (int32_t i = 0; i < depth; i++) {
            int32_t v = mpml_rounding_divide_by_pot(mpml_srdhm(scale, exp_table[mx - x[i]]), e) - 128;
            y[i] = mpml_clamp8(v, -128, 127);
        }
    }
}
