"""docs/features.md, literally: one window at a time, plain integers, straight from the spec bytes.

This is the model for the device implementation (issue 6) and the check on
the vectorised numpy code (`FeatureSpec.features`/`transform`): the tests run
both on random and extreme windows and require equal results. It uses only
what MicroPython has (struct, ints, lists; no numpy, no f-strings, no
int.bit_length), and asserts the int32 bounds docs/features.md promises, so
a C version with int32 (and int64 where the doc says so) computes the same.

    feats = features(spec_bytes, window)      # window: rows of channel values (int16)
    q = quantize(spec_bytes, feats)           # int8 values, a list
"""

import struct

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1

LOG2_TABLE = (0, 6, 11, 17, 22, 28, 33, 38, 44, 49, 54, 59, 63, 68, 73, 78, 82, 87, 92, 96, 100, 105, 109,
              113, 118, 122, 126, 130, 134, 138, 142, 146, 150, 154, 157, 161, 165, 169, 172, 176, 179,
              183, 186, 190, 193, 197, 200, 203, 207, 210, 213, 216, 220, 223, 226, 229, 232, 235, 238,
              241, 244, 247, 250, 253)


def _i32(v):
    assert INT32_MIN <= v <= INT32_MAX, "int32 overflow: %d" % v
    return v


def _i64(v):
    assert -INT64_MAX - 1 <= v <= INT64_MAX, "int64 overflow"
    return v


def _cdiv(a, b):
    """C's `/` for ints: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def div_round(a, b):
    """DivRound: a / b (b > 0) rounded half away from zero, as AVERAGE_POOL_2D."""
    if a > 0:
        return _cdiv(a + b // 2, b)
    return _cdiv(a - b // 2, b)


def rdp(x, e):
    """RoundingDivideByPOT(x, e) on an int32 x (docs/ops.md)."""
    _i32(x)
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul (docs/ops.md)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _cdiv(ab + nudge, 1 << 31)


def mbqm(x, m, shift):
    """MultiplyByQuantizedMultiplier (docs/ops.md)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rdp(srdhm(_i32(x * (1 << left)), m), right)


def isqrt(v):
    """floor(sqrt(v)) for 0 <= v < 2^62: the digit-by-digit method on 64-bit unsigned integers."""
    assert 0 <= v < (1 << 62)
    r = 0
    bit = 1 << 62
    while bit > v:
        bit >>= 2
    while bit:
        if v >= r + bit:
            v -= r + bit
            r = (r >> 1) + bit
        else:
            r >>= 1
        bit >>= 2
    return r


def log2q(v):
    """Log2Q(v), 1 <= v < 2^63: 256 * p + LOG2_TABLE[the 6 bits after the leading one at bit p]."""
    assert 1 <= v <= INT64_MAX
    p = 0
    while (v >> (p + 1)) != 0:     # a count-leading-zeros instruction on the device
        p += 1
    if p >= 6:
        idx = (v >> (p - 6)) & 63
    else:
        idx = (v << (6 - p)) & 63
    return 256 * p + LOG2_TABLE[idx]


def _bitrev(i, bits):
    r = 0
    for _ in range(bits):
        r = (r << 1) | (i & 1)
        i >>= 1
    return r


def fft_q15(v, tw, log2n):
    """The Q15 radix-2 DIT FFT of real int values v (len n), twiddles tw[k] = (wr, wi). Returns (re, im)."""
    n = len(v)
    re = [0] * n
    im = [0] * n
    for i in range(n):
        re[_bitrev(i, log2n)] = v[i]
    h = 1
    while h < n:
        step = n // (2 * h)
        for start in range(0, n, 2 * h):
            for j in range(h):
                wr, wi = tw[j * step]
                p = start + j
                q = p + h
                tr = rdp(_i32(re[q] * wr), 15) - rdp(_i32(im[q] * wi), 15)
                ti = rdp(_i32(re[q] * wi), 15) + rdp(_i32(im[q] * wr), 15)
                ar, ai = re[p], im[p]
                re[p] = rdp(_i32(ar + tr), 1)
                re[q] = rdp(_i32(ar - tr), 1)
                im[p] = rdp(_i32(ai + ti), 1)
                im[q] = rdp(_i32(ai - ti), 1)
        h *= 2
    return re, im


def parse(spec):
    """The spec bytes as a dict of plain values (docs/features.md, "Bytes"); minimal checks."""
    (magic, version, hsize, total, length, channels, n_features, n_blocks, flags, fs, scale,
     zp) = struct.unpack_from("<4sHHIHHHBBffi", spec, 0)
    assert magic == b"MPFS" and version == 1 and total == len(spec)
    pos = hsize
    if flags & 2:  # channel names
        for _ in range(channels):
            pos += 1 + spec[pos]
        pos += (4 - pos % 4) % 4
    blocks = []
    for _ in range(n_blocks):
        kind, n_sel, n_slots, n_feat, _r, size = struct.unpack_from("<BBHHHI", spec, pos)
        end = pos + size
        p = pos + 12
        b = {"kind": kind, "channels": list(spec[p:p + n_sel]), "n_slots": n_slots, "n_features": n_feat}
        p += n_sel + (4 - n_sel % 4) % 4
        if kind == 1:
            b["decimate"] = struct.unpack_from("<H", spec, p)[0]
        elif kind == 2:
            ns = spec[p]
            b["stats"] = list(spec[p + 1:p + 1 + ns])
        elif kind == 3:
            n, log2n, bflags, nbands, _ = struct.unpack_from("<HBBHH", spec, p)
            p += 8
            b["n"], b["log2n"], b["remove_mean"] = n, log2n, bool(bflags & 1)
            b["window"] = list(struct.unpack_from("<%dH" % n, spec, p))
            p += 2 * n
            t = struct.unpack_from("<%dh" % n, spec, p)
            b["twiddles"] = [(t[2 * k], t[2 * k + 1]) for k in range(n // 2)]
            p += 2 * n
            e = struct.unpack_from("<%dH" % (2 * nbands), spec, p)
            b["bands"] = [(e[2 * k], e[2 * k + 1]) for k in range(nbands)]
        q0 = end - 12 * n_slots
        b["quant"] = [struct.unpack_from("<iii", spec, q0 + 12 * s) for s in range(n_slots)]
        blocks.append(b)
        pos = end
    return {"length": length, "channels": channels, "n_features": n_features, "fitted": bool(flags & 1),
            "input_scale": scale, "input_zero_point": zp, "blocks": blocks}


def _stats(col, codes):
    n = len(col)
    s = 0
    q = 0
    for x in col:
        s += x
        q += x * x
    _i32(s)
    _i64(q)
    mean = div_round(16 * s, n)
    out = []
    for code in codes:
        if code == 1:    # mean, 1/16 count
            out.append(mean)
        elif code == 2:  # std, 1/16 count
            out.append(div_round(16 * isqrt(_i64(n * q - s * s)), n))
        elif code == 3:  # min
            out.append(min(col))
        elif code == 4:  # max
            out.append(max(col))
        elif code == 5:  # rms, 1/16 count
            out.append(div_round(16 * isqrt(_i64(n * q)), n))
        elif code == 6:  # zero crossings around the mean
            z = 0
            prev = 16 * col[0] >= mean
            for x in col[1:]:
                cur = 16 * x >= mean
                if cur != prev:
                    z += 1
                prev = cur
            out.append(z)
        elif code == 7:  # peak to peak
            out.append(max(col) - min(col))
    return out


def _bands(col, b):
    n = b["n"]
    energy = [0] * len(b["bands"])
    for f in range(len(col) // n):
        frame = col[f * n:(f + 1) * n]
        m = div_round(sum(frame), n) if b["remove_mean"] else 0
        v = [rdp(_i32((x - m) * w), 16) for x, w in zip(frame, b["window"])]
        re, im = fft_q15(v, b["twiddles"], b["log2n"])
        power = [_i32(re[k] * re[k] + im[k] * im[k]) for k in range(n // 2 + 1)]
        for j, (lo, hi) in enumerate(b["bands"]):
            for k in range(lo, hi):
                energy[j] += power[k]
    return [log2q(_i64(e + 1)) for e in energy]


def features(spec, window):
    """Integer features (a list) of one window: `window[t][c]` int16 values, t < length, c < channels."""
    s = parse(spec)
    length = s["length"]
    assert len(window) == length
    out = []
    for b in s["blocks"]:
        cols = [[int(window[t][c]) for t in range(length)] for c in b["channels"]]
        if b["kind"] == 1:
            d = b["decimate"]
            for t in range(length // d):
                for col in cols:
                    out.append(div_round(sum(col[t * d:(t + 1) * d]), d))
        elif b["kind"] == 2:
            for col in cols:
                out.extend(_stats(col, b["stats"]))
        elif b["kind"] == 3:
            for col in cols:
                out.extend(_bands(col, b))
    assert len(out) == s["n_features"]
    return [_i32(v) for v in out]


def quantize(spec, feats):
    """int8 model inputs (a list) from the integer features of one window."""
    s = parse(spec)
    zp = s["input_zero_point"]
    out = []
    k = 0
    for b in s["blocks"]:
        for j in range(b["n_features"]):
            slot = j % b["n_slots"] if b["kind"] == 1 else j
            offset, m, shift = b["quant"][slot]
            q = mbqm(_i32(feats[k] - offset), m, shift) + zp
            out.append(-128 if q < -128 else 127 if q > 127 else q)
            k += 1
    return out
