# mpml.load(): a .mpml blob made ready to run on the board.
#
# The blob is read into one buffer and validated whole (blobfmt.parse) before
# any kernel sees it; the activation arena is allocated once; every op becomes
# (kernel, params, memoryviews into the blob and the arena), so run() is a
# loop of kernel calls that allocates nothing. docs/device-runtime.md is the
# user's guide, docs/blob-format.md and docs/ops.md the contracts.

from array import array
import struct

from mpml import blobfmt as F
from mpml import ops as O

# Backends in order of preference: the C module for this board's arch, the
# viper kernels, plain Python.
BACKENDS = ("native", "viper", "pure")

_modules = {}  # backend name -> module, once imported
_SEQ = (list, tuple)  # built once: run() must not build a tuple per call
_KW = 0x7FFF  # ops.MAX_DIM: the largest size one copy kernel call takes

# dtype code -> (struct format, lowest, highest) of an edge tensor's values
_EDGE_TYPES = {
    F.INT8: ("b", -128, 127),
    F.UINT8: ("B", 0, 255),
    F.INT16: ("h", -32768, 32767),
    F.UINT16: ("H", 0, 65535),
    F.INT32: ("i", -0x80000000, 0x7FFFFFFF),
}


def _import(name):
    """The backend module `name`; raises ImportError or ValueError saying why not."""
    mod = _modules.get(name)
    if mod is None:
        if name == "native":
            try:
                from mpml import _native as mod  # the .mpy installed beside the package
            except (ImportError, ValueError) as e:
                try:
                    import _mpml_native as mod  # the kernels compiled into the firmware
                except ImportError:
                    raise e
        elif name == "viper":
            from mpml import _viper as mod
        elif name == "pure":
            from mpml import _pure as mod
        else:
            raise ValueError("unknown backend %r (choose from %s)" % (name, ", ".join(BACKENDS)))
        _modules[name] = mod
    return mod


def _pick(backend, needed):
    """(name, module, notes): the first usable backend that has every kernel in `needed`."""
    notes = []
    for name in (BACKENDS if backend is None else (backend,)):
        try:
            mod = _import(name)
        except ImportError as e:
            # e.g. no _native.mpy installed for this board
            notes.append("%s: not installed (%s)" % (name, e))
            continue
        except ValueError as e:
            if name not in BACKENDS:
                raise
            # e.g. "incompatible .mpy arch": a native module built for another CPU
            notes.append("%s: %s" % (name, e))
            continue
        except Exception as e:  # noqa: BLE001 - any broken backend falls through to the next
            notes.append("%s: %s: %s" % (name, type(e).__name__, e))
            continue
        missing = [k for k in needed if not hasattr(mod, k)]
        if missing:
            notes.append("%s: lacks %s" % (name, ", ".join(missing)))
            continue
        return name, mod, notes
    if backend is None:
        raise ValueError("no usable kernel backend: " + "; ".join(notes))
    raise ValueError("backend %r unavailable: %s" % (backend, "; ".join(notes)))


def _read(path):
    import os
    size = os.stat(path)[6]
    buf = bytearray(size)
    mv = memoryview(buf)
    got = 0
    with open(path, "rb") as f:
        while got < size:
            n = f.readinto(mv[got:])
            if not n:
                break
            got += n
    if got != size:
        raise ValueError("%s: read %d of %d bytes" % (path, got, size))
    return buf


def _aligned(buf):
    # Kernels read int32 tables in place: on a Cortex-M0 an unaligned word load
    # faults, so a buffer that does not start on a word boundary is copied.
    if isinstance(buf, bytearray):
        return buf  # the heap aligns every allocation
    try:
        from uctypes import addressof
        if addressof(buf) & 3 == 0:
            return buf
    except (ImportError, TypeError):
        pass
    return bytearray(buf)


def load(src, backend=None):
    """Load a model from a file path or a buffer (bytes, bytearray, memoryview).

    backend: None picks native, else viper, else pure (plain Python);
    "native", "viper" or "pure" forces one. Raises ValueError naming what is
    wrong with a blob, before any kernel runs.
    """
    buf = _read(src) if isinstance(src, str) else _aligned(src)
    return Model(buf, backend)


def _crc32():
    try:
        from binascii import crc32
    except ImportError:
        from zlib import crc32  # a port without binascii; CPython has both
    return crc32


class _Edge:
    """A model input or output: its tensor, name, quantization and labels."""

    def __init__(self, default_name, tensor, f, name, labels, io_flags, view):
        self.tensor = tensor
        self.name = name or default_name
        self.labels = labels
        self.is_float = bool(io_flags & F.IO_FLOAT)
        self.dtype = f[F.T_DTYPE]
        self.dtype_name = F.DTYPES[self.dtype][0]
        self.shape = tuple(f[F.T_SHAPE0:F.T_SHAPE0 + f[F.T_NDIM]])
        self.nbytes = f[F.T_NBYTES]
        self.scale = f[F.T_SCALE]
        self.zero_point = f[F.T_ZERO_POINT]
        t = _EDGE_TYPES.get(self.dtype)
        if t is None:
            raise ValueError("model edge %r: dtype %s cannot be an input or output" % (self.name, self.dtype_name))
        self.fmt, self.lo, self.hi = t
        self.count = self.nbytes // F.DTYPES[self.dtype][1]
        self.view = view
        # params of one copy-kernel call (RESHAPE) moving this edge's bytes
        self.copy_p = array("i", [self.nbytes])

    def describe(self):
        d = {"name": self.name, "shape": self.shape, "dtype": self.dtype_name,
             "scale": self.scale, "zero_point": self.zero_point, "float": self.is_float}
        if self.labels:
            d["labels"] = self.labels
        return d


class Model:
    """A loaded model: predict() for floats or int8 bytes, run() for zero-allocation inference."""

    def __init__(self, buf, backend=None):
        h, tensors, op_list, io = F.parse(buf, _crc32())
        self.blob_size = len(buf)
        self.arena_size = h[F.H_ARENA_SIZE]
        so, ss = h[F.H_STRINGS], h[F.H_STRINGS_SIZE]

        def string(ref, what):
            try:
                return F.string(buf, so, ss, ref)
            except UnicodeError:
                raise ValueError("%s is not UTF-8" % what)

        self.name = string(h[F.H_NAME], "model name")
        self.version = string(h[F.H_MODEL_VERSION], "model version")
        self.hash = "".join("%02x" % b for b in h[F.H_HASH])
        self.op_names = [O.OPS[c][0] for c, _r, _p in op_list]

        needed = []
        for n in self.op_names:
            k = n.lower()
            if k not in needed:
                needed.append(k)
        if "reshape" not in needed:
            needed.append("reshape")  # copies inputs and outputs in run()
        self.backend, mod, notes = _pick(backend, needed)
        self.backend_note = "; ".join(notes)

        # One arena for every activation, allocated here and never again.
        if self.arena_size > 0x3FFFFFFF:
            raise ValueError("arena of %d bytes: no board has that" % self.arena_size)
        try:
            self._arena = bytearray(self.arena_size)
        except MemoryError:
            raise MemoryError("the model needs a %d-byte arena" % self.arena_size)
        amv = memoryview(self._arena)
        bmv = memoryview(buf)
        self._buf = buf
        views = []
        for f in tensors:
            off, nb = f[F.T_OFFSET], f[F.T_NBYTES]
            views.append((bmv if f[F.T_STORAGE] == F.CONST else amv)[off:off + nb])

        n_in = h[F.H_N_INPUTS]
        edges = []
        for k in range(len(io)):
            t, name_ref, labels_ref, flags = io[k]
            labels = string(labels_ref, "labels")
            edges.append(_Edge(("input%d" if k < n_in else "output%d") % k, t, tensors[t], string(name_ref, "edge name"),
                               labels.split("\n") if labels else [], flags, views[t]))
        self.inputs = edges[:n_in]
        self.outputs = edges[n_in:]
        self.labels = self.outputs[0].labels if self.outputs else []

        # The plan: (number of kernel args, kernel, params, buffers...) per op.
        plan = []
        for code, refs, params in op_list:
            kernel = getattr(mod, O.OPS[code][0].lower())
            plan.append((len(refs) + 1, kernel, params) + tuple(views[t] for t in refs))
        self._plan = tuple(plan)
        self._copy = mod.reshape
        self._f = array("f", [0.0])  # rounds a float to float32
        self._last = None
        # The blob's feature spec, for predict_window() (docs/features.md).
        self.featurizer = None
        if h[F.H_FEATURES]:
            from mpml.featurize import Featurizer
            fo = h[F.H_FEATURES]
            self.featurizer = Featurizer(bmv[fo:fo + h[F.H_FEATURES_SIZE]], backend)

    # -- inference ---------------------------------------------------------

    def _exec(self):
        for op in self._plan:
            n = op[0]
            if n == 7:
                op[1](op[2], op[3], op[4], op[5], op[6], op[7], op[8])
            elif n == 3:
                op[1](op[2], op[3], op[4])
            elif n == 4:
                op[1](op[2], op[3], op[4], op[5])
            elif n == 5:
                op[1](op[2], op[3], op[4], op[5], op[6])
            else:
                op[1](op[2], op[3], op[4], op[5], op[6], op[7])

    def _move(self, e, src, dst, what):
        if len(src) != e.nbytes or len(dst) < e.nbytes:
            raise ValueError("%s %r: buffer of %d bytes, expected %d" % (
                what, e.name, len(src) if len(dst) >= e.nbytes else len(dst), e.nbytes))
        if e.nbytes <= _KW:
            self._copy(e.copy_p, src, dst)  # the backend's RESHAPE: allocates nothing
        else:
            dst[:e.nbytes] = src  # one slice object for edges above 32 KiB

    def run(self, inbuf, outbuf):
        """Raw inference without allocation: int8 (the edges' dtypes) in, out.

        inbuf/outbuf: a bytearray (or memoryview) per input/output, of exactly
        the tensor's size, or lists of them for several inputs or outputs.
        """
        self._load_inputs(inbuf)
        self._exec()
        self._store_outputs(outbuf)

    def _load_inputs(self, inbuf):
        ins = self.inputs
        if len(ins) == 1 and not isinstance(inbuf, _SEQ):
            self._move(ins[0], inbuf, ins[0].view, "input")
        else:
            if len(inbuf) != len(ins):
                raise ValueError("model takes %d inputs, got %d" % (len(ins), len(inbuf)))
            for k in range(len(ins)):
                self._move(ins[k], inbuf[k], ins[k].view, "input")

    def _store_outputs(self, outbuf):
        outs = self.outputs
        if len(outs) == 1 and not isinstance(outbuf, _SEQ):
            self._move(outs[0], outs[0].view, outbuf, "output")
        else:
            if len(outbuf) != len(outs):
                raise ValueError("model has %d outputs, got %d buffers" % (len(outs), len(outbuf)))
            for k in range(len(outs)):
                self._move(outs[k], outs[k].view, outbuf[k], "output")

    # -- timing (mpml bench): separate from run(), which stays as it is ------

    def run_op(self, k, reps=1):
        """Run op k of the plan `reps` times on whatever the arena holds (for timing one layer)."""
        op = self._plan[k]
        n = op[0]
        f = op[1]
        for _ in range(reps):
            if n == 7:
                f(op[2], op[3], op[4], op[5], op[6], op[7], op[8])
            elif n == 3:
                f(op[2], op[3], op[4])
            elif n == 4:
                f(op[2], op[3], op[4], op[5])
            elif n == 5:
                f(op[2], op[3], op[4], op[5], op[6])
            else:
                f(op[2], op[3], op[4], op[5], op[6], op[7])

    def run_timed(self, inbuf, outbuf, times, at=0):
        """run() with every op timed by time.ticks_us: adds op k's microseconds to times[at + k].

        times: an array('i') (or list) zeroed by the caller, of at least
        at + len(self.op_names) items; `at` lets one array hold many runs.
        Allocates nothing per op. ImportError on a port without time.ticks_us.
        """
        from time import ticks_us, ticks_diff

        self._load_inputs(inbuf)
        run_op = self.run_op
        for k in range(len(self._plan)):
            t0 = ticks_us()
            run_op(k)
            times[at + k] += ticks_diff(ticks_us(), t0)
        self._store_outputs(outbuf)

    def _quantize(self, e, x):
        # docs/ops.md "Model edges": q = clamp(round(f32(x / scale)) + zp),
        # float32 arithmetic (exact on ports whose floats are doubles too),
        # round half away from zero.
        v = e.view
        n = len(x)
        if isinstance(x, (bytes, bytearray)):
            # raw tensor bytes (int8 values for an int8 input), used as they are
            if n != e.nbytes:
                raise ValueError("input %r takes %d bytes, got %d" % (e.name, e.nbytes, n))
            v[:] = x
            return
        if n != e.count:
            raise ValueError("input %r takes %d values, got %d" % (e.name, e.count, n))
        f = self._f
        scale, zp, lo, hi, fmt = e.scale, e.zero_point, e.lo, e.hi, e.fmt
        conv = e.is_float and scale != 0
        step = F.DTYPES[e.dtype][1]
        for i in range(n):
            xi = x[i]
            if conv:
                f[0] = xi
                f[0] = f[0] / scale
                r = f[0]
                if r != r:
                    raise ValueError("input %r: value %d is NaN" % (e.name, i))
                if r > 16777216.0:
                    r = 16777216.0
                elif r < -16777216.0:
                    r = -16777216.0
                q = int(r)  # toward zero; r - q is exact
                d = r - q
                if d >= 0.5:
                    q += 1
                elif d <= -0.5:
                    q -= 1
                q += zp
                if q < lo:
                    q = lo
                elif q > hi:
                    q = hi
            else:
                q = int(xi)
                if q < lo or q > hi:
                    raise ValueError("input %r: value %d is %d, outside %s" % (e.name, i, q, e.dtype_name))
            struct.pack_into(fmt, v, i * step, q)

    def _dequantize(self, e, view):
        vals = struct.unpack(("<%d" % e.count) + e.fmt, view)
        if not (e.is_float and e.scale != 0):
            return list(vals)
        f = self._f
        scale, zp = e.scale, e.zero_point
        out = []
        for q in vals:
            f[0] = q - zp  # TFLM: float(q - zp) * scale, in float32
            f[0] = f[0] * scale
            out.append(f[0])
        return out

    def predict(self, x):
        """Inference on one sample.

        x: the input's values, floats for a float input (quantized as TFLM
        does), or int8 bytes/bytearray used as they are; a list with one such
        item per input for a model with several inputs. Returns the output's
        values (floats for a float output, else ints), or a list of them per
        output for several outputs.
        """
        ins = self.inputs
        if len(ins) == 1:
            xs = (x,)
        else:
            if not isinstance(x, (list, tuple)) or len(x) != len(ins):
                raise ValueError("model takes %d inputs: pass a list with one item per input" % len(ins))
            xs = x
        for k in range(len(ins)):
            self._quantize(ins[k], xs[k])
        self._exec()
        return self._results()

    def _results(self):
        ys = [self._dequantize(e, e.view) for e in self.outputs]
        self._last = ys[0] if ys else None
        return ys[0] if len(ys) == 1 else ys

    def _featurize(self, window):
        fx = self.featurizer
        if fx is None:
            raise ValueError("this model has no feature spec: use predict() on its inputs")
        e = self.inputs[0]
        if len(self.inputs) != 1 or e.dtype != F.INT8 or e.nbytes != fx.n_features:
            raise ValueError("the feature spec gives %d int8 features; the model's input %r is %d %s" % (
                fx.n_features, e.name, e.count, e.dtype_name))
        fx.compute(window, e.view)  # straight into the input tensor

    def predict_window(self, window):
        """predict() on one sensor window, through the blob's feature spec (self.featurizer).

        window: array('h') of featurizer.window x featurizer.channels int16
        samples, interleaved (x[t*C + c]). Returns what predict() returns.
        """
        self._featurize(window)
        self._exec()
        return self._results()

    def run_window(self, window, outbuf):
        """run() on one sensor window: features, inference, raw outputs; no allocation."""
        self._featurize(window)
        self._exec()
        self._store_outputs(outbuf)

    def top(self, k=1):
        """The k largest values of the last predict()'s first output, as (label, value)."""
        if self._last is None:
            raise ValueError("top() needs a predict() first")
        labels = self.labels
        order = sorted(range(len(self._last)), key=lambda i: -self._last[i])[:k]
        return [(labels[i] if i < len(labels) else i, self._last[i]) for i in order]

    # -- description -------------------------------------------------------

    def info(self):
        """The model's identity, ops, edges, memory and backend as a dict."""
        return {
            "name": self.name, "version": self.version, "hash": self.hash,
            "ops": list(self.op_names),
            "inputs": [e.describe() for e in self.inputs],
            "outputs": [e.describe() for e in self.outputs],
            "arena_bytes": self.arena_size, "blob_bytes": self.blob_size,
            "backend": self.backend, "backend_note": self.backend_note,
        }

    def __repr__(self):
        counts = []
        for n in self.op_names:
            if n not in counts:
                counts.append(n)
        ops_s = ", ".join("%s x%d" % (n, self.op_names.count(n)) if self.op_names.count(n) > 1 else n
                          for n in counts)

        def edge(kind, e):
            s = "  %s %s %s %s" % (kind, e.name, e.shape, e.dtype_name)
            if e.is_float:
                s += " (float, scale %g, zp %d)" % (e.scale, e.zero_point)
            if e.labels:
                s += " labels: " + ", ".join(e.labels[:8]) + (" ..." if len(e.labels) > 8 else "")
            return s

        lines = ["<mpml.Model %r%s, %d ops (%s), arena %d B, blob %d B, backend %s>" % (
            self.name, " " + self.version if self.version else "", len(self.op_names), ops_s,
            self.arena_size, self.blob_size, self.backend)]
        lines += [edge("in ", e) for e in self.inputs]
        lines += [edge("out", e) for e in self.outputs]
        if self.backend_note:
            lines.append("  (" + self.backend_note + ")")
        return "\n".join(lines)
