# mpml kernels in viper: the fallback when no native module fits the board.
#
# Same functions, arguments and results as mpml._pure and the C module
# (docs/ops.md): kernel(p, *buffers), p an array('i') of the op's params.
# Each kernel is a small Python function that checks its buffers against the
# sizes ops.slot_sizes() gives (exact Python integers, no allocation for real
# models) and then calls a viper function that does the work.
#
# Viper integers are machine words: 32 bits on Cortex-M, RISC-V and Xtensa,
# 64 bits on x64. Every kernel gives the same bytes on both:
# - int32 values loaded through ptr32 are sign-extended with (v << _S) >> _S,
#   _S being 32 on a 64-bit word and 0 on a 32-bit one (a 64-bit viper loads
#   them zero-extended), and sums that C keeps in int32 are wrapped the same way;
# - SaturatingRoundingDoublingHighMul needs the 64-bit product a*b. It is
#   computed from 16- and 8-bit pieces whose partial products all fit 31 bits,
#   so it is exact on both word sizes (derivation at _mbqm_doc below);
# - no constant above 2**30 - 1 appears in viper code (on 32-bit ports it would
#   be a heap object): INT32_MIN and friends are built by arithmetic.
# Results never leave viper as return values (a 32-bit port would box large
# ones on the heap): everything is written to buffers, so run() allocates
# nothing.

import micropython

# The viper kernels (functions starting with _v) trust their callers, the
# checked wrappers below; never call them with unchecked buffers.


@micropython.viper
def _word_shift() -> int:
    one = 1
    x = one << 31
    if x < 0:
        return 0  # 32-bit word: 1 << 31 is INT32_MIN
    return 32


_S = _word_shift()

# _mbqm_doc: MultiplyByQuantizedMultiplier(a, m, sh), written out inline in
# each kernel (a viper call per value would cost more than the arithmetic).
#
#   if sh > 0: a = wrap32(a << sh)
#   SRDHM: TFLM's nudge then truncating division equals, for every sign,
#       floor((a*m + 2**30) / 2**31)
#   With a = ah*2**16 + a1*2**8 + a0 (ah signed, a1 and a0 bytes) and
#   m = mh*2**16 + ml (mh signed, ml 16 bits):
#       a*m + 2**30 = 2**16 * Z + r0, 0 <= r0 < 2**16, where
#       t = a1*ml, s0 = a0*ml + (t & 0xFF) << 8,
#       Z = ah*mh*2**16 + ah*ml + (a1*mh) << 8 + a0*mh + (s0 >> 16) + (t >> 8) + 2**14
#   so the result is floor(Z / 2**15) = 2*ah*mh + sum(t_i >> 15)
#   + (sum(t_i & 0x7FFF) >> 15) over the three smaller terms t_i of Z. Every
#   partial product is below 2**31 in magnitude; only 2*ah*mh can reach 2**31,
#   and a 32-bit word then wraps it back to the exact (in-range) result.
#   a == m == INT32_MIN saturates to INT32_MAX.
#   RoundingDivideByPOT(v, -sh) when sh < 0.


@micropython.viper
def _vrq(acc: ptr32, bias: ptr32, mult: ptr32, shift: ptr32, y: ptr8, o0: int, r: int, yo: int,
         ooff: int, amin: int, amax: int):
    # Requantize r accumulators of output channels o0.. into y[yo..]:
    # acc[j] = sum(x*w) or sum(x*u) with acc[8] = sum(x) for offset-binary u.
    S = int(_S)
    imin = int(-0x3FFFFFFF) - 0x3FFFFFFF - 2
    imax = int(0x3FFFFFFF) + 0x3FFFFFFF + 1
    sx = ((acc[8] << S) >> S) << 7
    for j in range(r):
        o = o0 + j
        a = ((acc[j] << S) >> S) + ((bias[o] << S) >> S) - sx
        a = (a << S) >> S
        m = (mult[o] << S) >> S
        sh = (shift[o] << S) >> S
        # MultiplyByQuantizedMultiplier(a, m, sh), see _mbqm_doc; shifts beyond
        # +-31 (hostile blobs only) are clamped, as the other backends do
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
        v = ((v + ooff) << S) >> S
        if v < amin:
            v = amin
        if v > amax:
            v = amax
        y[yo + j] = v


@micropython.viper
def _vfc_block(x: ptr8, w: ptr8, acc: ptr32, xb: int, ni: int, wp: int, r: int):
    # acc[j] = sum_i x[xb+i] * u[o0+j, i] for the block's r channels (blocked
    # layout: byte wp + i*r + j), acc[8] = sum_i x[xb+i].
    xe = xb + ni
    s = 0
    if r == 8:
        a0 = 0
        a1 = 0
        a2 = 0
        a3 = 0
        a4 = 0
        a5 = 0
        a6 = 0
        a7 = 0
        i = xb
        while i < xe:
            v = (x[i] ^ 0x80) - 0x80
            s += v
            a0 += v * w[wp]
            a1 += v * w[wp + 1]
            a2 += v * w[wp + 2]
            a3 += v * w[wp + 3]
            a4 += v * w[wp + 4]
            a5 += v * w[wp + 5]
            a6 += v * w[wp + 6]
            a7 += v * w[wp + 7]
            wp += 8
            i += 1
        acc[0] = a0
        acc[1] = a1
        acc[2] = a2
        acc[3] = a3
        acc[4] = a4
        acc[5] = a5
        acc[6] = a6
        acc[7] = a7
    else:
        for j in range(r):
            acc[j] = 0
        i = xb
        while i < xe:
            v = (x[i] ^ 0x80) - 0x80
            s += v
            for j in range(r):
                acc[j] = acc[j] + v * w[wp + j]
            wp += r
            i += 1
    acc[8] = s


@micropython.viper
def _vfc(p: ptr32, x, w, acc, bias, mult, shift, y):
    S = int(_S)
    nb = p[0]
    ni = p[1]
    no = p[2]
    ooff = (p[3] << S) >> S
    amin = (p[4] << S) >> S
    amax = (p[5] << S) >> S
    for bt in range(nb):
        wp = 0
        o0 = 0
        while o0 < no:
            r = no - o0
            if r > 8:
                r = 8
            _vfc_block(x, w, acc, bt * ni, ni, wp, r)
            _vrq(acc, bias, mult, shift, y, o0, r, bt * no + o0, ooff, amin, amax)
            wp += r * ni
            o0 += r


@micropython.viper
def _vconv_block(p: ptr32, x: ptr8, w: ptr8, acc: ptr32, bt: int, y0: int, x0: int, wp: int, r: int):
    # As _vfc_block over the taps (fy, fx, c) of the output pixel whose window
    # starts at (y0, x0); taps outside the input read in_zp.
    S = int(_S)
    ih = p[1]
    iw = p[2]
    ic = p[3]
    kh = p[7]
    kw = p[8]
    dh = p[11]
    dw = p[12]
    zp = ((p[15] & 0xFF) ^ 0x80) - 0x80  # in_zp is an int8
    s = 0
    if r == 8:
        a0 = 0
        a1 = 0
        a2 = 0
        a3 = 0
        a4 = 0
        a5 = 0
        a6 = 0
        a7 = 0
        for fy in range(kh):
            iy = y0 + fy * dh
            for fx in range(kw):
                ix = x0 + fx * dw
                if iy >= 0 and iy < ih and ix >= 0 and ix < iw:
                    xp = ((bt * ih + iy) * iw + ix) * ic
                    xe = xp + ic
                    while xp < xe:
                        v = (x[xp] ^ 0x80) - 0x80
                        s += v
                        a0 += v * w[wp]
                        a1 += v * w[wp + 1]
                        a2 += v * w[wp + 2]
                        a3 += v * w[wp + 3]
                        a4 += v * w[wp + 4]
                        a5 += v * w[wp + 5]
                        a6 += v * w[wp + 6]
                        a7 += v * w[wp + 7]
                        wp += 8
                        xp += 1
                else:
                    s += zp * ic
                    we = wp + 8 * ic
                    while wp < we:
                        a0 += zp * w[wp]
                        a1 += zp * w[wp + 1]
                        a2 += zp * w[wp + 2]
                        a3 += zp * w[wp + 3]
                        a4 += zp * w[wp + 4]
                        a5 += zp * w[wp + 5]
                        a6 += zp * w[wp + 6]
                        a7 += zp * w[wp + 7]
                        wp += 8
        acc[0] = a0
        acc[1] = a1
        acc[2] = a2
        acc[3] = a3
        acc[4] = a4
        acc[5] = a5
        acc[6] = a6
        acc[7] = a7
    else:
        for j in range(r):
            acc[j] = 0
        for fy in range(kh):
            iy = y0 + fy * dh
            for fx in range(kw):
                ix = x0 + fx * dw
                inside = 0
                if iy >= 0 and iy < ih and ix >= 0 and ix < iw:
                    inside = 1
                xp = ((bt * ih + iy) * iw + ix) * ic
                for c in range(ic):
                    v = zp
                    if inside:
                        v = (x[xp + c] ^ 0x80) - 0x80
                    s += v
                    for j in range(r):
                        acc[j] = acc[j] + v * w[wp + j]
                    wp += r
    acc[8] = s


@micropython.viper
def _vconv(p: ptr32, x, w, acc, bias, mult, shift, y):
    S = int(_S)
    nb = p[0]
    ih = p[1]
    iw = p[2]
    ic = p[3]
    oh = p[4]
    ow = p[5]
    oc = p[6]
    k = p[7] * p[8] * ic
    sth = p[9]
    stw = p[10]
    pt = (p[13] << S) >> S
    pl = (p[14] << S) >> S
    ooff = (p[16] << S) >> S
    amin = (p[17] << S) >> S
    amax = (p[18] << S) >> S
    yp = 0
    for bt in range(nb):
        for oy in range(oh):
            y0 = oy * sth - pt
            for ox in range(ow):
                x0 = ox * stw - pl
                wp = 0
                o0 = 0
                while o0 < oc:
                    r = oc - o0
                    if r > 8:
                        r = 8
                    _vconv_block(p, x, w, acc, bt, y0, x0, wp, r)
                    _vrq(acc, bias, mult, shift, y, o0, r, yp + o0, ooff, amin, amax)
                    wp += r * k
                    o0 += r
                yp += oc


@micropython.viper
def _vdw_block(p: ptr32, x: ptr8, w: ptr8, acc: ptr32, bt: int, y0: int, x0: int, o0: int, r: int,
               c: int, m: int):
    # acc[j] = sum over taps of x~[c] * w[fy, fx, o] for o = o0 + j, where
    # o = c * depth_mult + m; acc[8] = 0 (signed weights: no correction).
    S = int(_S)
    ih = p[1]
    iw = p[2]
    ic = p[3]
    oc = p[6]
    kh = p[7]
    kw = p[8]
    dh = p[11]
    dw = p[12]
    dm = p[15]
    zp = ((p[16] & 0xFF) ^ 0x80) - 0x80  # in_zp is an int8
    # o0 = c * dm + m
    for j in range(r):
        o = o0 + j
        a = 0
        for fy in range(kh):
            iy = y0 + fy * dh
            wp = fy * kw * oc + o
            if iy >= 0 and iy < ih:
                xp = ((bt * ih + iy) * iw) * ic + c
                for fx in range(kw):
                    ix = x0 + fx * dw
                    v = zp
                    if ix >= 0 and ix < iw:
                        v = (x[xp + ix * ic] ^ 0x80) - 0x80
                    a += v * ((w[wp] ^ 0x80) - 0x80)
                    wp += oc
            else:
                for fx in range(kw):
                    a += zp * ((w[wp] ^ 0x80) - 0x80)
                    wp += oc
        acc[j] = a
        m += 1
        if m == dm:
            m = 0
            c += 1
    acc[8] = 0


@micropython.viper
def _vdw(p: ptr32, x, w, acc, bias, mult, shift, y):
    S = int(_S)
    nb = p[0]
    oh = p[4]
    ow = p[5]
    oc = p[6]
    sth = p[9]
    stw = p[10]
    pt = (p[13] << S) >> S
    pl = (p[14] << S) >> S
    ooff = (p[17] << S) >> S
    amin = (p[18] << S) >> S
    amax = (p[19] << S) >> S
    dm = p[15]
    yp = 0
    for bt in range(nb):
        for oy in range(oh):
            y0 = oy * sth - pt
            for ox in range(ow):
                x0 = ox * stw - pl
                o0 = 0
                c = 0
                m = 0
                while o0 < oc:
                    r = oc - o0
                    if r > 8:
                        r = 8
                    _vdw_block(p, x, w, acc, bt, y0, x0, o0, r, c, m)
                    _vrq(acc, bias, mult, shift, y, o0, r, yp + o0, ooff, amin, amax)
                    o0 += r
                    m += r
                    while m >= dm:
                        m -= dm
                        c += 1
                yp += oc


@micropython.viper
def _vpool(p: ptr32, x: ptr8, y: ptr8, is_max: int):
    S = int(_S)
    nb = p[0]
    ih = p[1]
    iw = p[2]
    ch = p[3]
    oh = p[4]
    ow = p[5]
    fh = p[6]
    fw = p[7]
    sth = p[8]
    stw = p[9]
    pt = (p[10] << S) >> S
    pl = (p[11] << S) >> S
    amin = (p[12] << S) >> S
    amax = (p[13] << S) >> S
    yp = 0
    for bt in range(nb):
        for oy in range(oh):
            # The clipped window [iy0, iy1) lies inside [0, ih) whatever the
            # params (hostile pads included): the loop bounds guarantee it.
            iy0 = oy * sth - pt
            iy1 = iy0 + fh
            if iy0 < 0:
                iy0 = 0
            if iy1 > ih:
                iy1 = ih
            for ox in range(ow):
                ix0 = ox * stw - pl
                ix1 = ix0 + fw
                if ix0 < 0:
                    ix0 = 0
                if ix1 > iw:
                    ix1 = iw
                for c in range(ch):
                    s = 0
                    n = 0
                    mx = -128
                    iy = iy0
                    while iy < iy1:
                        xp = ((bt * ih + iy) * iw + ix0) * ch + c
                        ix = ix0
                        while ix < ix1:
                            v = (x[xp] ^ 0x80) - 0x80
                            s += v
                            if v > mx:
                                mx = v
                            n += 1
                            xp += ch
                            ix += 1
                        iy += 1
                    if is_max:
                        v = mx
                    elif n == 0:
                        v = 0
                    else:
                        # (s +- n/2) / n truncating; |quotient| <= 128
                        neg = s < 0
                        if neg:
                            s = 0 - s
                        s += n >> 1
                        v = 0
                        b = 7
                        while b >= 0:
                            if (s >> b) >= n:
                                s -= n << b
                                v += 1 << b
                            b -= 1
                        if neg:
                            v = 0 - v
                    if v < amin:
                        v = amin
                    if v > amax:
                        v = amax
                    y[yp] = v
                    yp += 1


@micropython.viper
def _vadd(p: ptr32, x1: ptr8, x2: ptr8, y: ptr8):
    S = int(_S)
    n = p[0]
    off1 = (p[1] << S) >> S
    off2 = (p[2] << S) >> S
    ls = (p[3] << S) >> S
    if ls > 31:
        ls = 31
    elif ls < 0:
        ls = 0
    ooff = (p[10] << S) >> S
    amin = (p[11] << S) >> S
    amax = (p[12] << S) >> S
    imin = int(-0x3FFFFFFF) - 0x3FFFFFFF - 2
    imax = int(0x3FFFFFFF) + 0x3FFFFFFF + 1
    for i in range(n):
        s = 0
        for k in range(3):
            if k == 0:
                a = ((((x1[i] ^ 0x80) - 0x80 + off1) << ls) << S) >> S
                m = (p[4] << S) >> S
                sh = (p[5] << S) >> S
            elif k == 1:
                a = ((((x2[i] ^ 0x80) - 0x80 + off2) << ls) << S) >> S
                m = (p[6] << S) >> S
                sh = (p[7] << S) >> S
            else:
                a = (s << S) >> S
                m = (p[8] << S) >> S
                sh = (p[9] << S) >> S
            # MultiplyByQuantizedMultiplier(a, m, sh), see _mbqm_doc; shifts beyond
            # +-31 (hostile blobs only) are clamped, as the other backends do
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
            if k < 2:
                s += v
        v = ((v + ooff) << S) >> S
        if v < amin:
            v = amin
        if v > amax:
            v = amax
        y[i] = v


@micropython.viper
def _vrequant(p: ptr32, x: ptr8, y: ptr8):
    S = int(_S)
    n = p[0]
    izp = (p[1] << S) >> S
    ozp = (p[2] << S) >> S
    m = (p[3] << S) >> S
    sh = (p[4] << S) >> S
    imin = int(-0x3FFFFFFF) - 0x3FFFFFFF - 2
    imax = int(0x3FFFFFFF) + 0x3FFFFFFF + 1
    for i in range(n):
        a = (((x[i] ^ 0x80) - 0x80 - izp) << S) >> S
        # MultiplyByQuantizedMultiplier(a, m, sh), see _mbqm_doc; shifts beyond
        # +-31 (hostile blobs only) are clamped, as the other backends do
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
        v = ((v + ozp) << S) >> S
        if v < -128:
            v = -128
        if v > 127:
            v = 127
        y[i] = v


@micropython.viper
def _vrecip(sm: ptr32):
    # GetReciprocal(sm[0], 12) -> sm[1] = scale, sm[2] = bits + 31 - 8, the
    # shift that softmax's RoundingDivideByPOT then uses (docs/ops.md).
    S = int(_S)
    imin = int(-0x3FFFFFFF) - 0x3FFFFFFF - 2
    imax = int(0x3FFFFFFF) + 0x3FFFFFFF + 1
    one = 1
    total = (sm[0] << S) >> S
    h = 0  # CountLeadingZeros(uint32 total)
    while h < 32 and ((total >> (31 - h)) & 1) == 0:
        h += 1
    xm = (((total << h) + imin) << S) >> S  # (uint32 total << h) - 2**31
    # one_over_one_plus_x_for_x_in_0_1(xm), xm >= 0: half = (xm + 2**31) / 2
    half = (xm >> 1) + (one << 30)
    if xm == imin:
        half = -1  # only for a zero sum (hostile tables)
    # k = 0: x = 1515870810 + SRDHM(half, -1010580540); then three times
    # (k odd) t = 2**29 - SRDHM(half, x), (k even) x += SatShl(SRDHM(x, t), 2)
    xr = 0
    v = 0
    for k in range(7):
        if k == 0:
            a = half
            m = 0 - 0x3C3C3C3C
        elif k & 1:
            a = half
            m = xr
        else:
            a = xr
            m = (((one << 29) - v) << S) >> S
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
        if k == 0:
            xr = (((int(0x2D2D2D2D) << 1) + v) << S) >> S
        elif (k & 1) == 0:
            lim = (one << 29) - 1  # SatShl(v, 2)
            if v > lim:
                v = imax
            elif v < 0 - lim:
                v = imin
            else:
                v = v << 2
            xr = ((xr + v) << S) >> S
    lim = (one << 30) - 1  # scale = SatShl(x, 1)
    if xr > lim:
        xr = imax
    elif xr < 0 - lim:
        xr = imin
    else:
        xr = xr << 1
    sm[1] = xr
    sm[2] = 12 - h + 31 - 8


@micropython.viper
def _vsoftmax(p: ptr32, x: ptr8, est: ptr32, et: ptr32, y: ptr8, sm):
    S = int(_S)
    outer = p[0]
    depth = p[1]
    smp = ptr32(sm)
    imin = int(-0x3FFFFFFF) - 0x3FFFFFFF - 2
    imax = int(0x3FFFFFFF) + 0x3FFFFFFF + 1
    for row in range(outer):
        base = row * depth
        end = base + depth
        mx = -128
        i = base
        while i < end:
            v = (x[i] ^ 0x80) - 0x80
            if v > mx:
                mx = v
            i += 1
        total = 0
        i = base
        while i < end:
            total += (est[mx - ((x[i] ^ 0x80) - 0x80)] << S) >> S
            i += 1
        smp[0] = total
        _vrecip(sm)
        scale = (smp[1] << S) >> S
        rt = (smp[2] << S) >> S
        if rt > 31:
            rt = 31
        i = base
        while i < end:
            a = scale
            m = (et[mx - ((x[i] ^ 0x80) - 0x80)] << S) >> S
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
            v -= 128
            if v < -128:
                v = -128
            if v > 127:
                v = 127
            y[i] = v
            i += 1


@micropython.viper
def _vtable(n: int, x: ptr8, table: ptr8, y: ptr8):
    for i in range(n):
        y[i] = table[x[i] ^ 0x80]


@micropython.viper
def _vcopy(n: int, x: ptr8, y: ptr8):
    # memmove: the arena planner may overlap input and output
    if uint(x) < uint(y):
        i = n - 1
        while i >= 0:
            y[i] = x[i]
            i -= 1
    elif uint(x) != uint(y):
        for i in range(n):
            y[i] = x[i]


@micropython.viper
def _vtree(p: ptr32, x: ptr8, nodes: ptr8, roots: ptr8, leaves: ptr8, y: ptr32) -> int:
    # Returns 0, or an error code (1 node, 2 feature, 3 leaf, 4 cycle) for
    # the wrapper to raise: the checks are the bounds of every index.
    ntrees = p[0]
    nf = p[1]
    no = p[2]
    nn = p[3]
    nl = p[4]
    ib = p[5]
    for o in range(no):
        y[o] = 0
    for tr in range(ntrees):
        node = roots[2 * tr] | (roots[2 * tr + 1] << 8)
        steps = 0
        while (node & 0x8000) == 0:
            if node >= nn:
                return 1
            steps += 1
            if steps > nn:
                return 4
            q = node << 3
            thr = ((nodes[q] | (nodes[q + 1] << 8)) ^ 0x8000) - 0x8000
            f = nodes[q + 2] | (nodes[q + 3] << 8)
            if f >= nf:
                return 2
            if ib == 1:
                v = (x[f] ^ 0x80) - 0x80
            else:
                v = ((x[2 * f] | (x[2 * f + 1] << 8)) ^ 0x8000) - 0x8000
            if v <= thr:
                node = nodes[q + 4] | (nodes[q + 5] << 8)
            else:
                node = nodes[q + 6] | (nodes[q + 7] << 8)
        leaf = node & 0x7FFF
        if leaf >= nl:
            return 3
        q = leaf * no * 2
        for o in range(no):
            y[o] = y[o] + (((leaves[q] | (leaves[q + 1] << 8)) ^ 0x8000) - 0x8000)
            q += 2
    return 0


# Checked entry points: kernel(p, *buffers) as in docs/ops.md.

_ACC = bytearray(4 * 9)  # a block's int32 accumulators, then the input sum
_SM = bytearray(4 * 3)  # softmax: a row's exp sum, then its scale and shift
_MAX = 0x7FFF  # ops.MAX_DIM


def _too_small(op):
    raise ValueError(op + ": buffer too small for its params")


def _bad(op):
    raise ValueError(op + ": params out of range")


def fully_connected(p, input, weights, bias, mult, shift, output):
    if len(p) < 6:
        _bad("FULLY_CONNECTED")
    b = p[0]
    i = p[1]
    o = p[2]
    if not (0 < b <= _MAX and 0 < i <= _MAX and 0 < o <= _MAX):
        _bad("FULLY_CONNECTED")
    if (len(input) < b * i or len(weights) < o * i or len(bias) < 4 * o or len(mult) < 4 * o
            or len(shift) < 4 * o or len(output) < b * o):
        _too_small("FULLY_CONNECTED")
    _vfc(p, input, weights, _ACC, bias, mult, shift, output)


def _conv_check(op, p, n, input, weights, bias, mult, shift, output, depthwise):
    if len(p) < n:
        _bad(op)
    for k in range(13):
        if not 0 < p[k] <= _MAX:
            _bad(op)
    ic = p[3]
    oc = p[6]
    if depthwise:
        if p[15] * ic != oc:
            _bad(op)
        nw = p[7] * p[8] * oc
    else:
        nw = oc * p[7] * p[8] * ic
    if (len(input) < p[0] * p[1] * p[2] * ic or len(weights) < nw or len(bias) < 4 * oc
            or len(mult) < 4 * oc or len(shift) < 4 * oc or len(output) < p[0] * p[4] * p[5] * oc):
        _too_small(op)


def conv_2d(p, input, weights, bias, mult, shift, output):
    _conv_check("CONV_2D", p, 19, input, weights, bias, mult, shift, output, False)
    _vconv(p, input, weights, _ACC, bias, mult, shift, output)


def depthwise_conv_2d(p, input, weights, bias, mult, shift, output):
    _conv_check("DEPTHWISE_CONV_2D", p, 20, input, weights, bias, mult, shift, output, True)
    _vdw(p, input, weights, _ACC, bias, mult, shift, output)


def _pool(op, p, input, output, is_max):
    if len(p) < 14:
        _bad(op)
    for k in range(10):
        if not 0 < p[k] <= _MAX:
            _bad(op)
    if len(input) < p[0] * p[1] * p[2] * p[3] or len(output) < p[0] * p[4] * p[5] * p[3]:
        _too_small(op)
    _vpool(p, input, output, is_max)


def average_pool_2d(p, input, output):
    _pool("AVERAGE_POOL_2D", p, input, output, 0)


def max_pool_2d(p, input, output):
    _pool("MAX_POOL_2D", p, input, output, 1)


def _size(op, p, n_params):
    if len(p) < n_params:
        _bad(op)
    n = p[0]
    if not 0 < n <= _MAX:
        _bad(op)
    return n


def add(p, input1, input2, output):
    n = _size("ADD", p, 13)
    if len(input1) < n or len(input2) < n or len(output) < n:
        _too_small("ADD")
    _vadd(p, input1, input2, output)


def reshape(p, input, output):
    n = _size("RESHAPE", p, 1)
    if len(input) < n or len(output) < n:
        _too_small("RESHAPE")
    _vcopy(n, input, output)


def softmax(p, input, exp_sum_table, exp_table, output):
    if len(p) < 2:
        _bad("SOFTMAX")
    outer = p[0]
    depth = p[1]
    if not (0 < outer <= _MAX and 0 < depth <= _MAX):
        _bad("SOFTMAX")
    if (len(input) < outer * depth or len(exp_sum_table) < 1024 or len(exp_table) < 1024
            or len(output) < outer * depth):
        _too_small("SOFTMAX")
    _vsoftmax(p, input, exp_sum_table, exp_table, output, _SM)


def _lut(op, p, input, table, output):
    n = _size(op, p, 1)
    if len(input) < n or len(table) < 256 or len(output) < n:
        _too_small(op)
    _vtable(n, input, table, output)


def logistic(p, input, table, output):
    _lut("LOGISTIC", p, input, table, output)


def tanh(p, input, table, output):
    _lut("TANH", p, input, table, output)


def requantize(p, input, output):
    n = _size("REQUANTIZE", p, 5)
    if len(input) < n or len(output) < n:
        _too_small("REQUANTIZE")
    _vrequant(p, input, output)


_TREE_ERRORS = (None, "node index out of range", "feature index out of range",
                "leaf index out of range", "walk longer than n_nodes (a cycle)")


def tree_ensemble(p, input, nodes, roots, leaves, output):
    if len(p) < 6:
        _bad("TREE_ENSEMBLE")
    for k in range(6):
        if not 0 < p[k] <= _MAX:
            _bad("TREE_ENSEMBLE")
    t, f, o, nn, nl, ib = p[0], p[1], p[2], p[3], p[4], p[5]
    if ib != 1 and ib != 2:
        _bad("TREE_ENSEMBLE")
    if (len(input) < f * ib or len(nodes) < 8 * nn or len(roots) < 2 * t or len(leaves) < 2 * nl * o
            or len(output) < 4 * o):
        _too_small("TREE_ENSEMBLE")
    err = _vtree(p, input, nodes, roots, leaves, output)
    if err:
        raise ValueError("TREE_ENSEMBLE: " + _TREE_ERRORS[err])
