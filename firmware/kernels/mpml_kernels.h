// mpml C kernels: the interface shared by the MicroPython glue (modkernels.c)
// and the bare-metal harness of the benchmark and tests (tools/bench).
//
// Kernels take already-validated buffers: mpml_run() checks every buffer
// against the op's slot sizes (ops.slot_sizes, here in 64 bits) first, so
// no kernel reads or writes outside them. docs/ops.md is the arithmetic.
#ifndef MPML_KERNELS_H
#define MPML_KERNELS_H

#include <stdint.h>
#include <stddef.h>

// Opcodes, as firmware/mpml/ops.py (never renumber).
#define MPML_FULLY_CONNECTED 1
#define MPML_CONV_2D 2
#define MPML_DEPTHWISE_CONV_2D 3
#define MPML_AVERAGE_POOL_2D 4
#define MPML_MAX_POOL_2D 5
#define MPML_ADD 6
#define MPML_RESHAPE 7
#define MPML_SOFTMAX 8
#define MPML_LOGISTIC 9
#define MPML_TANH 10
#define MPML_REQUANTIZE 11
#define MPML_TREE_ENSEMBLE 12
#define MPML_N_OPS 13

#define MPML_OUT_BLOCK 8
#define MPML_WEIGHT_OFFSET 128
#define MPML_MAX_DIM 0x7FFF
#define MPML_MAX_SLOTS 6
#define MPML_MAX_PARAMS 20
#define MPML_TREE_NODE_BYTES 8
#define MPML_TREE_LEAF_FLAG 0x8000

// An error is a static message naming the op (and the slot); NULL is success.
typedef const char *mpml_err_t;

// Slot and param counts of an op, 0 for an unknown opcode.
int mpml_n_slots(int code);
int mpml_n_params(int code);

// Check buffer lengths (and alignment of int32 tensors) against the op's
// params; then run it. The one entry point of both the natmod and the bench.
mpml_err_t mpml_check(int code, const int32_t *p, size_t np, void *const *bufs, const size_t *lens);
mpml_err_t mpml_run(int code, const int32_t *p, size_t np, void *const *bufs, const size_t *lens);

// The kernels (buffers validated). Those that can refuse data return an error.
void mpml_fully_connected(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);
void mpml_conv_2d(const int32_t *p, const int8_t *in, const uint8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);
void mpml_depthwise_conv_2d(const int32_t *p, const int8_t *in, const int8_t *w,
    const int32_t *bias, const int32_t *mult, const int32_t *shift, int8_t *out);
void mpml_pool(int code, const int32_t *p, const int8_t *in, int8_t *out);
void mpml_add(const int32_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void mpml_reshape(const int32_t *p, const uint8_t *in, uint8_t *out);
void mpml_softmax(const int32_t *p, const int8_t *in, const int32_t *exp_sum_table,
    const int32_t *exp_table, int8_t *out);
void mpml_lut(const int32_t *p, const uint8_t *in, const uint8_t *table, uint8_t *out);
void mpml_requantize(const int32_t *p, const int8_t *in, int8_t *out);
mpml_err_t mpml_tree_ensemble(const int32_t *p, const uint8_t *in, const uint8_t *nodes,
    const uint8_t *roots, const uint8_t *leaves, uint8_t *out);

// The multiply-accumulate engine of FULLY_CONNECTED and CONV_2D (mac.c).
// For one block of r <= 8 output channels whose offset-binary weights are
// interleaved (w[k*r + j]), it walks a list of runs of input bytes (ended
// by a run with n == 0) and sets acc[j] = init[j] + sum_k x[k] * w[k*r + j]
// over all of them (init is the bias, or acc itself to continue a block
// whose runs did not fit one list), adds sum_k x[k] to sum when asked, and
// leaves w just past the weights it used. Offsets of the fields are fixed:
// the armv6m assembly reads them.
typedef struct {
    const int8_t *end;  // the run is the n bytes before end
    int32_t n;          // > 0; 0 ends the list
} mpml_run_t;

typedef struct {
    int32_t acc[8];             // 0   out
    int32_t sum;                // 32  in/out
    const mpml_run_t *runs;     // 36
    const int32_t *init;        // 40  may equal acc
    const uint8_t *w;           // 44  in/out
} mpml_mac_t;

void mpml_mac(mpml_mac_t *s, int r, int want_sum);

// The per-block epilogue (requant.c): y[j] = clamp(MBQM(acc[j] - 128 * sum(x),
// mult[j], shift[j]) + out_offset), j < r, with acc holding the bias already.
// The caller keeps one of these per call and updates mult/shift per block
// and neg_corr per pixel (row of FC). Offsets are fixed for the assembly.
typedef struct {
    const int32_t *mult;        // 0   this block's
    const int32_t *shift;       // 4
    int32_t neg_corr;           // 8   -128 * sum(x), wrapping
    int32_t out_offset;         // 12
    int32_t act_min, act_max;   // 16, 20
    int32_t fast;               // 24  mpml_requant_fast() of all channels
} mpml_rq_t;

void mpml_requant_block(int8_t *y, const int32_t *acc, int r, const mpml_rq_t *q);

// 1 when every channel's (mult, shift) takes the fast armv6m requantization:
// mult > 0 with -31 <= shift <= -1, or mult == 0 (the result is then 0).
int mpml_requant_fast(const int32_t *mult, const int32_t *shift, int32_t n);

// All n_out channels of one pixel (FC row) over the same run list: block
// by block, mpml_mac then mpml_requant_block into y[0 .. n_out); the first
// block sums x from 0 into s->sum and sets q->neg_corr. s->init, s->w,
// q->mult and q->shift start at channel 0. On Cortex-M0 with q->fast, the
// full blocks are one assembly call, sums never leaving registers (mac.c).
void mpml_mac_requant(mpml_mac_t *s, mpml_rq_t *q, int8_t *y, int32_t n_out);

// Clamp to the activation range and store as int8.
static inline int8_t mpml_clamp8(int32_t v, int32_t lo, int32_t hi) {
    if (v < lo) {
        v = lo;
    }
    if (v > hi) {
        v = hi;
    }
    return (int8_t)v;
}

// Little-endian loads that need no alignment (tree records).
static inline int32_t mpml_ld_s16(const uint8_t *b) {
    return (int16_t)(uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t mpml_ld_u16(const uint8_t *b) {
    return (uint32_t)(b[0] | (b[1] << 8));
}

#endif
