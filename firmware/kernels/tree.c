// TREE_ENSEMBLE: sum over trees of the leaf each tree reaches.
// Every index is checked and a walk is bounded by n_nodes steps, so a hostile
// blob (bad indices, a cycle) gets an error, never a hang or a stray read.
#include "mpml_kernels.h"

mpml_err_t mpml_tree_ensemble(const int32_t *p, const uint8_t *in, const uint8_t *nodes,
    const uint8_t *roots, const uint8_t *leaves, uint8_t *out) {
    int32_t n_trees = p[0], n_feat = p[1], n_out = p[2], n_nodes = p[3], n_leaves = p[4];
    int in_bytes = p[5];
    for (int32_t j = 0; j < n_out; j++) {
        out[4 * j] = out[4 * j + 1] = out[4 * j + 2] = out[4 * j + 3] = 0;
    }
    for (int32_t t = 0; t < n_trees; t++) {
        // A root, like a child, may name a leaf (a tree that is one leaf).
        uint32_t ref = mpml_ld_u16(roots + 2 * t);
        int32_t steps = 0;
        while (!(ref & MPML_TREE_LEAF_FLAG)) {
            if (ref >= (uint32_t)n_nodes) {
                return "TREE_ENSEMBLE: node index out of range";
            }
            if (++steps > n_nodes) {
                return "TREE_ENSEMBLE: tree walk longer than n_nodes (cycle)";
            }
            const uint8_t *nd = nodes + MPML_TREE_NODE_BYTES * ref;
            int32_t thr = mpml_ld_s16(nd);
            uint32_t feat = mpml_ld_u16(nd + 2);
            if (feat >= (uint32_t)n_feat) {
                return "TREE_ENSEMBLE: feature index out of range";
            }
            int32_t x = in_bytes == 1 ? (int8_t)in[feat] : mpml_ld_s16(in + 2 * feat);
            ref = mpml_ld_u16(x <= thr ? nd + 4 : nd + 6);
        }
        uint32_t li = ref & (MPML_TREE_LEAF_FLAG - 1);
        if (li >= (uint32_t)n_leaves) {
            return "TREE_ENSEMBLE: leaf index out of range";
        }
        const uint8_t *row = leaves + 2 * (size_t)li * n_out;
        for (int32_t j = 0; j < n_out; j++) {
            uint8_t *o = out + 4 * j;
            uint32_t a = o[0] | (o[1] << 8) | (o[2] << 16) | ((uint32_t)o[3] << 24);
            a += (uint32_t)mpml_ld_s16(row + 2 * j);
            o[0] = a;
            o[1] = a >> 8;
            o[2] = a >> 16;
            o[3] = a >> 24;
        }
    }
    return NULL;
}
