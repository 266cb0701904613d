"""TFLite models of every op, straight from the TFLM interpreter to the boards.

Each model is generated (host/mpml/testing/tflite_models.py), run in TFLM — the
oracle — then imported with `mpml import`'s importer and run on the unix, m0 and
m3 boards with the native and the viper kernels. The board's bytes must be
TFLM's bytes; for models with float edges, `Model.predict` must return TFLM's
float32 outputs bit for bit. No host reference in between: this is the
end-to-end promise.
"""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest

from conftest import INT8_RUNNER, RUNTIME_BOARDS, backends_for
from mpml.blob import write_blob
from mpml.device import Connection
from mpml.importers.tflite import import_tflite
from mpml.testing.tflite_models import RANDOM_MODELS, random_chain, random_model, random_residual, run_tflm

FLOAT_RUNNER = """
import binascii, gc, struct
import mpml.model as M
def _float(blob, backends, ins):
    buf = binascii.a2b_base64(blob)
    for be in backends:
        m = M.load(buf, be)
        for h in ins:
            raw = binascii.unhexlify(h)
            y = m.predict(list(struct.unpack('<%df' % (len(raw) // 4), raw)))
            print('R', m.backend, binascii.hexlify(struct.pack('<%df' % len(y), *y)).decode())
        m = None
        gc.collect()
"""


def _int8_inputs(graph, rng, n: int, kind: str) -> list[list[np.ndarray]]:
    out = []
    for _ in range(n):
        xs = []
        for e in graph.inputs:
            t = graph.tensors[e.tensor]
            if kind in ("LOGISTIC", "TANH"):  # every int8 value once
                x = np.arange(-128, 128, dtype=np.int8)
            else:
                x = rng.integers(-128, 128, t.size).astype(np.int8)
            xs.append(x.reshape(t.shape))
        out.append(xs)
    return out


def int8_cases(seed: int, per_kind: int, inputs_per: int):
    """(blob, [inputs hex per input], [TFLM's outputs as one bytes], output sizes)."""
    rng = np.random.default_rng(seed)
    models = [(kind, random_model(kind, rng)) for kind in RANDOM_MODELS for _ in range(per_kind)]
    models += [("chain", random_chain(rng)), ("residual", random_residual(rng))]
    cases = []
    for kind, model in models:
        graph = import_tflite(model)
        ins = _int8_inputs(graph, rng, inputs_per, kind)
        want = [b"".join(np.asarray(y).tobytes() for y in run_tflm(model, xs)) for xs in ins]
        cases.append((kind, write_blob(graph), [[x.tobytes().hex() for x in xs] for xs in ins], want,
                      [graph.tensors[e.tensor].nbytes for e in graph.outputs]))
    return cases


def float_cases(seed: int, n: int):
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        model = random_chain(rng, float_io=True) if k % 2 == 0 else random_model("FULLY_CONNECTED", rng, float_io=True)
        graph = import_tflite(model)
        t = graph.tensors[graph.inputs[0].tensor]
        scale = t.scale * 100
        ins = [rng.uniform(-scale, scale, t.size).astype(np.float32).reshape(t.shape) for _ in range(2)]
        want = [np.asarray(run_tflm(model, [x])[0], dtype="<f4").tobytes() for x in ins]
        cases.append((write_blob(graph), [x.astype("<f4").tobytes().hex() for x in ins], want))
    return cases


def test_boards_equal_tflm_on_every_op(rt_board):
    board = rt_board
    backends = backends_for(board)
    unix = board.kind == "unix"
    cases = int8_cases(seed=700 + RUNTIME_BOARDS.index(board.kind), per_kind=3 if unix else 1, inputs_per=3 if unix else 2)
    checked: dict[str, int] = {}
    with Connection(board.port, timeout=90) as c:
        c.exec(INT8_RUNNER)
        batch = 6 if unix else 2
        for i in range(0, len(cases), batch):
            chunk = cases[i:i + batch]
            code = "".join(f"_run_int8({base64.b64encode(blob)!r}, {backends!r}, {ins!r}, {nout!r})\n"
                           for _k, blob, ins, _w, nout in chunk)
            lines = [ln.split() for ln in c.exec(code).splitlines() if ln.startswith("R ")]
            expected = [(kind, be, w) for kind, _b, _i, want, _n in chunk for be in backends for w in want]
            assert len(lines) == len(expected), f"{len(lines)} results for {len(expected)} runs"
            for (_tag, asked, used, got), (kind, be, want) in zip(lines, expected):
                assert asked == used == be
                assert bytes.fromhex(got) == want, f"{board.kind} {be} {kind}: board differs from TFLM"
                checked[kind] = checked.get(kind, 0) + 1
    assert set(checked) == set(RANDOM_MODELS) | {"chain", "residual"}
    if "native" not in backends:
        pytest.skip(f"viper equals TFLM ({sum(checked.values())} runs); no natmod for {board.arch}")


def test_predict_with_float_edges_equals_tflm(rt_board):
    board = rt_board
    backends = backends_for(board)
    cases = float_cases(seed=900 + RUNTIME_BOARDS.index(board.kind), n=4 if board.kind == "unix" else 2)
    with Connection(board.port, timeout=90) as c:
        c.exec(FLOAT_RUNNER)
        for blob, ins, want in cases:
            out = c.exec(f"_float({base64.b64encode(blob)!r}, {backends!r}, {ins!r})\n")
            lines = [ln.split() for ln in out.splitlines() if ln.startswith("R ")]
            assert len(lines) == len(backends) * len(want)
            for (_tag, _used, got), w in zip(lines, [w for _be in backends for w in want]):
                g = struct.unpack(f"<{len(w) // 4}f", bytes.fromhex(got))
                e = struct.unpack(f"<{len(w) // 4}f", w)
                assert bytes.fromhex(got) == w, f"{board.kind}: predict {g} != TFLM {e}"
