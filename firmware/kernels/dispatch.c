// Buffer checks (ops.slot_sizes, with products that saturate instead of
// wrapping, so hostile dims of up to 0x7FFF each cannot pass) and the
// dispatch to the kernels.
#include "mpml_kernels.h"

#define SMALL(op, slot) op ": " slot " buffer too small"
#define ALIGN(op, slot) op ": " slot " buffer not 4-byte aligned"
#define FC_LIKE(op) { SMALL(op, "input"), SMALL(op, "weights"), SMALL(op, "bias"), \
                      SMALL(op, "mult"), SMALL(op, "shift"), SMALL(op, "output") }
#define IN_OUT(op) { SMALL(op, "input"), SMALL(op, "output") }
#define LUT(op) { SMALL(op, "input"), SMALL(op, "table"), SMALL(op, "output") }

typedef struct {
    const char *params;   // params out of range
    const char *align[2]; // the int32 slots' alignment messages
    uint8_t n_slots, n_params, align_slot, n_align;
    const char *small[MPML_MAX_SLOTS];
} op_info_t;

#define PARAMS(op) op ": params out of range or too few"

static const op_info_t op_info[MPML_N_OPS] = {
    [MPML_FULLY_CONNECTED] = {PARAMS("FULLY_CONNECTED"), {ALIGN("FULLY_CONNECTED", "bias, mult or shift")},
                              6, 6, 2, 3, FC_LIKE("FULLY_CONNECTED")},
    [MPML_CONV_2D] = {PARAMS("CONV_2D"), {ALIGN("CONV_2D", "bias, mult or shift")},
                      6, 19, 2, 3, FC_LIKE("CONV_2D")},
    [MPML_DEPTHWISE_CONV_2D] = {PARAMS("DEPTHWISE_CONV_2D"), {ALIGN("DEPTHWISE_CONV_2D", "bias, mult or shift")},
                                6, 20, 2, 3, FC_LIKE("DEPTHWISE_CONV_2D")},
    [MPML_AVERAGE_POOL_2D] = {PARAMS("AVERAGE_POOL_2D"), {0}, 2, 14, 0, 0, IN_OUT("AVERAGE_POOL_2D")},
    [MPML_MAX_POOL_2D] = {PARAMS("MAX_POOL_2D"), {0}, 2, 14, 0, 0, IN_OUT("MAX_POOL_2D")},
    [MPML_ADD] = {PARAMS("ADD"), {0}, 3, 13, 0, 0,
                  {SMALL("ADD", "input1"), SMALL("ADD", "input2"), SMALL("ADD", "output")}},
    [MPML_RESHAPE] = {PARAMS("RESHAPE"), {0}, 2, 1, 0, 0, IN_OUT("RESHAPE")},
    [MPML_SOFTMAX] = {PARAMS("SOFTMAX"), {ALIGN("SOFTMAX", "exp_sum_table or exp_table")}, 4, 2, 1, 2,
                      {SMALL("SOFTMAX", "input"), SMALL("SOFTMAX", "exp_sum_table"),
                       SMALL("SOFTMAX", "exp_table"), SMALL("SOFTMAX", "output")}},
    [MPML_LOGISTIC] = {PARAMS("LOGISTIC"), {0}, 3, 1, 0, 0, LUT("LOGISTIC")},
    [MPML_TANH] = {PARAMS("TANH"), {0}, 3, 1, 0, 0, LUT("TANH")},
    [MPML_REQUANTIZE] = {PARAMS("REQUANTIZE"), {0}, 2, 5, 0, 0, IN_OUT("REQUANTIZE")},
    [MPML_TREE_ENSEMBLE] = {PARAMS("TREE_ENSEMBLE"), {0}, 5, 6, 0, 0,
                            {SMALL("TREE_ENSEMBLE", "input"), SMALL("TREE_ENSEMBLE", "nodes"),
                             SMALL("TREE_ENSEMBLE", "roots"), SMALL("TREE_ENSEMBLE", "leaves"),
                             SMALL("TREE_ENSEMBLE", "output")}},
};

static const op_info_t *info(int code) {
    if (code <= 0 || code >= MPML_N_OPS) {
        return NULL;
    }
    return &op_info[code];
}

int mpml_n_slots(int code) {
    const op_info_t *op = info(code);
    return op ? op->n_slots : 0;
}

int mpml_n_params(int code) {
    const op_info_t *op = info(code);
    return op ? op->n_params : 0;
}

// First n params must be in 1..MAX_DIM (ops._positive).
static int positive(const int32_t *p, int n) {
    for (int k = 0; k < n; k++) {
        if (p[k] <= 0 || p[k] > MPML_MAX_DIM) {
            return 0;
        }
    }
    return 1;
}

// min(a * b, TOO_BIG) without a long multiply (Cortex-M0 has none, and a
// dynruntime module links no runtime). No buffer a kernel gets can be
// TOO_BIG bytes or more, so a saturated size always fails the check.
#define TOO_BIG 0xFFFFFFFFu
static uint32_t mul(uint32_t a, uint32_t b) {
    if (a < b) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    if (b >> 16) {
        return TOO_BIG;
    }
    uint32_t hi = (a >> 16) * b;
    if (hi >> 16) {
        return TOO_BIG;
    }
    uint32_t lo = (a & 0xFFFF) * b;
    uint32_t r = (hi << 16) + lo;
    return r < lo ? TOO_BIG : r;
}

static uint32_t mul3(uint32_t a, uint32_t b, uint32_t c) {
    return mul(mul(a, b), c);
}

// The op's slot sizes (ops.slot_sizes); 0 when the params are invalid.
static int slot_sizes(int code, const int32_t *p, uint32_t *sz) {
    switch (code) {
        case MPML_FULLY_CONNECTED:
            if (!positive(p, 3)) {
                return 0;
            }
            sz[0] = mul(p[0], p[1]);
            sz[1] = mul(p[2], p[1]);
            sz[2] = sz[3] = sz[4] = 4 * (uint32_t)p[2];
            sz[5] = mul(p[0], p[2]);
            return 1;
        case MPML_CONV_2D:
        case MPML_DEPTHWISE_CONV_2D:
            if (!positive(p, 13)) {
                return 0;
            }
            if (code == MPML_DEPTHWISE_CONV_2D
                && (p[15] <= 0 || p[15] > MPML_MAX_DIM || mul(p[15], p[3]) != (uint32_t)p[6])) {
                return 0;
            }
            sz[0] = mul(mul(p[0], p[1]), mul(p[2], p[3]));
            sz[1] = mul3(p[7], p[8], mul(p[6], code == MPML_CONV_2D ? p[3] : 1));
            sz[2] = sz[3] = sz[4] = 4 * (uint32_t)p[6];
            sz[5] = mul(mul(p[0], p[4]), mul(p[5], p[6]));
            return 1;
        case MPML_AVERAGE_POOL_2D:
        case MPML_MAX_POOL_2D:
            if (!positive(p, 10)) {
                return 0;
            }
            sz[0] = mul(mul(p[0], p[1]), mul(p[2], p[3]));
            sz[1] = mul(mul(p[0], p[4]), mul(p[5], p[3]));
            return 1;
        case MPML_ADD:
        case MPML_RESHAPE:
        case MPML_REQUANTIZE:
        case MPML_LOGISTIC:
        case MPML_TANH:
            if (!positive(p, 1)) {
                return 0;
            }
            sz[0] = sz[1] = sz[2] = (uint32_t)p[0];
            if (code == MPML_LOGISTIC || code == MPML_TANH) {
                sz[1] = 256;
            }
            return 1;
        case MPML_SOFTMAX:
            if (!positive(p, 2)) {
                return 0;
            }
            sz[0] = sz[3] = mul(p[0], p[1]);
            sz[1] = sz[2] = 4 * 256;
            return 1;
        case MPML_TREE_ENSEMBLE:
            if (!positive(p, 6) || (p[5] != 1 && p[5] != 2)
                || p[3] >= MPML_TREE_LEAF_FLAG || p[4] >= MPML_TREE_LEAF_FLAG) {
                return 0;
            }
            sz[0] = mul(p[1], p[5]);
            sz[1] = mul(p[3], MPML_TREE_NODE_BYTES);
            sz[2] = 2 * (uint32_t)p[0];
            sz[3] = mul3(2, p[4], p[2]);
            sz[4] = 4 * (uint32_t)p[2];
            return 1;
    }
    return 0;
}

mpml_err_t mpml_check(int code, const int32_t *p, size_t np, void *const *bufs, const size_t *lens) {
    const op_info_t *op = info(code);
    if (op == NULL) {
        return "unknown opcode";
    }
    uint32_t sz[MPML_MAX_SLOTS];
    if (np < op->n_params || !slot_sizes(code, p, sz)) {
        return op->params;
    }
    for (int k = 0; k < op->n_slots; k++) {
        if (sz[k] == TOO_BIG || lens[k] < sz[k]) {
            return op->small[k];
        }
    }
    for (int k = op->align_slot; k < op->align_slot + op->n_align; k++) {
        if ((uintptr_t)bufs[k] & 3) {
            return op->align[0];
        }
    }
    return NULL;
}

mpml_err_t mpml_run(int code, const int32_t *p, size_t np, void *const *bufs, const size_t *lens) {
    mpml_err_t err = mpml_check(code, p, np, bufs, lens);
    if (err) {
        return err;
    }
    void *const *b = bufs;
    switch (code) {
        case MPML_FULLY_CONNECTED:
            mpml_fully_connected(p, b[0], b[1], b[2], b[3], b[4], b[5]);
            break;
        case MPML_CONV_2D:
            mpml_conv_2d(p, b[0], b[1], b[2], b[3], b[4], b[5]);
            break;
        case MPML_DEPTHWISE_CONV_2D:
            mpml_depthwise_conv_2d(p, b[0], b[1], b[2], b[3], b[4], b[5]);
            break;
        case MPML_AVERAGE_POOL_2D:
        case MPML_MAX_POOL_2D:
            mpml_pool(code, p, b[0], b[1]);
            break;
        case MPML_ADD:
            mpml_add(p, b[0], b[1], b[2]);
            break;
        case MPML_RESHAPE:
            mpml_reshape(p, b[0], b[1]);
            break;
        case MPML_SOFTMAX:
            mpml_softmax(p, b[0], b[1], b[2], b[3]);
            break;
        case MPML_LOGISTIC:
        case MPML_TANH:
            mpml_lut(p, b[0], b[1], b[2]);
            break;
        case MPML_REQUANTIZE:
            mpml_requantize(p, b[0], b[1]);
            break;
        case MPML_TREE_ENSEMBLE:
            return mpml_tree_ensemble(p, b[0], b[1], b[2], b[3], b[4]);
    }
    return NULL;
}
