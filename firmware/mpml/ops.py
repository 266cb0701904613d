# The mpml op set, defined once.
#
# The host writer, the host reader, the host reference, the device loader and
# every kernel backend (C, viper, plain Python) derive from this table. It is
# plain Python that runs unchanged on CPython and MicroPython.
#
# Each op lists its tensor slots (inputs, then outputs) and its int32 params.
# A kernel is called as  kernel(p, *tensors)  where p is the op's params as an
# array('i') in the order below and the tensors are buffers in slot order.
# docs/ops.md gives the arithmetic of every op; docs/blob-format.md the layout.

# Opcodes. Never renumber: they are stored in blobs.
FULLY_CONNECTED = 1
CONV_2D = 2
DEPTHWISE_CONV_2D = 3
AVERAGE_POOL_2D = 4
MAX_POOL_2D = 5
ADD = 6
RESHAPE = 7
SOFTMAX = 8
LOGISTIC = 9
TANH = 10
REQUANTIZE = 11
TREE_ENSEMBLE = 12

# Output channels of FULLY_CONNECTED and CONV_2D weights are stored in blocks
# of this many, interleaved so one loaded input value feeds the whole block
# (see docs/blob-format.md, "Weight layouts"). A tail block holds the rest.
OUT_BLOCK = 8

# Weights of FULLY_CONNECTED and CONV_2D are offset binary: byte = w + 128.
WEIGHT_OFFSET = 128

_CONV_GEOMETRY = (
    "batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c",
    "k_h", "k_w", "stride_h", "stride_w", "dil_h", "dil_w", "pad_top", "pad_left",
)
_POOL_PARAMS = (
    "batches", "in_h", "in_w", "channels", "out_h", "out_w", "f_h", "f_w",
    "stride_h", "stride_w", "pad_top", "pad_left", "act_min", "act_max",
)

# code: (name, input slots, output slots, params)
OPS = {
    FULLY_CONNECTED: (
        "FULLY_CONNECTED",
        ("input", "weights", "bias", "mult", "shift"), ("output",),
        ("batches", "in_depth", "out_depth", "out_offset", "act_min", "act_max"),
    ),
    CONV_2D: (
        "CONV_2D",
        ("input", "weights", "bias", "mult", "shift"), ("output",),
        _CONV_GEOMETRY + ("in_zp", "out_offset", "act_min", "act_max"),
    ),
    DEPTHWISE_CONV_2D: (
        "DEPTHWISE_CONV_2D",
        ("input", "weights", "bias", "mult", "shift"), ("output",),
        _CONV_GEOMETRY + ("depth_mult", "in_zp", "out_offset", "act_min", "act_max"),
    ),
    AVERAGE_POOL_2D: ("AVERAGE_POOL_2D", ("input",), ("output",), _POOL_PARAMS),
    MAX_POOL_2D: ("MAX_POOL_2D", ("input",), ("output",), _POOL_PARAMS),
    ADD: (
        "ADD",
        ("input1", "input2"), ("output",),
        ("size", "in1_offset", "in2_offset", "left_shift", "in1_mult", "in1_shift",
         "in2_mult", "in2_shift", "out_mult", "out_shift", "out_offset", "act_min", "act_max"),
    ),
    RESHAPE: ("RESHAPE", ("input",), ("output",), ("size",)),
    SOFTMAX: (
        "SOFTMAX",
        ("input", "exp_sum_table", "exp_table"), ("output",),
        ("outer", "depth"),
    ),
    LOGISTIC: ("LOGISTIC", ("input", "table"), ("output",), ("size",)),
    TANH: ("TANH", ("input", "table"), ("output",), ("size",)),
    REQUANTIZE: (
        "REQUANTIZE",
        ("input",), ("output",),
        ("size", "in_zp", "out_zp", "mult", "shift"),
    ),
    TREE_ENSEMBLE: (
        "TREE_ENSEMBLE",
        ("input", "nodes", "roots", "leaves"), ("output",),
        ("n_trees", "n_features", "n_outputs", "n_nodes", "n_leaves", "in_bytes"),
    ),
}

# Bytes per TREE_ENSEMBLE node: int16 threshold, uint16 feature, uint16 left,
# uint16 right. A child with LEAF_FLAG set is a leaf index, not a node index.
TREE_NODE_BYTES = 8
TREE_LEAF_FLAG = 0x8000


def name(code):
    """The op's name, or 'op#N' for a code this runtime does not know."""
    op = OPS.get(code)
    return op[0] if op else "op#%d" % code


def code(op_name):
    """The opcode for an op name such as 'CONV_2D'."""
    for c, op in OPS.items():
        if op[0] == op_name:
            return c
    raise KeyError(op_name)


def slot_sizes(code, p):
    """Byte size each tensor slot must have (inputs then outputs) for params p.

    This is the contract between a blob and the kernels: the loader refuses a
    blob whose tensors differ, and the kernels refuse buffers smaller than
    these sizes, so no kernel can read or write outside what was validated.
    Raises ValueError on params no kernel could run with.
    """
    if code == FULLY_CONNECTED:
        b, i, o = _positive(p, 3)
        return (b * i, o * i, 4 * o, 4 * o, 4 * o, b * o)
    if code == CONV_2D or code == DEPTHWISE_CONV_2D:
        b, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw = _positive(p, 13)
        if code == DEPTHWISE_CONV_2D and p[15] * ic != oc:
            raise ValueError("depth_mult * in_c != out_c")
        if code == CONV_2D:
            w = oc * kh * kw * ic
        else:
            w = kh * kw * oc
        return (b * ih * iw * ic, w, 4 * oc, 4 * oc, 4 * oc, b * oh * ow * oc)
    if code == AVERAGE_POOL_2D or code == MAX_POOL_2D:
        b, ih, iw, c, oh, ow, fh, fw, sh, sw = _positive(p, 10)
        return (b * ih * iw * c, b * oh * ow * c)
    if code == ADD:
        n = _positive(p, 1)[0]
        return (n, n, n)
    if code == RESHAPE:
        n = _positive(p, 1)[0]
        return (n, n)
    if code == SOFTMAX:
        outer, depth = _positive(p, 2)
        return (outer * depth, 4 * 256, 4 * 256, outer * depth)
    if code == LOGISTIC or code == TANH:
        n = _positive(p, 1)[0]
        return (n, 256, n)
    if code == REQUANTIZE:
        n = _positive(p, 1)[0]
        return (n, n)
    if code == TREE_ENSEMBLE:
        trees, feats, outs, nodes, leaves, in_bytes = _positive(p, 6)
        if in_bytes != 1 and in_bytes != 2:
            raise ValueError("in_bytes must be 1 or 2")
        if nodes >= TREE_LEAF_FLAG or leaves >= TREE_LEAF_FLAG:
            raise ValueError("too many tree nodes or leaves")
        return (feats * in_bytes, nodes * TREE_NODE_BYTES, 2 * trees, 2 * leaves * outs, 4 * outs)
    raise ValueError("unknown op %s" % name(code))


# Largest value any dimension param may take. Products of several dims can
# still exceed 32 bits: C kernels compare them with buffer lengths in 64 bits.
MAX_DIM = 0x7FFF


def _positive(p, n):
    if len(p) < n:
        raise ValueError("too few params")
    for k in range(n):
        if not 0 < p[k] <= MAX_DIM:
            raise ValueError("param %d out of range: %d" % (k, p[k]))
    return p[:n]
