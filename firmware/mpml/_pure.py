# Plain-Python kernels: the device's last-resort backend and the most readable
# statement of docs/ops.md. One function per op, called as kernel(p, *buffers)
# with p the op's int32 params (array('i') or list) and the buffers in the op's
# slot order (ops.OPS). Runs unchanged on CPython and MicroPython.
#
# Every int32 sum or product that C would wrap is wrapped here too (_wrap), so
# hostile params give the same bytes as the C kernels, not just valid ones.

import struct

try:
    from mpml import ops
except ImportError:  # CPython: the host package loads firmware/mpml/ops.py
    from mpml.shared import ops

INT32_MIN = -0x80000000
INT32_MAX = 0x7FFFFFFF


def _wrap(x):
    # x as a C int32 after two's complement wraparound.
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _s8(b):
    return (b ^ 0x80) - 0x80


def _i32(buf, i):
    return struct.unpack_from("<i", buf, 4 * i)[0]


def _check(code, p, bufs):
    # Refuse buffers smaller than the op's slot sizes (ops.slot_sizes).
    op = ops.OPS[code]
    if len(p) < len(op[3]):
        raise ValueError("%s: too few params" % op[0])
    try:
        sizes = ops.slot_sizes(code, p)
    except ValueError as e:
        raise ValueError("%s: %s" % (op[0], e))
    slots = op[1] + op[2]
    for k in range(len(slots)):
        if len(bufs[k]) < sizes[k]:
            raise ValueError("%s: %s buffer too small (%d < %d)"
                             % (op[0], slots[k], len(bufs[k]), sizes[k]))


# ---- rounding steps, named as in TFLM -------------------------------------

def saturating_rounding_doubling_high_mul(a, b):
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    v = ab + (0x40000000 if ab >= 0 else 1 - 0x40000000)
    # C division by 2^31 truncates toward zero.
    return v >> 31 if v >= 0 else -((-v) >> 31)


def rounding_divide_by_pot(x, e):
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def _shifts(shift):
    # Shifts beyond +-31 only come from a hostile blob: clamp them (as the C
    # kernels do) so the arithmetic stays defined.
    if shift > 31:
        shift = 31
    elif shift < -31:
        shift = -31
    return (shift, 0) if shift > 0 else (0, -shift)


def multiply_by_quantized_multiplier(x, m, shift):
    left, right = _shifts(shift)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap(x << left), m), right)


def rounding_half_sum(a, b):
    s = a + b
    s += 1 if s >= 0 else -1
    return s // 2 if s >= 0 else -((-s) // 2)


def saturating_shift_left(v, n):
    threshold = (1 << (31 - n)) - 1
    if v > threshold:
        return INT32_MAX
    if v < -threshold:
        return INT32_MIN
    return v << n


def count_leading_zeros(x):
    x &= 0xFFFFFFFF
    n = 0
    while n < 32 and not x & 0x80000000:
        x <<= 1
        n += 1
    return n


def one_over_one_plus_x_for_x_in_0_1(a):
    srdhm = saturating_rounding_doubling_high_mul
    half = rounding_half_sum(a, INT32_MAX)
    x = _wrap(1515870810 + srdhm(half, -1010580540))
    for _ in range(3):
        t = _wrap((1 << 29) - srdhm(half, x))
        x = _wrap(x + saturating_shift_left(srdhm(x, t), 2))
    return saturating_shift_left(x, 1)


def get_reciprocal(x, integer_bits):
    """(scale, num_bits_over_unit) as TFLM's GetReciprocal."""
    h = count_leading_zeros(x)
    bits = integer_bits - h
    shifted = ((x & 0xFFFFFFFF) << h) & 0xFFFFFFFF  # 0 when h == 32 (x == 0)
    m = _wrap(shifted - 0x80000000)
    return one_over_one_plus_x_for_x_in_0_1(m), bits


def _clamp8(v, lo, hi):
    if v < lo:
        v = lo
    if v > hi:
        v = hi
    return v & 0xFF  # stored as int8 (truncated, as C does with odd act ranges)


def _requant(acc, m, shift, out_offset, lo, hi):
    v = _wrap(multiply_by_quantized_multiplier(acc, m, shift) + out_offset)
    return _clamp8(v, lo, hi)


# ---- ops ------------------------------------------------------------------

def fully_connected(p, input, weights, bias, mult, shift, output):
    _check(ops.FULLY_CONNECTED, p, (input, weights, bias, mult, shift, output))
    batches, n_in, n_out, out_offset, lo, hi = p[0], p[1], p[2], p[3], p[4], p[5]
    W = ops.WEIGHT_OFFSET
    for b in range(batches):
        xb = b * n_in
        for o0 in range(0, n_out, ops.OUT_BLOCK):
            r = min(ops.OUT_BLOCK, n_out - o0)
            acc = [0] * r
            wk = o0 * n_in
            for k in range(n_in):
                x = _s8(input[xb + k])
                for j in range(r):
                    acc[j] += x * (weights[wk + j] - W)
                wk += r
            for j in range(r):
                o = o0 + j
                a = _wrap(_i32(bias, o) + acc[j])
                output[b * n_out + o] = _requant(a, _i32(mult, o), _i32(shift, o), out_offset, lo, hi)


def _conv_geometry(p):
    return [p[k] for k in range(15)]


def conv_2d(p, input, weights, bias, mult, shift, output):
    _check(ops.CONV_2D, p, (input, weights, bias, mult, shift, output))
    (batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w,
     s_h, s_w, d_h, d_w, pad_t, pad_l) = _conv_geometry(p)
    in_zp, out_offset, lo, hi = _s8(p[15] & 0xFF), p[16], p[17], p[18]  # in_zp is an int8
    W = ops.WEIGHT_OFFSET
    K = k_h * k_w * in_c
    for b in range(batches):
        for oy in range(out_h):
            for ox in range(out_w):
                # x~: the input at each tap, in_zp where the tap is padding.
                taps = []
                for fy in range(k_h):
                    iy = oy * s_h - pad_t + fy * d_h
                    for fx in range(k_w):
                        ix = ox * s_w - pad_l + fx * d_w
                        if 0 <= iy < in_h and 0 <= ix < in_w:
                            base = ((b * in_h + iy) * in_w + ix) * in_c
                            for c in range(in_c):
                                taps.append(_s8(input[base + c]))
                        else:
                            taps.extend([in_zp] * in_c)
                obase = ((b * out_h + oy) * out_w + ox) * out_c
                for o0 in range(0, out_c, ops.OUT_BLOCK):
                    r = min(ops.OUT_BLOCK, out_c - o0)
                    acc = [0] * r
                    wk = o0 * K
                    for k in range(K):
                        x = taps[k]
                        for j in range(r):
                            acc[j] += x * (weights[wk + j] - W)
                        wk += r
                    for j in range(r):
                        o = o0 + j
                        a = _wrap(_i32(bias, o) + acc[j])
                        output[obase + o] = _requant(a, _i32(mult, o), _i32(shift, o),
                                                     out_offset, lo, hi)


def depthwise_conv_2d(p, input, weights, bias, mult, shift, output):
    _check(ops.DEPTHWISE_CONV_2D, p, (input, weights, bias, mult, shift, output))
    (batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w,
     s_h, s_w, d_h, d_w, pad_t, pad_l) = _conv_geometry(p)
    depth_mult, in_zp, out_offset, lo, hi = p[15], _s8(p[16] & 0xFF), p[17], p[18], p[19]
    for b in range(batches):
        for oy in range(out_h):
            for ox in range(out_w):
                obase = ((b * out_h + oy) * out_w + ox) * out_c
                for o in range(out_c):
                    c = o // depth_mult
                    acc = 0
                    for fy in range(k_h):
                        iy = oy * s_h - pad_t + fy * d_h
                        for fx in range(k_w):
                            ix = ox * s_w - pad_l + fx * d_w
                            if 0 <= iy < in_h and 0 <= ix < in_w:
                                x = _s8(input[((b * in_h + iy) * in_w + ix) * in_c + c])
                            else:
                                x = in_zp
                            acc += x * _s8(weights[(fy * k_w + fx) * out_c + o])
                    a = _wrap(_i32(bias, o) + acc)
                    output[obase + o] = _requant(a, _i32(mult, o), _i32(shift, o),
                                                 out_offset, lo, hi)


def _pool(code, p, input, output):
    _check(code, p, (input, output))
    batches, in_h, in_w, ch, out_h, out_w, f_h, f_w, s_h, s_w, pad_t, pad_l, lo, hi = \
        [p[k] for k in range(14)]
    for b in range(batches):
        for oy in range(out_h):
            y0 = oy * s_h - pad_t
            ys = range(max(y0, 0), min(y0 + f_h, in_h))
            for ox in range(out_w):
                x0 = ox * s_w - pad_l
                xs = range(max(x0, 0), min(x0 + f_w, in_w))
                obase = ((b * out_h + oy) * out_w + ox) * ch
                for c in range(ch):
                    n = 0
                    s = 0
                    m = -128
                    for iy in ys:
                        for ix in xs:
                            v = _s8(input[((b * in_h + iy) * in_w + ix) * ch + c])
                            s += v
                            if v > m:
                                m = v
                            n += 1
                    if code == ops.MAX_POOL_2D:
                        v = m
                    elif n == 0:
                        v = 0  # a window wholly in the padding: nothing to average
                    else:
                        s = _wrap(s)
                        v = (s + n // 2) // n if s > 0 else -((-s + n // 2) // n)
                    output[obase + c] = _clamp8(v, lo, hi)


def average_pool_2d(p, input, output):
    _pool(ops.AVERAGE_POOL_2D, p, input, output)


def max_pool_2d(p, input, output):
    _pool(ops.MAX_POOL_2D, p, input, output)


def add(p, input1, input2, output):
    _check(ops.ADD, p, (input1, input2, output))
    (n, off1, off2, left, m1, s1, m2, s2, mo, so, out_offset, lo, hi) = [p[k] for k in range(13)]
    mbqm = multiply_by_quantized_multiplier
    if left > 31 or left < 0:
        left = 31 if left > 31 else 0
    for i in range(n):
        a = _wrap((_s8(input1[i]) + off1) << left)
        b = _wrap((_s8(input2[i]) + off2) << left)
        s = _wrap(mbqm(a, m1, s1) + mbqm(b, m2, s2))
        output[i] = _requant(s, mo, so, out_offset, lo, hi)


def reshape(p, input, output):
    _check(ops.RESHAPE, p, (input, output))
    n = p[0]
    if input is not output:
        output[0:n] = input[0:n]


def softmax(p, input, exp_sum_table, exp_table, output):
    _check(ops.SOFTMAX, p, (input, exp_sum_table, exp_table, output))
    outer, depth = p[0], p[1]
    for r in range(outer):
        base = r * depth
        mx = -128
        for i in range(depth):
            v = _s8(input[base + i])
            if v > mx:
                mx = v
        s = 0
        for i in range(depth):
            s = _wrap(s + _i32(exp_sum_table, mx - _s8(input[base + i])))
        scale, bits = get_reciprocal(s, 12)
        e = bits + 31 - 8
        e = 0 if e < 0 else (31 if e > 31 else e)
        for i in range(depth):
            d = mx - _s8(input[base + i])
            v = rounding_divide_by_pot(
                saturating_rounding_doubling_high_mul(scale, _i32(exp_table, d)), e) - 128
            output[base + i] = _clamp8(v, -128, 127)


def _lut(code, p, input, table, output):
    _check(code, p, (input, table, output))
    for i in range(p[0]):
        output[i] = table[input[i] ^ 0x80]  # index x + 128


def logistic(p, input, table, output):
    _lut(ops.LOGISTIC, p, input, table, output)


def tanh(p, input, table, output):
    _lut(ops.TANH, p, input, table, output)


def requantize(p, input, output):
    _check(ops.REQUANTIZE, p, (input, output))
    n, in_zp, out_zp, m, sh = p[0], p[1], p[2], p[3], p[4]
    for i in range(n):
        x = _wrap(_s8(input[i]) - in_zp)  # in_zp any int32, as in C
        output[i] = _requant(x, m, sh, out_zp, -128, 127)


def tree_ensemble(p, input, nodes, roots, leaves, output):
    _check(ops.TREE_ENSEMBLE, p, (input, nodes, roots, leaves, output))
    n_trees, n_feat, n_out, n_nodes, n_leaves, in_bytes = [p[k] for k in range(6)]
    leaf = ops.TREE_LEAF_FLAG
    acc = [0] * n_out
    for t in range(n_trees):
        # A root, like a child, may name a leaf (a tree that is one leaf).
        ref = struct.unpack_from("<H", roots, 2 * t)[0]
        steps = 0
        while not ref & leaf:
            if ref >= n_nodes:
                raise ValueError("TREE_ENSEMBLE: node index out of range")
            steps += 1
            if steps > n_nodes:
                raise ValueError("TREE_ENSEMBLE: tree walk longer than n_nodes (cycle)")
            thr, feat, left, right = struct.unpack_from("<hHHH", nodes, ops.TREE_NODE_BYTES * ref)
            if feat >= n_feat:
                raise ValueError("TREE_ENSEMBLE: feature index out of range")
            if in_bytes == 1:
                x = _s8(input[feat])
            else:
                x = struct.unpack_from("<h", input, 2 * feat)[0]
            ref = left if x <= thr else right
        li = ref & (leaf - 1)
        if li >= n_leaves:
            raise ValueError("TREE_ENSEMBLE: leaf index out of range")
        for j in range(n_out):
            acc[j] = _wrap(acc[j] + struct.unpack_from("<h", leaves, 2 * (li * n_out + j))[0])
    for j in range(n_out):
        struct.pack_into("<i", output, 4 * j, acc[j])
