# mpml feature kernels in viper: mpml.featurize's fallback when the C module
# (firmware/kernels/features.c, feature_bands.c) is not on the board.
#
# Same functions and arguments as the C module's fx_* (docs/features.md is
# the arithmetic):
#   fx_raw(p, x, f)      p = [L, C, k, off, decimate, ch...]
#   fx_stats(p, x, f)    p = [L, C, k, off, n_stats, codes..., ch...]
#   fx_bands(p, x, tab, work, f)
#                        p = [L, C, k, off, n, log2 n, remove_mean, n_bands, ch...]
#                        tab: window u16[n], twiddles i16[n], bands u16[2 n_bands] (a bytearray)
#                        work: a bytearray of at least 2n + 2 n_bands int32
#   fx_quant(p, f, slots, sidx, out)
#                        p = [n, zero_point]; slots: (offset, multiplier, shift) int32
#                        triples; sidx: array('H') slot of each feature
# x: array('h') window, x[t*C + c]; f: array('i') features, block at f[off..].
# mpml.featurize checked every parameter and sized every buffer; these
# trust it.
#
# Viper integers are machine words: 32 bits on Cortex-M, RISC-V and Xtensa,
# 64 on x64. Each value here stays within 31 bits (docs/features.md gives the
# bounds), so both give the same numbers; the 64-bit quantities of the doc
# (sum of squares, band energies, L*Q - S^2) are kept in 15-bit limbs.
# 16-bit loads are zero-extended, so int16 values are sign-extended with
# (v ^ 0x8000) - 0x8000, and int32 loads on a 64-bit word with (v << S) >> S.
# No constant reaches 2**30 (it would be a heap object on a 32-bit port), and
# nothing is returned from viper (large ints would be boxed): all results go
# to buffers, so nothing is allocated per window.

import micropython

_LOG2 = bytes((0, 6, 11, 17, 22, 28, 33, 38, 44, 49, 54, 59, 63, 68, 73, 78, 82, 87, 92, 96, 100, 105,
               109, 113, 118, 122, 126, 130, 134, 138, 142, 146, 150, 154, 157, 161, 165, 169, 172, 176,
               179, 183, 186, 190, 193, 197, 200, 203, 207, 210, 213, 216, 220, 223, 226, 229, 232, 235,
               238, 241, 244, 247, 250, 253))


@micropython.viper
def _word_shift() -> int:
    one = 1
    x = one << 31
    if x < 0:
        return 0  # 32-bit word: 1 << 31 is INT32_MIN
    return 32


_S = _word_shift()


@micropython.viper
def _vraw(p: ptr32, x: ptr16, f: ptr32):
    L = p[0]
    C = p[1]
    k = p[2]
    o = p[3]
    d = p[4]
    half = d >> 1
    step = d * C
    for t in range(L // d):
        base = t * step
        for j in range(k):
            i = base + p[5 + j]
            s = 0
            for _ in range(d):
                s += (x[i] ^ 0x8000) - 0x8000
                i += C
            if d > 1:  # DivRound(s, d); |s| <= d * 32768 < 2^31
                if s >= 0:
                    s = (s + half) // d
                else:
                    s = 0 - ((half - s) // d)
            f[o] = s
            o += 1


# Scratch words of the stats (w below): 0 root, 1 std, 2 rms, 3 low and
# 4 high limb of Q, 5 S, 6 and 7 the radicand's limbs. Values travel through
# it, not as arguments: an int argument of 2^30 would be boxed on the heap.


@micropython.viper
def _vdiv16(wo, i: int, n: int):
    # w[i] = DivRound(16 w[i], n) for |w[i]| <= 2^30, 1 <= n <= 32768, without
    # forming 16 w[i] (2^34): w[i] = q n + r, so 16 w[i] + n/2 = 16 q n + (16 r + n/2).
    w = ptr32(wo)
    S = int(_S)
    s = (w[i] << S) >> S
    neg = 0
    if s < 0:
        s = 0 - s
        neg = 1
    q = s // n
    r = s - q * n
    v = (q << 4) + ((r << 4) + (n >> 1)) // n
    if neg:
        v = 0 - v
    w[i] = v


@micropython.viper
def _vroot(wo):
    # w[0] = ISqrt(w[6] * 2^30 + w[7]), w[6] < 2^31, 0 <= w[7] < 2^30.
    # floor(sqrt(V)) >> 15 == ISqrt(w[6]): take that (16 bits), then the 15
    # low bits one at a time, testing (rh 2^15 + c)^2 <= V as
    # 2^16 rh c + c^2 <= e 2^30 + vl with e = vh - rh^2, in two 30-bit limbs.
    w = ptr32(wo)
    vh = w[6]
    vl = w[7]
    rh = 0
    b = 1 << 15
    while b:
        c = rh | b
        if c <= 46340 and c * c <= vh:  # 46341^2 > 2^31
            rh = c
        b >>= 1
    e = vh - rh * rh
    m30 = (1 << 30) - 1
    rl = 0
    b = 1 << 14
    while b:
        c = rl | b
        pp = rh * c  # < 46341 * 2^15 < 2^31
        lo = ((pp & 0x3FFF) << 16) + c * c
        hi = (pp >> 14) + (lo >> 30)
        lo = lo & m30
        if hi < e or (hi == e and lo <= vl):
            rl = c
        b >>= 1
    w[0] = (rh << 15) | rl


@micropython.viper
def _vstat_roots(wo, L: int):
    # w[1] = DivRound(16 ISqrt(L Q - S^2), L) (std), w[2] = DivRound(16 ISqrt(L Q), L)
    # (rms), with Q = w[4] 2^15 + w[3] (w[3] < 2^15, w[4] <= 2^30), S = w[5],
    # L <= 2^15; in 15-bit limbs, every product below 2^31.
    w = ptr32(wo)
    S = int(_S)
    M = 0x7FFF
    ql = w[3]
    qh = w[4]
    s = (w[5] << S) >> S
    q1 = qh & M
    q2 = qh >> 15
    t = L * ql
    a0 = t & M
    t = L * q1 + (t >> 15)
    a1 = t & M
    t = L * q2 + (t >> 15)
    a2 = t & M
    a3 = t >> 15
    # rms: V = L Q
    w[6] = (a3 << 15) | a2
    w[7] = (a1 << 15) | a0
    _vroot(wo)
    w[2] = w[0]
    _vdiv16(wo, 2, L)
    # S^2 with |S| = s1 2^15 + s0
    if s < 0:
        s = 0 - s
    s0 = s & M
    s1 = s >> 15
    t = s0 * s0
    b0 = t & M
    m = s0 * s1
    t = (t >> 15) + ((m & M) << 1)
    b1 = t & M
    u = s1 * s1
    t = (t >> 15) + ((m >> 15) << 1) + (u & M)
    b2 = t & M
    b3 = (t >> 15) + (u >> 15)
    # V = L Q - S^2 >= 0, limb by limb with borrows
    d0 = a0 - b0
    br = 0
    if d0 < 0:
        d0 += 1 << 15
        br = 1
    d1 = a1 - b1 - br
    br = 0
    if d1 < 0:
        d1 += 1 << 15
        br = 1
    d2 = a2 - b2 - br
    br = 0
    if d2 < 0:
        d2 += 1 << 15
        br = 1
    d3 = a3 - b3 - br
    w[6] = (d3 << 15) | d2
    w[7] = (d1 << 15) | d0
    _vroot(wo)
    w[1] = w[0]
    _vdiv16(wo, 1, L)


@micropython.viper
def _vstats(p: ptr32, x: ptr16, f: ptr32, wo):
    w = ptr32(wo)
    S = int(_S)
    L = p[0]
    C = p[1]
    k = p[2]
    o = p[3]
    ns = p[4]
    need_roots = 0
    need_zc = 0
    for i in range(ns):
        code = p[5 + i]
        if code == 2 or code == 5:
            need_roots = 1
        if code == 6:
            need_zc = 1
    for j in range(k):
        c = p[5 + ns + j]
        s = 0
        ql = 0
        qh = 0
        mn = 32767
        mx = 0 - 32768
        i = c
        for _ in range(L):
            v = (x[i] ^ 0x8000) - 0x8000
            s += v
            v2 = v * v  # <= 2^30
            ql += v2 & 0x7FFF
            qh += v2 >> 15
            if v < mn:
                mn = v
            if v > mx:
                mx = v
            i += C
        w[3] = ql & 0x7FFF
        w[4] = qh + (ql >> 15)
        w[5] = s
        if need_roots:
            _vstat_roots(wo, L)
        w[8] = s
        _vdiv16(wo, 8, L)
        mean = (w[8] << S) >> S
        zc = 0
        if need_zc:
            i = c
            prev = 0
            if ((x[i] ^ 0x8000) - 0x8000) << 4 >= mean:
                prev = 1
            for _ in range(L - 1):
                i += C
                cur = 0
                if ((x[i] ^ 0x8000) - 0x8000) << 4 >= mean:
                    cur = 1
                if cur != prev:
                    zc += 1
                prev = cur
        for t in range(ns):
            code = p[5 + t]
            if code == 1:
                v = mean
            elif code == 2:
                v = w[1]
            elif code == 3:
                v = mn
            elif code == 4:
                v = mx
            elif code == 5:
                v = w[2]
            elif code == 6:
                v = zc
            else:
                v = mx - mn
            f[o] = v
            o += 1


@micropython.viper
def _vfft(wo, tabo, n: int):
    # The Q15 radix-2 DIT FFT in place on re = w[0..n), im = w[n..2n), input
    # already in bit-reversed order (docs/features.md step 3); the twiddles
    # (wr, wi) of index k are tab[n + 2k], tab[n + 2k + 1].
    w = ptr32(wo)
    tab = ptr16(tabo)
    S = int(_S)
    # Stage 1 (h = 1) reads no imaginary part (all 0, and RDP(0, 15) = 0).
    wr = (tab[n] ^ 0x8000) - 0x8000
    wi = (tab[n + 1] ^ 0x8000) - 0x8000
    a = 0
    while a < n:
        ar = (w[a] << S) >> S
        br = (w[a + 1] << S) >> S
        # RDP(x, 15) = (x + 2^14 - (x < 0)) >> 15
        t = br * wr
        if t < 0:
            t -= 1
        tr = (t + 0x4000) >> 15
        t = br * wi
        if t < 0:
            t -= 1
        tq = (t + 0x4000) >> 15
        # RDP(y, 1) = (y + (y >= 0)) >> 1
        y = ar + tr
        if y >= 0:
            y += 1
        w[a] = y >> 1
        y = ar - tr
        if y >= 0:
            y += 1
        w[a + 1] = y >> 1
        y = tq
        if y >= 0:
            y += 1
        w[n + a] = y >> 1
        y = 0 - tq
        if y >= 0:
            y += 1
        w[n + a + 1] = y >> 1
        a += 2
    h = 2
    step = n >> 1  # 2 * n / (2h): halfwords between the twiddles of one stage
    while h < n:
        h2 = h << 1
        j = 0
        at = n
        while j < h:
            wr = (tab[at] ^ 0x8000) - 0x8000
            wi = (tab[at + 1] ^ 0x8000) - 0x8000
            a = j
            while a < n:
                b = a + h
                br = (w[b] << S) >> S
                bi = (w[n + b] << S) >> S
                t = br * wr
                if t < 0:
                    t -= 1
                u = bi * wi
                if u < 0:
                    u -= 1
                tr = ((t + 0x4000) >> 15) - ((u + 0x4000) >> 15)
                t = br * wi
                if t < 0:
                    t -= 1
                u = bi * wr
                if u < 0:
                    u -= 1
                tq = ((t + 0x4000) >> 15) + ((u + 0x4000) >> 15)
                ar = (w[a] << S) >> S
                ai = (w[n + a] << S) >> S
                y = ar + tr
                if y >= 0:
                    y += 1
                w[a] = y >> 1
                y = ar - tr
                if y >= 0:
                    y += 1
                w[b] = y >> 1
                y = ai + tq
                if y >= 0:
                    y += 1
                w[n + a] = y >> 1
                y = ai - tq
                if y >= 0:
                    y += 1
                w[n + b] = y >> 1
                a += h2
            j += 1
            at += step
        h = h2
        step >>= 1


@micropython.viper
def _vbands(p: ptr32, x: ptr16, tabo, wo, f: ptr32):
    tab = ptr16(tabo)
    w = ptr32(wo)
    S = int(_S)
    lg2 = ptr8(_LOG2)
    L = p[0]
    C = p[1]
    k = p[2]
    o = p[3]
    n = p[4]
    lg = p[5]
    rm = p[6]
    nb = p[7]
    frames = L >> lg
    half = n >> 1
    eb = n << 1  # band energies: (low 15 bits, high part) pairs at w[2n..]
    bt = n << 1  # bands at tab[2n..]
    for j in range(k):
        c = p[8 + j]
        for i in range(nb << 1):
            w[eb + i] = 0
        for fr in range(frames):
            start = fr * n * C + c
            m = 0
            if rm:  # DivRound(sum, n), n = 2^lg
                s = 0
                i = start
                for _ in range(n):
                    s += (x[i] ^ 0x8000) - 0x8000
                    i += C
                if s >= 0:
                    m = (s + half) >> lg
                else:
                    m = 0 - ((half - s) >> lg)
            # window, RDP(., 16) (overflow-free form), into bit-reversed order
            i = start
            r = 0
            for t in range(n):
                v = ((x[i] ^ 0x8000) - 0x8000 - m) * tab[t]  # < 65536 * 32768
                y = v >> 16
                if v < 0:
                    if (v & 0xFFFF) > 0x8000:
                        y += 1
                elif (v & 0xFFFF) > 0x7FFF:
                    y += 1
                w[r] = y
                w[n + r] = 0
                i += C
                bit = half
                while r & bit:
                    r ^= bit
                    bit >>= 1
                r |= bit
            _vfft(wo, tabo, n)
            # power of the bins the bands use, summed in limbs (P < 2^31)
            for b in range(nb):
                lo = tab[bt + 2 * b]
                hi = tab[bt + 2 * b + 1]
                el = 0
                eh = 0
                for kk in range(lo, hi):
                    re = (w[kk] << S) >> S
                    im = (w[n + kk] << S) >> S
                    pw = re * re + im * im
                    el += pw & 0x7FFF
                    eh += pw >> 15
                w[eb + 2 * b] += el
                w[eb + 2 * b + 1] += eh
        for b in range(nb):
            # Log2Q(E + 1), E = eh 2^15 + el
            el = w[eb + 2 * b] + 1
            eh = w[eb + 2 * b + 1] + (el >> 15)
            el = el & 0x7FFF
            if eh:
                pos = 15
                t = eh
            else:
                pos = 0
                t = el
            while t > 1:
                t >>= 1
                pos += 1
            sh = pos - 6
            if sh >= 15:
                idx = (eh >> (sh - 15)) & 63
            elif sh >= 0:
                idx = (((eh << 15) | el) >> sh) & 63
            else:
                idx = (el << (0 - sh)) & 63
            f[o] = (pos << 8) + lg2[idx]
            o += 1


@micropython.viper
def _vquant(p: ptr32, f: ptr32, sl: ptr32, sidx: ptr16, y: ptr8):
    # clamp(MultiplyByQuantizedMultiplier(f - offset, m, shift) + zp), the
    # SRDHM from 16- and 8-bit pieces as mpml._viper does (its _mbqm_doc).
    S = int(_S)
    n = p[0]
    zp = (p[1] << S) >> S
    imin = int(-0x3FFFFFFF) - 0x3FFFFFFF - 2
    imax = int(0x3FFFFFFF) + 0x3FFFFFFF + 1
    for i in range(n):
        k = sidx[i] * 3
        a = ((((f[i] << S) >> S) - ((sl[k] << S) >> S)) << S) >> S
        m = (sl[k + 1] << S) >> S
        sh = (sl[k + 2] << S) >> S
        if sh > 31:
            sh = 31
        elif sh < -31:
            sh = -31
        rt = 0
        if sh > 0:
            a = ((a << sh) << S) >> S
        else:
            rt = 0 - sh
        if a == m and a == imin:
            v = imax
        else:
            ah = a >> 16
            al = a & 0xFFFF
            ab = al >> 8
            aa = al & 0xFF
            mh = m >> 16
            ml = m & 0xFFFF
            t = ab * ml
            s0 = aa * ml + ((t & 0xFF) << 8)
            t1 = ah * ml
            t2 = (ab * mh) << 8
            t3 = aa * mh + (s0 >> 16) + (t >> 8) + 0x4000
            v = ((ah * mh) << 1) + (t1 >> 15) + (t2 >> 15) + (t3 >> 15) + (
                ((t1 & 0x7FFF) + (t2 & 0x7FFF) + (t3 & 0x7FFF)) >> 15)
        if rt > 0:
            mk = (1 << rt) - 1
            rm = v & mk
            th = (mk >> 1) - (v >> 31)
            v = v >> rt
            if rm > th:
                v += 1
        v = ((v + zp) << S) >> S
        if v < -128:
            v = -128
        if v > 127:
            v = 127
        y[i] = v


# scratch of the stats (see _vdiv16), shared: viper code runs to completion
_sw = bytearray(4 * 10)

fx_raw = _vraw
fx_bands = _vbands
fx_quant = _vquant


def fx_stats(p, x, f):
    _vstats(p, x, f, _sw)
