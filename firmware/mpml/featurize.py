# mpml.featurize: the feature spec (docs/features.md) executed on the board.
#
#   from mpml.featurize import Featurizer
#   fx = Featurizer(spec_bytes)        # the blob's feature section; ValueError if bad
#   fx.window, fx.hop, fx.channels, fx.n_features
#   fx.compute(window, out)            # array('h') window*channels interleaved -> n_features int8
#
# Two halves. The first is docs/features.md literally: one window at a time,
# plain integers, straight from the spec bytes (parse, features, quantize).
# It is the plain-Python backend on the board, and on the host (which loads
# this file through mpml.shared.device_module) the check on the vectorised
# numpy code: the tests require both to agree on random and full-scale
# windows. It asserts every int32/int64 bound the doc states, so the C and
# viper versions, which use those widths, compute the same numbers.
#
# The second is Featurizer: the spec parsed and checked once, every buffer
# allocated once, and compute() running the heavy parts in the C module
# (mpml._native, fx_* functions: firmware/kernels/features.c and
# feature_bands.c) or in viper (mpml._fxviper), which allocate nothing.
# Plain MicroPython only, no f-strings: this runs on the board.

import struct
from array import array

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1

LOG2_TABLE = (0, 6, 11, 17, 22, 28, 33, 38, 44, 49, 54, 59, 63, 68, 73, 78, 82, 87, 92, 96, 100, 105, 109,
              113, 118, 122, 126, 130, 134, 138, 142, 146, 150, 154, 157, 161, 165, 169, 172, 176, 179,
              183, 186, 190, 193, 197, 200, 203, 207, 210, 213, 216, 220, 223, 226, 229, 232, 235, 238,
              241, 244, 247, 250, 253)

KIND_RAW = 1
KIND_STATS = 2
KIND_BANDS = 3
MAX_LENGTH = 32768
MAX_FFT = 1024
# A twiddle (wr, wi) of magnitude above 1 (plus the rounding of a Q15 table)
# would let the FFT's values grow past int32: refused, as the host refuses it.
MAX_TWIDDLE_SQ = (1 << 30) + (1 << 16)


# -- the integer steps (docs/features.md "Integer steps") -------------------------------------

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


# -- the spec bytes (docs/features.md "Bytes") ------------------------------------------------

def _bad(msg):
    raise ValueError("feature spec: " + msg)


def parse(spec, tables=True):
    """The spec bytes as a dict of plain values (docs/features.md, "Bytes").

    Checks everything FeatureSpec.from_bytes checks on the host, and raises
    ValueError naming the problem: a board never runs a spec it cannot
    compute exactly. tables=False leaves out the bands blocks' window,
    twiddle and band lists (the kernels read them from the bytes).
    """
    size = len(spec)
    if size < 32:
        _bad("%d bytes, shorter than its 32-byte header" % size)
    (magic, version, hsize, total, length, channels, n_features, n_blocks, flags, fs, scale,
     zp) = struct.unpack_from("<4sHHIHHHBBffi", spec, 0)
    if bytes(magic) != b"MPFS":
        _bad("bad magic %r" % bytes(magic))
    if version != 1:
        _bad("version %d; this mpml reads version 1" % version)
    if hsize != 32 or total != size:
        _bad("header size %d / total size %d do not match (32 / %d)" % (hsize, total, size))
    if flags & ~3:
        _bad("unknown flags 0x%x" % flags)
    if not 1 <= length <= MAX_LENGTH:
        _bad("window length %d must be 1..%d" % (length, MAX_LENGTH))
    if not 1 <= channels <= 255:
        _bad("%d channels: must be 1..255" % channels)
    if not -128 <= zp <= 127:
        _bad("input zero point %d is not an int8" % zp)
    if not (scale > 0 and scale * 0 == 0):  # NaN and infinity fail
        _bad("input scale %r must be a positive number" % scale)
    pos = hsize
    names = []
    if flags & 2:
        for _ in range(channels):
            if pos >= size:
                _bad("channel names run past the end")
            n = spec[pos]
            if pos + 1 + n > size:
                _bad("channel names run past the end")
            try:
                names.append(str(bytes(spec[pos + 1:pos + 1 + n]), "utf-8"))
            except UnicodeError:
                names.append("?")
            pos += 1 + n
        pos += (4 - pos % 4) % 4
    blocks = []
    count = 0
    for k in range(n_blocks):
        if pos + 12 > size:
            _bad("block %d runs past the end" % k)
        kind, n_sel, n_slots, n_feat, _r, bsize = struct.unpack_from("<BBHHHI", spec, pos)
        end = pos + bsize
        if bsize < 12 or end > size or bsize % 4:
            _bad("block %d has a bad size %d" % (k, bsize))
        where = "block %d: " % k
        p = pos + 12
        chans = list(spec[p:p + n_sel])
        if len(chans) != n_sel or not n_sel:
            _bad(where + "no channels" if not n_sel else where + "truncated")
        for c in chans:
            if c >= channels:
                _bad(where + "channel %d does not exist (window has %d channels)" % (c, channels))
        p += n_sel + (4 - n_sel % 4) % 4
        b = {"kind": kind, "channels": chans, "n_slots": n_slots, "n_features": n_feat}
        if p > end:
            _bad(where + "truncated")
        if kind == KIND_RAW:
            if p + 4 > end:
                _bad(where + "truncated")
            d = struct.unpack_from("<H", spec, p)[0]
            p += 4
            if not 1 <= d <= length:
                _bad(where + "decimate %d must be 1..%d (the window length)" % (d, length))
            b["decimate"] = d
            slots = n_sel
            feats = (length // d) * n_sel
        elif kind == KIND_STATS:
            if p >= end:
                _bad(where + "truncated")
            ns = spec[p]
            codes = list(spec[p + 1:p + 1 + ns])
            p += 1 + ns + (4 - (1 + ns) % 4) % 4
            if not ns or len(codes) != ns or p > end:
                _bad(where + "no stats" if not ns else where + "truncated")
            for c in codes:
                if not 1 <= c <= 7:
                    _bad(where + "unknown stat code %d" % c)
            b["stats"] = codes
            slots = feats = n_sel * ns
        elif kind == KIND_BANDS:
            if p + 8 > end:
                _bad(where + "truncated")
            n, log2n, _bflags, nbands, _ = struct.unpack_from("<HBBHH", spec, p)
            p += 8
            if n < 4 or n > MAX_FFT or log2n > 10 or n != 1 << log2n:
                _bad(where + "fft size %d / log2 %d invalid (a power of two from 4 to %d)" % (n, log2n, MAX_FFT))
            if n > length:
                _bad(where + "fft size %d is longer than the window (%d)" % (n, length))
            if not nbands:
                _bad(where + "no bands")
            if p + 4 * n + 4 * nbands > end:
                _bad(where + "truncated")
            b["n"], b["log2n"], b["remove_mean"] = n, log2n, bool(_bflags & 1)
            b["table_at"] = p
            b["n_bands"] = nbands
            # read value by value: a board need not hold the tables as lists
            win = [] if tables else None
            for i in range(n):
                h = spec[p + 2 * i] | spec[p + 2 * i + 1] << 8
                if h > 32768:
                    _bad(where + "window coefficient %d above 32768" % h)
                if tables:
                    win.append(h)
            p += 2 * n
            tw = [] if tables else None
            for i in range(n // 2):
                wr = spec[p + 4 * i] | spec[p + 4 * i + 1] << 8
                wi = spec[p + 4 * i + 2] | spec[p + 4 * i + 3] << 8
                wr -= (wr & 0x8000) << 1
                wi -= (wi & 0x8000) << 1
                # |w|^2 > 2^30 + 2^16, as w^2/4 (no int above 2^30 on a 32-bit port)
                if (wr >> 1) * (wr >> 1) + (wi >> 1) * (wi >> 1) > MAX_TWIDDLE_SQ >> 2:
                    if wr * wr + wi * wi > MAX_TWIDDLE_SQ:
                        _bad(where + "twiddle %d (%d, %d) has a magnitude above 1" % (i, wr, wi))
                if tables:
                    tw.append((wr, wi))
            p += 2 * n
            bands = [] if tables else None
            for i in range(nbands):
                lo = spec[p + 4 * i] | spec[p + 4 * i + 1] << 8
                hi = spec[p + 4 * i + 2] | spec[p + 4 * i + 3] << 8
                if not 0 <= lo < hi <= n // 2 + 1:
                    _bad(where + "band [%d, %d) must satisfy 0 <= lo < hi <= %d (bins of a %d-point FFT)"
                         % (lo, hi, n // 2 + 1, n))
                if tables:
                    bands.append((lo, hi))
            p += 4 * nbands
            p += (4 - (p - pos) % 4) % 4
            b["window"], b["twiddles"], b["bands"] = win, tw, bands
            slots = feats = n_sel * nbands
        else:
            _bad(where + "unknown kind %d" % kind)
        if slots != n_slots or p + 12 * n_slots != end:
            _bad(where + "%d quantization slots and size %d do not fit its contents" % (n_slots, bsize))
        if n_feat != feats:
            _bad(where + "says %d features, its contents give %d" % (n_feat, feats))
        quant = []
        for s in range(n_slots):
            o, m, sh = struct.unpack_from("<iii", spec, p + 12 * s)
            if flags & 1 and (m < 0 or not -31 <= sh <= 31):
                _bad(where + "slot %d: a shift outside [-31, 31] or a negative multiplier" % s)
            quant.append((o, m, sh))
        b["quant"] = quant
        count += feats
        blocks.append(b)
        pos = end
    if pos != size:
        _bad("%d bytes after the last block" % (size - pos))
    if not blocks:
        _bad("no blocks")
    if count != n_features or count > 65535:
        _bad("header says %d features, blocks give %d" % (n_features, count))
    return {"length": length, "channels": channels, "n_features": n_features, "fitted": bool(flags & 1),
            "sample_rate_hz": fs, "input_scale": scale, "input_zero_point": zp, "channel_names": names,
            "blocks": blocks}


# -- blocks, literally (docs/features.md "Blocks") --------------------------------------------

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


def _block_features(b, cols, length, out):
    if b["kind"] == KIND_RAW:
        d = b["decimate"]
        for t in range(length // d):
            for col in cols:
                out.append(div_round(sum(col[t * d:(t + 1) * d]), d))
    elif b["kind"] == KIND_STATS:
        for col in cols:
            out.extend(_stats(col, b["stats"]))
    else:
        for col in cols:
            out.extend(_bands(col, b))


def _features(s, window):
    length = s["length"]
    out = []
    for b in s["blocks"]:
        cols = [[int(window[t][c]) for t in range(length)] for c in b["channels"]]
        _block_features(b, cols, length, out)
    assert len(out) == s["n_features"]
    return [_i32(v) for v in out]


def _quantize(s, feats):
    zp = s["input_zero_point"]
    out = []
    k = 0
    for b in s["blocks"]:
        for j in range(b["n_features"]):
            slot = j % b["n_slots"] if b["kind"] == KIND_RAW else j
            offset, m, shift = b["quant"][slot]
            q = mbqm(_i32(feats[k] - offset), m, shift) + zp
            out.append(-128 if q < -128 else 127 if q > 127 else q)
            k += 1
    return out


def features(spec, window):
    """Integer features (a list) of one window: `window[t][c]` int16 values, t < length, c < channels."""
    s = parse(spec)
    if len(window) != s["length"]:
        raise ValueError("window of %d samples, the spec is for %d" % (len(window), s["length"]))
    return _features(s, window)


def quantize(spec, feats):
    """int8 model inputs (a list) from the integer features of one window."""
    return _quantize(parse(spec), feats)


def _pure_features(s, window, f):
    # Apart from Featurizer.features: variables a comprehension captures become
    # cells, allocated on every call of the function that holds them.
    C = s["channels"]
    L = s["length"]
    out = []
    for b in s["blocks"]:
        cols = [[window[t * C + c] for t in range(L)] for c in b["channels"]]
        _block_features(b, cols, L, out)
    for i in range(len(out)):
        f[i] = out[i]


# -- the board's Featurizer ------------------------------------------------------------------

BACKENDS = ("native", "viper", "pure")
_KERNELS = ("fx_raw", "fx_stats", "fx_bands", "fx_quant")


def _pick(backend):
    """(name, module or None for pure, notes): the first usable backend with every fx_ kernel."""
    notes = []
    for name in (BACKENDS if backend is None else (backend,)):
        if name == "pure":
            return name, None, notes
        try:
            if name == "native":
                try:
                    from mpml import _native as mod  # the .mpy installed beside the package
                except (ImportError, ValueError) as e:
                    try:
                        import _mpml_native as mod  # the kernels compiled into the firmware
                    except ImportError:
                        raise e
            elif name == "viper":
                from mpml import _fxviper as mod
            else:
                raise ValueError("unknown backend %r (choose from %s)" % (name, ", ".join(BACKENDS)))
        except ImportError as e:
            notes.append("%s: not installed (%s)" % (name, e))
            continue
        except ValueError as e:
            if name not in BACKENDS:
                raise
            notes.append("%s: %s" % (name, e))  # e.g. a native module built for another CPU
            continue
        except Exception as e:  # noqa: BLE001 - any broken backend falls through to the next
            notes.append("%s: %s: %s" % (name, type(e).__name__, e))
            continue
        missing = [k for k in _KERNELS if not hasattr(mod, k)]
        if missing:
            notes.append("%s: lacks %s" % (name, ", ".join(missing)))
            continue
        return name, mod, notes
    raise ValueError("feature backend %r unavailable: %s" % (backend, "; ".join(notes)))


class Featurizer:
    """The feature spec of a model, ready to turn sensor windows into int8 model inputs.

    spec: the spec bytes (a blob's feature section, FeatureSpec.to_bytes() on
    the host); ValueError when they are not a valid spec. backend: None picks
    native (the C module), else viper, else pure (plain Python, which
    allocates per window); a name forces one. hop: samples between windows,
    for the sampler (the spec does not store it; default: the window length).
    Every buffer is allocated here; compute() allocates nothing (native and
    viper). After compute(), `values` (array('i')) holds the window's int32
    features, before quantization.
    """

    def __init__(self, spec, backend=None, hop=None):
        self.backend, mod, notes = _pick(backend)
        self.backend_note = "; ".join(notes)
        s = parse(spec, mod is None)
        self.window = s["length"]
        self.channels = s["channels"]
        self.n_features = s["n_features"]
        self.hop = self.window if hop is None else int(hop)
        if self.hop < 1:
            raise ValueError("hop %d must be at least 1" % self.hop)
        self.sample_rate_hz = s["sample_rate_hz"]
        self.input_scale = s["input_scale"]
        self.input_zero_point = s["input_zero_point"]
        self.channel_names = s["channel_names"]
        self.fitted = s["fitted"]
        self._nx = self.window * self.channels
        self.values = array("i", bytearray(4 * self.n_features))  # int32 features
        if mod is None:
            self._s = s  # the literal code reads the parsed spec
            return
        self._s = None
        L, C = self.window, self.channels
        plan = []
        off = 0
        slot0 = 0
        sidx = array("H", bytearray(2 * self.n_features))
        slots = array("i", bytearray(12 * sum(b["n_slots"] for b in s["blocks"]) or 12))
        work_words = 0
        for b in s["blocks"]:
            kind, ch, k = b["kind"], b["channels"], len(b["channels"])
            if kind == KIND_RAW:
                p = array("i", [L, C, k, off, b["decimate"]] + ch)
                plan.append((mod.fx_raw, p))
            elif kind == KIND_STATS:
                p = array("i", [L, C, k, off, len(b["stats"])] + b["stats"] + ch)
                plan.append((mod.fx_stats, p))
            else:
                n, nb = b["n"], b["n_bands"]
                p = array("i", [L, C, k, off, n, b["log2n"], 1 if b["remove_mean"] else 0, nb] + ch)
                at = b["table_at"]
                # window u16[n], twiddles i16[n], bands u16[2 nb]: as the spec stores them
                tab = bytearray(memoryview(spec)[at:at + 4 * n + 4 * nb])
                plan.append((mod.fx_bands, p, tab))
                work_words = max(work_words, 2 * n + 2 * nb)
            nf = b["n_features"]
            for j in range(nf):
                sidx[off + j] = slot0 + (j % k if kind == KIND_RAW else j)
            for j in range(b["n_slots"]):
                o, m, sh = b["quant"][j]
                slots[3 * (slot0 + j)] = o
                slots[3 * (slot0 + j) + 1] = m
                slots[3 * (slot0 + j) + 2] = sh
            off += nf
            slot0 += b["n_slots"]
        self._work = bytearray(4 * max(work_words, 1))  # int32s; bytes: no transient copy
        self._plan = tuple(plan)
        self._sidx = sidx
        self._slots = slots
        self._qp = array("i", [self.n_features, self.input_zero_point])
        self._quant = mod.fx_quant

    def _check(self, window):
        if len(window) != self._nx:
            raise ValueError("window of %d values; the spec takes %d samples x %d channels = %d int16, "
                             "interleaved" % (len(window), self.window, self.channels, self._nx))

    def features(self, window):
        """The int32 features of one window, as an array('i') reused by the next call."""
        self._check(window)
        f = self.values
        if self._s is not None:
            _pure_features(self._s, window, f)
            return f
        work = self._work
        for op in self._plan:
            if len(op) == 2:
                op[0](op[1], window, f)
            else:
                op[0](op[1], window, op[2], work, f)
        return f

    def compute(self, window, out):
        """One window (array('h') of window*channels int16, sample-major: x[t*C + c]) ->
        n_features int8 model inputs in `out` (bytearray, array('b') or memoryview).

        Allocates nothing with the native and viper backends.
        """
        if not self.fitted:
            raise ValueError("the feature spec is not fitted (no quantization): fit it on the host")
        if len(out) < self.n_features:
            raise ValueError("out holds %d values, the spec gives %d features" % (len(out), self.n_features))
        f = self.features(window)
        if self._s is None:
            self._quant(self._qp, f, self._slots, self._sidx, out)
            return out
        try:
            q = _quantize(self._s, f)
        except AssertionError:
            raise ValueError("the spec's quantization overflows int32 (not a spec mpml writes)")
        for i in range(len(q)):
            struct.pack_into("b", out, i, q[i])
        return out

    def __repr__(self):
        return "<Featurizer %d x %d -> %d features, backend %s>" % (
            self.window, self.channels, self.n_features, self.backend)
