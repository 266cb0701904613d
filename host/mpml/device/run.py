"""Running models on a board: one inference, a whole test set, a benchmark.

The Python API under `mpml run`, `mpml eval --on-device` and `mpml bench`:

    info = load_model(board, "model.mpml")      # a local blob, sent to the board's RAM (not stored)
    info = load_model(board, "gesture")         # or /models/gesture.mpml already on the board
    r = run_once(board, "gesture", [0.1, ...])  # RunResult: outputs, raw bytes, backend
    ev = eval_on_device(board, blob, q)         # OnDeviceEval: the board's int8 outputs for every row of q,
                                                # compared byte for byte with mpml.reference
    b = bench(board, "gesture", runs=100)       # BenchResult: latency, per-layer times, heap, backend
    print(b.table())

`board` is an `mpml.device.board.Board` (its `.conn` is used) or a
`Connection`. Models stay loaded on the board between calls with the same
source within one connection (a soft reset clears them).

Data crosses the link packed: int8 rows and float32 values as base64, blobs
and input batches zlib-compressed when that saves bytes (the board inflates
them with `deflate`), outputs back as base64. Batches are sized from the
link's measured speed, so a slow UART gets execs of about a second and a
fast one large batches.
"""

from __future__ import annotations

import ast
import base64
import statistics
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mpml.device.connection import BoardError, BoardExecError, Connection
from mpml.device.transfer import BLOCK_LIMIT, board_has_deflate, send_binary

__all__ = ["RunError", "ModelInfo", "RunResult", "OnDeviceEval", "BenchResult", "load_model", "fetch_model",
           "run_once", "run_samples", "eval_on_device", "bench", "host_compare"]

MODELS_DIR = "/models"


class RunError(BoardError):
    """A model could not be run on the board: the message says why and what to do."""


# -- the board side -----------------------------------------------------------------------------

_HELPERS = r"""
import binascii as _B, gc as _G, struct as _S
_mr = {'m': None, 'b': None, 'src': None}
def _mr_data(s, z):
    d = _B.a2b_base64(s)
    if z:
        import io, deflate
        d = deflate.DeflateIO(io.BytesIO(d), deflate.ZLIB).read()
    return d
def _mr_pre(be):
    # the runtime's modules are imported before the model's heap is measured
    _mr['m'] = None; _mr['b'] = None; _mr['src'] = None
    import mpml.model as M
    try:
        M._pick(be, [])
    except ValueError:
        pass
    _G.collect(); _mr['a0'] = _G.mem_alloc()
def _mr_buf(n, be):
    _mr_pre(be)
    _mr['b'] = bytearray(n)
    _mr['o'] = 0
def _mr_into(d):
    o = _mr['o']
    _mr['b'][o:o + len(d)] = d
    _mr['o'] = o + len(d)
def _mr_load(src, be, key):
    import mpml.model as M
    if src is None:
        src = _mr['b']
    else:
        _mr_pre(be)
    _mr['m'] = M.load(src, be)
    _mr['src'] = key
    _G.collect()
    i = _mr['m'].info()
    i['heap_model'] = _G.mem_alloc() - _mr['a0']
    i['op_count'] = len(i['ops'])
    print('I', repr(i))
def _mr_bufs(m):
    i = [bytearray(e.nbytes) for e in m.inputs]
    o = [bytearray(e.nbytes) for e in m.outputs]
    return (i[0] if len(i) == 1 else i), (o[0] if len(o) == 1 else o), i, o
def _mr_pred(s, z, n, fl):
    m = _mr['m']; d = _mr_data(s, z); mv = memoryview(d); p = 0
    for _ in range(n):
        xs = []
        for e in m.inputs:
            if fl and e.is_float:
                xs.append(_S.unpack_from('<%df' % e.count, d, p)); p += 4 * e.count
            else:
                xs.append(bytes(mv[p:p + e.nbytes])); p += e.nbytes
        # quantized as predict() does, kept (the arena reuses the input's bytes), then run
        r = []
        for e, x in zip(m.inputs, xs):
            m._quantize(e, x)
            r.append(bytes(e.view))
        y = m.predict(r[0] if len(r) == 1 else r)
        ys = [y] if len(m.outputs) == 1 else y
        r += [bytes(e.view) for e in m.outputs]
        for e, v in zip(m.outputs, ys):
            r.append(_S.pack('<%df' % len(v), *v) if e.is_float and e.scale else b'')
        print('Y', ' '.join(_B.hexlify(b).decode() if b else '-' for b in r))
def _mr_run(s, z, n):
    m = _mr['m']; a, b, ib, ob = _mr_bufs(m); d = memoryview(_mr_data(s, z))
    isz = sum(len(x) for x in ib); osz = sum(len(x) for x in ob)
    res = bytearray(n * osz); p = 0; q = 0
    for _ in range(n):
        for x in ib:
            x[:] = d[p:p + len(x)]; p += len(x)
        m.run(a, b)
        for x in ob:
            res[q:q + len(x)] = x; q += len(x)
    print('O', _B.b2a_base64(res).decode().strip())
def _mr_heap():
    m = _mr['m']; a, b, ib, ob = _mr_bufs(m)
    for k in range(len(ib)):
        e = m.inputs[k]
        for j in range(len(ib[k])):
            ib[k][j] = e.zero_point & 0xFF if e.nbytes == e.count else 0
    m.run(a, b)
    _G.collect(); h0 = _G.mem_alloc(); m.run(a, b); h1 = _G.mem_alloc()
    x = [bytes(v) for v in ib]
    _G.collect(); p0 = _G.mem_alloc(); m.predict(x[0] if len(x) == 1 else x); p1 = _G.mem_alloc()
    _G.collect()
    print('H', h0, h1 - h0, p1 - p0, _G.mem_free(), _G.mem_alloc())
def _mr_bench(n):
    m = _mr['m']; a, b, ib, ob = _mr_bufs(m)
    try:
        from time import ticks_us, ticks_diff
    except ImportError:
        print('T none'); return
    from array import array
    k = len(m.op_names); t = array('i', [0] * n); ops = array('i', [0] * (n * k))
    m.run(a, b)
    for i in range(n):
        t0 = ticks_us(); m.run(a, b); t[i] = ticks_diff(ticks_us(), t0)
    for i in range(n):
        m.run_timed(a, b, ops, i * k)
    print('T', ' '.join(str(v) for v in t))
    print('L', ' '.join(str(v) for v in ops))
def _mr_loop(n):
    m = _mr['m']; a, b, ib, ob = _mr_bufs(m)
    for _ in range(n):
        m.run(a, b)
def _mr_op(k, n):
    _mr['m'].run_op(k, n)
def _mr_get(path, off, n):
    with open(path, 'rb') as f:
        f.seek(off)
        print('D', _B.b2a_base64(f.read(n)).decode().strip())
"""


def _conn(board) -> Connection:
    return board.conn if hasattr(board, "conn") else board


def _exec(conn: Connection, code: str, timeout: float | None = None) -> str:
    if not getattr(conn, "_mpml_run_helpers", False) or not conn._in_raw:
        try:
            conn.exec(_HELPERS)
        except BoardExecError as e:
            raise RunError(f"cannot set up the board: {e}") from None
        conn._mpml_run_helpers = True
    try:
        return conn.exec(code, timeout=timeout)
    except BoardExecError as e:
        tb = e.traceback
        if "no module named 'mpml" in tb:
            raise RunError("the mpml runtime is not installed on this board: run `mpml install` first") from None
        last = tb.strip().splitlines()[-1] if tb.strip() else "error"
        if last.startswith(("ValueError: ", "MemoryError: ")):
            raise RunError(f"the board refused: {last.split(': ', 1)[1]}") from None
        raise


def _lines(out: str, tag: str) -> list[str]:
    return [ln[len(tag) + 1:] for ln in out.splitlines() if ln.startswith(tag + " ") or ln == tag]


def _pack(data: bytes, compress: bool = True) -> tuple[str, bool]:
    """(base64 text, compressed?) for `data`: zlib when it saves at least a fifth."""
    if compress and len(data) > 64:
        # a 1 KiB window: inflating allocates the window, and a 32 KiB one fails on small boards
        c = zlib.compressobj(9, zlib.DEFLATED, 10)
        z = c.compress(data) + c.flush()
        if len(z) < 0.8 * len(data):
            return base64.b64encode(z).decode(), True
    return base64.b64encode(data).decode(), False


# -- models ---------------------------------------------------------------------------------

@dataclass
class ModelInfo:
    """A model loaded on the board: its Model.info(), where it came from, its heap."""

    info: dict
    source: str  # "local file X (sent to RAM)" or "/models/NAME.mpml on the board"
    blob: bytes | None = None  # the blob, when the host has it

    @property
    def backend(self) -> str:
        return self.info["backend"]

    @property
    def inputs(self) -> list[dict]:
        return self.info["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.info["outputs"]

    @property
    def labels(self) -> list[str]:
        return list(self.outputs[0].get("labels", [])) if self.outputs else []


def _model_source(model) -> tuple[bytes | None, str | None, str]:
    """(blob, board path, description) for a path, bytes, a Graph, or a name on the board."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), None, "blob from the host (sent to RAM)"
    if hasattr(model, "ops") and hasattr(model, "tensors"):  # a Graph
        from mpml.blob import write_blob

        return write_blob(model), None, f"graph {model.name!r} from the host (sent to RAM)"
    s = str(model)
    p = Path(s)
    if p.is_file():
        return p.read_bytes(), None, f"{p} (sent to the board's RAM, not stored)"
    if s.startswith(MODELS_DIR + "/"):
        path = s
    elif "/" in s or "\\" in s:
        raise RunError(f"{s}: no such file (a model on the board is named without a folder: NAME or /models/NAME.mpml)")
    else:
        name = s[:-5] if s.endswith(".mpml") else s
        path = f"{MODELS_DIR}/{name}.mpml"
    return None, path, f"{path} on the board"


def _check_on_board(conn: Connection, path: str) -> None:
    out = _exec(conn, "import os\ntry:\n    os.stat(%r); print('OK')\nexcept OSError:\n    print('NO')\n"
                      "    try:\n        print('LS', ' '.join(os.listdir(%r)))\n    except OSError:\n        pass\n"
                % (path, MODELS_DIR))
    if "OK" in out.split():
        return
    have = _lines(out, "LS")
    names = [n[:-5] for n in (have[0].split() if have else []) if n.endswith(".mpml")]
    name = path.rsplit("/", 1)[-1][:-5]
    raise RunError(f"no model {name!r} on the board ({path} does not exist): put it there with "
                   f"`mpml push-model {name}.mpml`, or give a local .mpml file"
                   + (f"; on the board: {', '.join(names)}" if names else "; the board has no models"))


def load_model(board, model, backend: str | None = None) -> ModelInfo:
    """Load `model` on the board (kept loaded for the next calls) and return what Model.info() says.

    `model`: a local .mpml path, blob bytes or a Graph (sent to the board's
    RAM, compressed, in chunks; not stored), or the name of a model on the
    board (`gesture` or `/models/gesture.mpml`).
    """
    conn = _conn(board)
    blob, path, where = _model_source(model)
    key = repr((zlib.crc32(blob) if blob is not None else path, backend))
    cached = getattr(conn, "_mpml_run_model", None)
    if cached is not None and cached[0] == key and getattr(conn, "_mpml_run_helpers", False) and conn._in_raw:
        return cached[1]
    if blob is None:
        _check_on_board(conn, path)
        out = _exec(conn, f"_mr_load({path!r}, {backend!r}, {key!r})", timeout=60)
    else:
        _exec(conn, f"_mr_buf({len(blob)}, {backend!r})")
        # The blob streams in binary blocks (mpml.wire) straight into the buffer _mr_buf made.
        if not hasattr(conn, "_mpml_deflate"):
            conn._mpml_deflate = board_has_deflate(conn)
        try:
            send_binary(conn, blob, f"import mpml.wire as _W\n_W.recv(_mr_into, {BLOCK_LIMIT})\n",
                        conn._mpml_deflate)
        except BoardExecError as e:
            raise RunError(f"sending the model to the board's RAM failed: {e}") from None
        out = _exec(conn, f"_mr_load(None, {backend!r}, {key!r})", timeout=60)
    got = _lines(out, "I")
    if not got:
        raise RunError(f"the board did not describe the model: {out.strip()[-300:]}")
    mi = ModelInfo(ast.literal_eval(got[0]), where, blob)
    conn._mpml_run_model = (key, mi)
    return mi


def fetch_model(board, name: str) -> bytes:
    """The bytes of a model stored on the board (for the host reference)."""
    conn = _conn(board)
    _b, path, _w = _model_source(name)
    if path is None:
        raise RunError(f"{name}: a local model, not one on the board")
    _check_on_board(conn, path)
    size = int(_exec(conn, f"import os; print(os.stat({path!r})[6])").split()[-1])
    data = b""
    while len(data) < size:
        out = _exec(conn, f"_mr_get({path!r}, {len(data)}, 3072)", timeout=60)
        data += base64.b64decode(_lines(out, "D")[0])
    return data


def _graph_of(board, mi: ModelInfo, model):
    from mpml.blob import read_blob

    blob = mi.blob if mi.blob is not None else fetch_model(board, model)
    mi.blob = blob
    return read_blob(blob).graph


# -- one inference ----------------------------------------------------------------------------

@dataclass
class RunResult:
    """One inference on the board."""

    outputs: list[np.ndarray]  # per output: float32 values for a float output, else its integers
    raw_outputs: list[bytes]  # the output tensors' bytes
    raw_inputs: list[bytes]  # the input tensors' bytes after quantization on the board
    backend: str
    labels: list[str] = field(default_factory=list)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        y = self.outputs[0].reshape(-1)
        order = np.argsort(-y.astype(np.float64), kind="stable")[:k]
        return [(self.labels[i] if i < len(self.labels) else str(i), float(y[i])) for i in order]


_NP_DTYPE = {"int8": "<i1", "uint8": "<u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4"}


def _count(e: dict) -> int:
    return int(np.prod(e["shape"])) if e["shape"] else 1


def _as_samples(mi: ModelInfo, x, int8: bool) -> list[list[np.ndarray]]:
    """Validate input values against the model: [sample][input] arrays of floats (float edges) or integers."""
    ins = mi.inputs
    if len(ins) == 1:
        a = np.asarray(x)
        if a.dtype == object:
            raise RunError("the input is not a list of numbers")
        n = _count(ins[0])
        if a.ndim <= 1 or a.size == n:
            rows = [a.reshape(-1)]
        else:
            rows = list(a.reshape(len(a), -1))
        samples = [[r] for r in rows]
    else:
        samples = [[np.asarray(v).reshape(-1) for v in x]]
    out = []
    for s in samples:
        if len(s) != len(ins):
            raise RunError(f"the model takes {len(ins)} inputs, got {len(s)}")
        row = []
        for e, v in zip(ins, s):
            n = _count(e)
            if v.size != n:
                raise RunError(f"input {e['name']!r} takes {n} values {list(e['shape'])}, got {v.size}")
            if not np.isfinite(v.astype(np.float64)).all():
                raise RunError(f"input {e['name']!r}: NaN or infinite values")
            use_float = e["float"] and e["scale"] and not int8
            if not use_float:
                if not np.all(np.asarray(v, np.float64) == np.round(np.asarray(v, np.float64))):
                    raise RunError(f"input {e['name']!r} takes {e['dtype']} values, got non-integers"
                                   + ("" if int8 else " (the model's input has no float conversion)"))
                info = np.iinfo(e["dtype"])
                if v.min() < info.min or v.max() > info.max:
                    raise RunError(f"input {e['name']!r}: values outside {e['dtype']} ({info.min}..{info.max})")
                row.append(np.asarray(v).astype(_NP_DTYPE[e["dtype"]]))
            else:
                row.append(np.asarray(v, "<f4"))
        out.append(row)
    return out


def run_samples(board, model, xs, int8: bool = False, backend: str | None = None) -> list[RunResult]:
    """Model.predict on the board for each sample of `xs` (one exec per batch).

    Float inputs are quantized on the board as the runtime does; with
    `int8`, the values are the input tensor's integers, used as they are.
    """
    conn = _conn(board)
    mi = load_model(board, model, backend)
    samples = _as_samples(mi, xs, int8)
    results = []
    per = max(1, 2048 // max(1, sum(r.nbytes for r in samples[0])))
    n_in, n_out = len(mi.inputs), len(mi.outputs)
    for i in range(0, len(samples), per):
        chunk = samples[i:i + per]
        data = b"".join(v.tobytes() for row in chunk for v in row)
        s, z = _pack(data)
        out = _exec(conn, f"_mr_pred({s!r}, {z}, {len(chunk)}, {not int8})", timeout=60)
        for line in _lines(out, "Y"):
            parts = [b"" if h == "-" else bytes.fromhex(h) for h in line.split()]
            raw_in, raw_out, fl = parts[:n_in], parts[n_in:n_in + n_out], parts[n_in + n_out:]
            outs = []
            for e, ro, f in zip(mi.outputs, raw_out, fl):
                outs.append(np.frombuffer(f, "<f4").copy() if f else np.frombuffer(ro, _NP_DTYPE[e["dtype"]]).copy())
            results.append(RunResult(outs, raw_out, raw_in, mi.backend, mi.labels))
    if len(results) != len(samples):
        raise RunError(f"{len(results)} results from the board for {len(samples)} samples")
    return results


def run_once(board, model, x, int8: bool = False, backend: str | None = None) -> RunResult:
    """One inference on the board: `x` floats (quantized on the board) or, with `int8`, the tensor's integers."""
    return run_samples(board, model, [x] if np.asarray(x).ndim <= 1 else x, int8, backend)[0]


@dataclass
class HostComparison:
    equal: bool
    lines: list[str]


def host_compare(board, model, xs, results: list[RunResult], int8: bool = False) -> HostComparison:
    """Run `mpml.reference` on the same inputs and compare input quantization and output bytes with the board's."""
    from mpml.reference import quantize, run

    mi = load_model(board, model)
    graph = _graph_of(board, mi, model)
    samples = _as_samples(mi, xs, int8)
    lines, equal = [], True
    for k, (row, r) in enumerate(zip(samples, results)):
        qin = []
        for e, v, got in zip(graph.inputs, row, r.raw_inputs):
            t = graph.tensors[e.tensor]
            q = quantize(v, t.scale, t.zero_point, t.dtype) if v.dtype == np.float32 else v.astype(t.dtype)
            q = np.asarray(q).reshape(t.shape)
            if q.tobytes() != got:
                equal = False
                lines.append(f"sample {k}: input quantized differently (board {list(np.frombuffer(got, t.dtype))[:8]}..., "
                             f"host {list(q.reshape(-1))[:8]}...)")
            qin.append(q)
        want = run(graph, qin)
        for e, w, got in zip(graph.outputs, want, r.raw_outputs):
            if np.asarray(w).tobytes() != got:
                equal = False
                b = np.frombuffer(got, w.dtype)
                diff = np.flatnonzero(b != w.reshape(-1))
                lines.append(f"sample {k}: output {e.name or 'output'} differs at {len(diff)} of {w.size} values "
                             f"(first at {diff[0]}: board {b[diff[0]]}, host {w.reshape(-1)[diff[0]]})")
    return HostComparison(equal, lines)


# -- a test set --------------------------------------------------------------------------------

@dataclass
class OnDeviceEval:
    """The board's int8 outputs for every input row, and how they compare with the host reference."""

    outputs: np.ndarray  # [n, output values] in the output's dtype, from the board
    host_outputs: np.ndarray  # the same from mpml.reference
    differing: np.ndarray  # indices of rows whose bytes differ
    backend: str
    seconds: float
    execs: int

    @property
    def equal(self) -> bool:
        return len(self.differing) == 0

    def summary(self) -> str:
        n = len(self.outputs)
        if self.equal:
            return (f"on the board ({self.backend} kernels): {n} of {n} outputs equal the host simulation exactly, "
                    f"byte for byte; the metrics below are the board's and equal the host's")
        return (f"on the board ({self.backend} kernels): {len(self.differing)} of {n} outputs DIFFER from the host "
                f"simulation (first at sample {int(self.differing[0])}); the metrics below are the board's")


def eval_on_device(board, model, q, backend: str | None = None, graph=None, progress=None) -> OnDeviceEval:
    """Stream quantized input rows `q` ([n, input values], the input's dtype) through the board.

    Each exec carries as many rows as the link moves in about a second
    (measured as it goes), packed and compressed; the board runs `Model.run`
    on each and sends the outputs back packed. Returns the board's outputs
    next to `mpml.reference`'s for the same rows.
    """
    from mpml.evaluate import int8_outputs

    conn = _conn(board)
    mi = load_model(board, model, backend)
    if len(mi.inputs) != 1 or len(mi.outputs) != 1:
        raise RunError("on-device evaluation takes models with one input and one output")
    ei, eo = mi.inputs[0], mi.outputs[0]
    dt_in, dt_out = np.dtype(_NP_DTYPE[ei["dtype"]]), np.dtype(_NP_DTYPE[eo["dtype"]])
    q = np.asarray(q)
    n_in = _count(ei)
    if q.ndim != 2 or q.shape[1] != n_in:
        raise RunError(f"input rows of {q.shape[1] if q.ndim == 2 else q.shape} values; the model takes {n_in}")
    if q.dtype != dt_in:
        info = np.iinfo(dt_in)
        if q.min() < info.min or q.max() > info.max:
            raise RunError(f"input values outside {ei['dtype']}")
        q = q.astype(dt_in)
    if graph is None:
        graph = _graph_of(board, mi, model)
    row_bytes = n_in * dt_in.itemsize
    free = int(_exec(conn, "_G.collect(); print(_G.mem_free())").split()[-1])
    cap = max(row_bytes, min(48 * 1024, free // 8))  # bytes of input per exec the board's heap allows
    per = max(1, min(len(q), 768 // row_bytes or 1))  # the first exec: small, to measure the link
    outs: list[bytes] = []
    t_start = time.monotonic()
    i = execs = 0
    while i < len(q):
        chunk = q[i:i + per]
        s, z = _pack(chunk.tobytes())
        t0 = time.monotonic()
        out = _exec(conn, f"_mr_run({s!r}, {z}, {len(chunk)})", timeout=120)
        dt = max(time.monotonic() - t0, 1e-3)
        got = base64.b64decode(_lines(out, "O")[0])
        if len(got) != len(chunk) * _count(eo) * dt_out.itemsize:
            raise RunError(f"the board sent {len(got)} bytes of outputs for {len(chunk)} rows")
        outs.append(got)
        i += len(chunk)
        execs += 1
        if progress:
            progress(i, len(q))
        # about one second per exec from now on, within the heap's cap
        per = int(max(1, min(len(chunk) * 1.0 / dt, cap // row_bytes, len(chunk) * 8)))
    board_out = np.frombuffer(b"".join(outs), dt_out).reshape(len(q), -1)
    host_out = np.asarray(int8_outputs(graph, q)).reshape(len(q), -1)
    differing = np.flatnonzero((board_out != host_out.astype(dt_out)).any(axis=1))
    return OnDeviceEval(board_out, host_out, differing, mi.backend, time.monotonic() - t_start, execs)


# -- benchmark -----------------------------------------------------------------------------------

@dataclass
class BenchResult:
    """Latency, per-layer times, heap and backend of a model on a board."""

    backend: str
    ops: list[str]
    runs: int
    clock: str  # "time.ticks_us on the board" or the host-side method
    latency_us: list[float]  # one value per measurement (per run on the board's clock)
    op_us: list[float] | None  # per op: median over the runs (board clock) or the host's estimate
    heap_in_use: int  # bytes allocated (after gc.collect) while the model is loaded, before a run
    heap_model: int  # of which the model: blob buffer, arena, plan
    run_alloc: int  # bytes one run() allocates
    predict_alloc: int  # bytes one predict() allocates
    heap_free: int
    arena_bytes: int
    blob_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def median_us(self) -> float | None:
        return statistics.median(self.latency_us) if self.latency_us else None

    def table(self) -> str:
        def us(v):
            if v is None:
                return "-"
            return f"{v / 1000:.2f} ms" if v >= 10000 else f"{v:.1f} µs"

        lat = self.latency_us
        rows = [("backend", self.backend), ("clock", self.clock)]
        if lat:
            q = statistics.quantiles(lat, n=4) if len(lat) >= 2 else [lat[0]] * 3
            rows += [("latency median", us(self.median_us)),
                     ("spread", f"min {us(min(lat))}, quartiles {us(q[0])} - {us(q[2])}, max {us(max(lat))} "
                                f"({len(lat)} {'runs' if 'ticks_us' in self.clock else 'measurements'})")]
        else:
            rows.append(("latency", "not measurable on this board"))
        total = self.heap_in_use + self.run_alloc
        rows += [("peak heap in inference", f"{total} B in use: model {self.heap_model} B (blob {self.blob_bytes}, "
                                            f"arena {self.arena_bytes}, plan and views "
                                            f"{self.heap_model - self.blob_bytes - self.arena_bytes}), "
                                            f"run() allocates {self.run_alloc} B"),
                 ("predict() allocates", f"{self.predict_alloc} B"),
                 ("heap free", f"{self.heap_free} B")]
        w = max(len(r[0]) for r in rows)
        lines = [f"{a.ljust(w)}  {b}" for a, b in rows]
        if self.op_us is not None:
            s = sum(self.op_us)
            how = (f"median of {self.runs} runs, ticks_us around each op" if "ticks_us" in self.clock
                   else "host wall clock, link subtracted, see clock")
            lines += ["", f"per layer ({how}):",
                      f"  {'#':>2}  {'op':<18} {'time':>11}  {'share':>6}"]
            for k, (name, t) in enumerate(zip(self.ops, self.op_us)):
                lines.append(f"  {k:>2}  {name:<18} {us(t):>11}  {(t / s if s else 0):>6.1%}")
            ref = self.median_us
            lines.append(f"      {'sum':<18} {us(s):>11}" + (f"  ({s / ref:.0%} of the median latency)" if ref else ""))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _host_timed(conn: Connection, code: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        conn.exec(code, timeout=300)
        best = min(best, time.perf_counter() - t0)
    return best


def _emulated(board) -> bool:
    """Whether `board` is a qemu virtual board (its CPU runs at the emulator's pace)."""
    name, port = getattr(board, "virtual_name", None), getattr(board, "port", None)
    try:
        from mpml import virtual
        for vb in virtual.boards():
            if vb.name == name or (port and vb.port == port):
                return virtual.spec(vb.kind).engine == "qemu"
    except Exception:  # noqa: BLE001 - a board that went away is simply not known as emulated
        pass
    return False


def bench(board, model, runs: int = 100, backend: str | None = None, per_layer: bool = True) -> BenchResult:
    """Latency over `runs` runs of Model.run, per-layer times, peak heap, backend.

    On a board with time.ticks_us every run is timed on the board, and every op
    with Model.run_timed (the qemu virtual boards have a clock too: vboard's
    time module, at the emulator's speed, not a real chip's). Without one the
    time is the host's wall clock around execs on the board, link excluded by
    difference: (T(N runs) - T(0 runs)) / N, repeated.
    """
    conn = _conn(board)
    mi = load_model(board, model, backend)
    info = mi.info
    h = _lines(_exec(conn, "_mr_heap()", timeout=60), "H")[0].split()
    h0, run_alloc, pred_alloc, free, _ = (int(v) for v in h)
    out = _exec(conn, f"_mr_bench({int(runs)})", timeout=max(60, runs))
    notes = []
    if "T none" not in out:
        lat = [float(v) for v in _lines(out, "T")[0].split()]
        per_op = np.array([float(v) for v in _lines(out, "L")[0].split()]).reshape(runs, -1)
        op_us = [float(v) for v in np.median(per_op, axis=0)] if per_layer else None
        clock = "time.ticks_us on the board (1 µs resolution)"
        if _emulated(board):
            clock += "; a qemu virtual board: real time, but the emulator's speed, not a real chip's"
        notes.append("per-layer times are medians of run_timed() (a ticks_us pair around each op); "
                     "the latency is timed around whole run() calls")
    else:
        # No clock on the board: difference of host-timed execs, link excluded.
        t0 = _host_timed(conn, "_mr_loop(0)", 3)
        n = 10
        while True:
            t = _host_timed(conn, f"_mr_loop({n})", 1) - t0
            if t > 0.3 or n >= 100000:
                break
            n = int(n * min(50, max(2, 0.4 / max(t, 1e-3))))
        lat = []
        for _ in range(max(3, min(7, runs // 10))):
            lat.append(max(0.0, (_host_timed(conn, f"_mr_loop({n})", 1) - t0)) / n * 1e6)
        clock = (f"host wall clock: (T({n} runs) - T(0 runs)) / {n} over the link; the board has no time module, "
                 "so this is the emulator's speed, not a real chip's")
        op_us = None
        if per_layer:
            op_us = []
            z = _host_timed(conn, "_mr_op(0, 0)", 3)
            for k in range(len(info["ops"])):
                m = n
                while True:  # enough repetitions of this op for 0.3 s above the link's cost
                    t = _host_timed(conn, f"_mr_op({k}, {m})", 2) - z
                    if t > 0.3 or m >= 50 * n:
                        break
                    m = int(m * min(50, max(2, 0.4 / max(t, 1e-2))))
                op_us.append(max(0.0, t) / m * 1e6)
        notes.append("no time.ticks_us on this board: per-run spread is over repeated measurements of "
                     f"{n} runs each, not single runs")
    return BenchResult(mi.backend, list(info["ops"]), runs, clock, lat, op_us, h0, info["heap_model"],
                       run_alloc, pred_alloc, free, info["arena_bytes"], info["blob_bytes"], notes)
