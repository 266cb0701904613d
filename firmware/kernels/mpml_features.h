// The feature spec's kernels (docs/features.md), as mpml.featurize calls
// them: one call per block of the spec, then one for the int8 quantization.
// Parameters are int32 arrays built by mpml.featurize.Featurizer:
//
//   raw    p = [L, C, k, off, decimate, ch[k]]
//   stats  p = [L, C, k, off, n_stats, codes[n_stats], ch[k]]
//   bands  p = [L, C, k, off, n, log2 n, remove_mean, n_bands, ch[k]]
//   quant  p = [n_features, zero_point]
//
// x is the window, x[t*C + c] int16; f the int32 features (a block writes
// f[off ..]); lengths are in elements. Each entry point checks its params
// against the buffers first and returns a static message naming the problem
// (NULL on success), so no call reads or writes outside them.
#ifndef MPML_FEATURES_H
#define MPML_FEATURES_H

#include "mpml_kernels.h"

mpml_err_t mpml_fx_raw(const int32_t *p, size_t np, const int16_t *x, size_t nx, int32_t *f, size_t nf);
mpml_err_t mpml_fx_stats(const int32_t *p, size_t np, const int16_t *x, size_t nx, int32_t *f, size_t nf);
// tab: window u16[n], twiddles i16[n] (wr, wi pairs), bands u16[2 n_bands]
// (the spec's layout); work: 2n + 2 n_bands int32 of scratch.
mpml_err_t mpml_fx_bands(const int32_t *p, size_t np, const int16_t *x, size_t nx, const uint16_t *tab,
    size_t ntab, int32_t *work, size_t nwork, int32_t *f, size_t nf);
// out[i] = clamp(MBQM(f[i] - offset, multiplier, shift) + zero_point) with
// slot sidx[i] = (offset, multiplier, shift) at slots[3 sidx[i]].
mpml_err_t mpml_fx_quant(const int32_t *p, size_t np, const int32_t *f, size_t nf, const int32_t *slots,
    size_t nslots, const uint16_t *sidx, size_t nsidx, int8_t *out, size_t nout);

// Shared by features.c and feature_bands.c.
// Checks the common head [L, C, k, off] and the channels (at p[ch_at]),
// and that x holds L*C samples and f holds off + n_out values.
mpml_err_t mpml_fx_check(const int32_t *p, size_t np, size_t ch_at, size_t nx, size_t nf, uint32_t n_out);
// DivRound(a, b), b >= 1, |a| < 2^31 (round half away from zero).
int32_t mpml_fx_div_round(int32_t a, uint32_t b);
// Unsigned division without a divide instruction on Cortex-M0.
uint32_t mpml_fx_udiv(uint32_t n, uint32_t d);

#endif
