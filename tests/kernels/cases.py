"""Seeded random cases for every op, valid or hostile, small enough for a board.

case(rng, op) -> (code, function name, params list, buffers list of bytes); the
output is always the last buffer (zero-filled). Params stress what TFLM's
arithmetic is sensitive to: tail blocks, borders, strides, dilations,
negative and large shifts, extreme multipliers, odd activation ranges.
"""

from __future__ import annotations

import random
import struct

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
OPS = {1: "fully_connected", 2: "conv_2d", 3: "depthwise_conv_2d", 4: "average_pool_2d",
       5: "max_pool_2d", 6: "add", 7: "reshape", 8: "softmax", 9: "logistic", 10: "tanh",
       11: "requantize", 12: "tree_ensemble"}


def i32s(vals) -> bytes:
    return b"".join(struct.pack("<i", v) for v in vals)


def rbytes(rng, n) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def mult(rng) -> int:
    r = rng.random()
    if r < 0.7:
        return rng.randint(1 << 30, I32_MAX)
    if r < 0.9:
        return rng.randint(I32_MIN, I32_MAX)
    return rng.choice([I32_MIN, I32_MAX, 0, 1, -1])


def shift(rng) -> int:
    return rng.randint(-14, 4) if rng.random() < 0.85 else rng.randint(-40, 40)


def act(rng):
    if rng.random() < 0.6:
        return -128, 127
    lo = rng.randint(-128, 100)
    return lo, rng.randint(lo, 127)


def bias(rng, n):
    big = rng.random() < 0.1
    return [rng.randint(I32_MIN, I32_MAX) if big else rng.randint(-50000, 50000) for _ in range(n)]


def requant_slots(rng, n):
    return [i32s(bias(rng, n)), i32s([mult(rng) for _ in range(n)]), i32s([shift(rng) for _ in range(n)])]


def _softmax_tables():
    # Two pairs shared by all cases (boards receive each buffer once): one
    # shaped like TFLM's (decreasing with d), one of arbitrary int32s.
    rng = random.Random(8)
    real = (i32s([rng.randint(0, 1 << 19) >> (d // 16) for d in range(256)]),
            i32s([rng.randint(0, I32_MAX) >> (d // 16) for d in range(256)]))
    wild = (i32s([rng.randint(I32_MIN, I32_MAX) for _ in range(256)]),
            i32s([rng.randint(I32_MIN, I32_MAX) for _ in range(256)]))
    return real, wild


SOFTMAX_TABLES = _softmax_tables()


def case(rng: random.Random, code: int):
    if code == 1:
        b, i, o = rng.randint(1, 2), rng.randint(1, 40), rng.randint(1, 21)
        p = [b, i, o, rng.randint(-30, 30), *act(rng)]
        bufs = [rbytes(rng, b * i), rbytes(rng, o * i), *requant_slots(rng, o), bytes(b * o)]
    elif code in (2, 3):
        b, ih, iw = rng.randint(1, 2), rng.randint(1, 7), rng.randint(1, 7)
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        sh, sw, dh, dw = rng.randint(1, 2), rng.randint(1, 2), rng.choice([1, 1, 2]), rng.choice([1, 1, 2])
        oh, ow = rng.randint(1, 6), rng.randint(1, 6)
        pt, pl = rng.randint(-1, 2), rng.randint(-1, 2)
        if code == 2:
            ic, oc = rng.randint(1, 6), rng.randint(1, 19)
            geo = [b, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl]
            p = geo + [rng.randint(-128, 127), rng.randint(-30, 30), *act(rng)]
            w = rbytes(rng, oc * kh * kw * ic)
        else:
            ic, dm = rng.randint(1, 5), rng.randint(1, 3)
            oc = ic * dm
            geo = [b, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, pt, pl]
            p = geo + [dm, rng.randint(-128, 127), rng.randint(-30, 30), *act(rng)]
            w = rbytes(rng, kh * kw * oc)
        bufs = [rbytes(rng, b * ih * iw * ic), w, *requant_slots(rng, oc), bytes(b * oh * ow * oc)]
    elif code in (4, 5):
        b, ih, iw, c = rng.randint(1, 2), rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 4)
        oh, ow, fh, fw = rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 3)
        p = [b, ih, iw, c, oh, ow, fh, fw, rng.randint(1, 2), rng.randint(1, 2),
             rng.randint(-1, 3), rng.randint(-1, 3), *act(rng)]
        bufs = [rbytes(rng, b * ih * iw * c), bytes(b * oh * ow * c)]
    elif code == 6:
        n = rng.randint(1, 30)
        p = [n, rng.randint(-128, 127), rng.randint(-128, 127), rng.choice([20, 20, rng.randint(0, 40)]),
             mult(rng), shift(rng), mult(rng), shift(rng), mult(rng), shift(rng), rng.randint(-128, 127), *act(rng)]
        bufs = [rbytes(rng, n), rbytes(rng, n), bytes(n)]
    elif code == 7:
        n = rng.randint(1, 40)
        p = [n]
        bufs = [rbytes(rng, n), bytes(n)]
    elif code == 8:
        outer, depth = rng.randint(1, 3), rng.randint(1, 12)
        es, ex = SOFTMAX_TABLES[0 if rng.random() < 0.7 else 1]
        p = [outer, depth]
        bufs = [rbytes(rng, outer * depth), es, ex, bytes(outer * depth)]
    elif code in (9, 10):
        n = rng.randint(1, 40)
        p = [n]
        bufs = [rbytes(rng, n), rbytes(rng, 256), bytes(n)]
    elif code == 11:
        n = rng.randint(1, 30)
        p = [n, rng.randint(-128, 127), rng.randint(-128, 127), mult(rng), shift(rng)]
        bufs = [rbytes(rng, n), bytes(n)]
    else:
        return tree_case(rng)
    return code, OPS[code], p, bufs


def tree_case(rng: random.Random, hostile: str | None = None):
    """A random forest; hostile in (None, 'cycle', 'feature', 'leaf', 'node')."""
    n_feat, n_out, in_bytes = rng.randint(1, 6), rng.randint(1, 3), rng.choice([1, 2])
    trees, nodes, n_leaves = rng.randint(1, 4), [], 0
    roots = []

    def grow(depth):
        nonlocal n_leaves
        if depth == 0 or rng.random() < 0.25:
            n_leaves += 1
            return 0x8000 | (n_leaves - 1)
        k = len(nodes)
        nodes.append(None)
        left, right = grow(depth - 1), grow(depth - 1)
        thr = rng.randint(-128, 127) if in_bytes == 1 else rng.randint(-3000, 3000)
        nodes[k] = [thr, rng.randrange(n_feat), left, right]
        return k

    for _ in range(trees):
        roots.append(grow(rng.randint(0, 4)))
    if not nodes:  # keep n_nodes >= 1
        nodes.append([0, 0, 0x8000, 0x8000])
        n_leaves = max(n_leaves, 1)
    if hostile == "cycle":
        nodes[0][2] = nodes[0][3] = 0
        roots[0] = 0
    elif hostile == "feature":
        nodes[0][1] = n_feat
        roots[0] = 0
    elif hostile == "leaf":
        nodes[0][2] = nodes[0][3] = 0x8000 | n_leaves
        roots[0] = 0
    elif hostile == "node":
        nodes[0][2] = nodes[0][3] = len(nodes)
        roots[0] = 0
    nb = b"".join(struct.pack("<hHHH", *n) for n in nodes)
    if in_bytes == 1:
        x = rbytes(rng, n_feat)
    else:
        x = b"".join(struct.pack("<h", rng.randint(-4000, 4000)) for _ in range(n_feat))
    leaves = b"".join(struct.pack("<h", rng.randint(-32768, 32767)) for _ in range(n_leaves * n_out))
    p = [trees, n_feat, n_out, len(nodes), n_leaves, in_bytes]
    return 12, OPS[12], p, [x, nb, b"".join(struct.pack("<H", r) for r in roots), leaves, bytes(4 * n_out)]


def fast_requant_case(rng: random.Random, code: int):
    """FULLY_CONNECTED or CONV_2D whose every channel takes the Cortex-M0 fast
    requantization (mult >= 0, shift -31..-1; requant.c): full blocks of 8,
    extreme biases so the accumulators wrap, odd offsets and ranges."""
    def fmult():
        r = rng.random()
        if r < 0.15:
            return rng.choice([0, 1, I32_MAX, 1 << 30, (1 << 30) - 1])
        return rng.randint(1 << 30, I32_MAX) if r < 0.75 else rng.randint(1, I32_MAX)

    def fshift():
        return rng.choice([-1, -31, -2]) if rng.random() < 0.2 else rng.randint(-14, -1)

    def fbias(n):
        return [rng.choice([I32_MIN, I32_MAX, -1, 0]) if rng.random() < 0.15 else
                rng.randint(I32_MIN, I32_MAX) if rng.random() < 0.3 else rng.randint(-50000, 50000)
                for _ in range(n)]

    off = rng.choice([I32_MIN, I32_MAX, -128, 127]) if rng.random() < 0.1 else rng.randint(-30, 30)
    lo, hi = act(rng)
    if code == 1:
        b, i, o = rng.randint(1, 2), rng.randint(1, 40), 8 * rng.randint(1, 3) + rng.choice([0, 0, 3])
        p = [b, i, o, off, lo, hi]
        x_len, w_len = b * i, o * i
        out_len = b * o
    else:
        b, ih, iw, ic = 1, rng.randint(1, 6), rng.randint(1, 6), rng.randint(1, 5)
        o = 8 * rng.randint(1, 2) + rng.choice([0, 0, 3])
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        oh, ow = rng.randint(1, 5), rng.randint(1, 5)
        p = [b, ih, iw, ic, oh, ow, o, kh, kw, rng.randint(1, 2), rng.randint(1, 2), 1, rng.choice([1, 1, 2]),
             rng.randint(0, 2), rng.randint(0, 2), rng.randint(-128, 127), off, lo, hi]
        x_len, w_len = b * ih * iw * ic, o * kh * kw * ic
        out_len = b * oh * ow * o
    bufs = [rbytes(rng, x_len), rbytes(rng, w_len), i32s(fbias(o)), i32s([fmult() for _ in range(o)]),
            i32s([fshift() for _ in range(o)]), bytes(out_len)]
    return code, OPS[code], p, bufs


def big_window_case(rng: random.Random):
    """CONV_2D whose border pixels need more runs than conv.c's list holds
    (wide dilated windows) and in_zp runs longer than its in_zp buffer."""
    ic, o = rng.choice([(3, 8), (30, 9), (70, 8)])
    kh, kw, dw = (5, 5, 2) if ic == 3 else (3, 3, rng.choice([1, 2]))
    ih, iw = rng.randint(2, 6), rng.randint(2, 6)
    p = [1, ih, iw, ic, 3, 3, o, kh, kw, 1, 1, rng.choice([1, 2]), dw, 2, 3,
         rng.randint(-128, 127), rng.randint(-30, 30), -128, 127]
    bufs = [rbytes(rng, ih * iw * ic), rbytes(rng, o * kh * kw * ic), i32s(bias(rng, o)),
            i32s([rng.randint(1 << 30, I32_MAX) for _ in range(o)]), i32s([rng.randint(-12, -6) for _ in range(o)]),
            bytes(9 * o)]
    return 2, OPS[2], p, bufs


def all_cases(seed: int, per_op: int):
    rng = random.Random(seed)
    out = []
    for code in OPS:
        for _ in range(per_op):
            out.append(case(rng, code))
    for h in ("cycle", "feature", "leaf", "node"):
        out.append(tree_case(rng, h))
    for code in (1, 2, 1, 2):
        out.append(fast_requant_case(rng, code))
    for _ in range(3):
        out.append(big_window_case(rng))
    return out


def expected(pure, c):
    """_pure.py's output (hex) or 'E:<message>'."""
    code, fname, p, bufs = c
    b = [bytearray(x) for x in bufs]
    try:
        getattr(pure, fname)(p, *b)
    except ValueError as e:
        return "E:" + str(e)
    return bytes(b[-1]).hex()
