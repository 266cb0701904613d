"""Fuzz: thousands of corrupted blobs fed to mpml.load on the boards, native and viper.

The corruption runs on the board (a seeded xorshift32: bit flips, byte
overwrites in the header, tensor table, op records and io table, random and
extreme u16/u32 fields, truncation with a matching header), and the CRC is
recomputed afterwards so the deeper validation runs, not just the checksum.
A blob that still loads is run on zero inputs. The board must refuse with
ValueError (or MemoryError for a huge arena), never crash (the supervisor
counts HardFaults and reboots) or hang (every exec has a timeout), and must
answer afterwards.
"""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest

from conftest import runtime_board
from mpml import virtual
from mpml.blob import write_blob
from mpml.device import Connection
from mpml.device.package import native_module
from mpml.testing.graphs import mlp, random_graph, random_tree_graph

FUZZER = """
import binascii, struct, gc
import mpml.model as M
_crc = binascii.crc32
_st = [1]
def _r():
    s = _st[0]
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    _st[0] = s
    return s
_EXTREME = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
def _mutate(b):
    n = len(b)
    h = struct.unpack_from('<IIIII', b, 40)  # tensors, ops, ops_size, io, strings
    nt, no, ni, nout = struct.unpack_from('<HHHH', b, 32)
    regions = ((0, 80), (h[0], nt * 32), (h[1], h[2]), (h[3], (ni + nout) * 8), (0, n - 4))
    for _ in range(1 + _r() % 3):
        kind = _r() % 8
        start, size = regions[_r() % len(regions)]
        if size <= 0:
            start, size = 0, n - 4
        pos = start + _r() % size
        if pos >= n - 4:
            continue  # past the end of a blob truncated by an earlier mutation
        if kind == 0:
            b[pos] ^= 1 << (_r() % 8)
        elif kind == 1:
            b[pos] = _r() & 0xFF
        elif kind == 2 and pos + 2 <= n - 4:
            struct.pack_into('<H', b, pos & ~1, _r() & 0xFFFF)
        elif kind == 3 and pos + 4 <= n - 4:
            struct.pack_into('<I', b, pos & ~3, _r())
        elif kind == 4 and pos + 4 <= n - 4:
            v = _EXTREME[_r() % len(_EXTREME)]
            if _r() & 1 and v <= 0xFFFF:
                struct.pack_into('<H', b, pos & ~1, v)
            else:
                struct.pack_into('<I', b, pos & ~3, v)
        elif kind == 5:
            # truncation, with the header's size made to match
            m = 84 + _r() % (n - 84) if n > 88 else n
            b = b[:m]
            n = m
            struct.pack_into('<I', b, 8, n)
        elif kind == 6:
            b[pos] = 0
        else:
            b[pos] = (b[pos] + 1) & 0xFF
    if len(b) >= 84:
        struct.pack_into('<I', b, len(b) - 4, _crc(memoryview(b)[:len(b) - 4]))
    return b
def _fuzz(bases, count, seed, backend):
    _st[0] = seed
    loaded = ran = run_err = mem = 0
    other = {}
    for i in range(count):
        b = _mutate(bytearray(bases[i % len(bases)]))
        try:
            m = M.load(b, backend)
        except ValueError:
            continue
        except MemoryError:
            mem += 1
            continue
        except Exception as e:
            k = 'load ' + type(e).__name__ + ': ' + str(e)[:60]
            other[k] = other.get(k, 0) + 1
            continue
        loaded += 1
        try:
            m.run([bytearray(e.nbytes) for e in m.inputs], [bytearray(e.nbytes) for e in m.outputs])
            ran += 1
        except ValueError:
            run_err += 1
        except MemoryError:
            mem += 1
        except Exception as e:
            k = 'run ' + type(e).__name__ + ': ' + str(e)[:60]
            other[k] = other.get(k, 0) + 1
        m = None
        if i % 64 == 0:
            gc.collect()
    print('FUZZ', count, loaded, ran, run_err, mem, repr(other))
"""


def _bases() -> list[bytes]:
    blobs = [write_blob(mlp(sizes=(8, 6, 4)))]
    for seed in range(3):
        blobs.append(write_blob(random_graph(np.random.default_rng(100 + seed), max_ops=4)))
    blobs.append(write_blob(random_tree_graph(np.random.default_rng(7))))
    return blobs


@pytest.mark.parametrize("kind,count", [("unix", 3000), ("m0", 1000)])
def test_corrupted_blobs_never_crash_or_hang_the_board(kind, count, record_property):
    board = runtime_board(kind)
    backends = (["native"] if native_module(board.arch) else []) + ["viper"]
    crashes = virtual.get(board.name).state["crashes"]
    bases = [base64.b64encode(b) for b in _bases()]
    totals = {}
    t0 = time.monotonic()
    with Connection(board.port, timeout=120) as c:
        c.exec(FUZZER + "import binascii\n_B = [binascii.a2b_base64(x) for x in %r]\n" % (bases,))
        for k, backend in enumerate(backends):
            per = 500 if kind == "unix" else 250
            for j in range(0, count, per):
                out = c.exec(f"_fuzz(_B, {per}, {0x9E3779B9 ^ (k * 7919 + j + 1)}, {backend!r})", timeout=120)
                line = [ln for ln in out.splitlines() if ln.startswith("FUZZ")][0]
                n, loaded, ran, run_err, mem, other = line.split(" ", 6)[1:]
                t = totals.setdefault(backend, {"blobs": 0, "loaded": 0, "ran": 0, "run_errors": 0,
                                                "memory_errors": 0, "other": {}})
                t["blobs"] += int(n)
                t["loaded"] += int(loaded)
                t["ran"] += int(ran)
                t["run_errors"] += int(run_err)
                t["memory_errors"] += int(mem)
                for key, v in eval(other).items():  # noqa: S307 - a dict repr printed by our own code
                    t["other"][key] = t["other"].get(key, 0) + v
        assert c.eval("1 + 1") == 2  # the board still answers
    elapsed = time.monotonic() - t0
    assert virtual.get(board.name).state["crashes"] == crashes, "the board crashed during the fuzz run"
    summary = ", ".join(f"{be}: {t['blobs']} blobs, {t['loaded']} loaded, {t['ran']} ran, "
                        f"{t['run_errors']} refused by a kernel, {t['memory_errors']} MemoryError"
                        for be, t in totals.items())
    print(f"\nfuzz {kind}: {summary}; {elapsed:.1f} s")
    record_property("fuzz", summary)
    for be, t in totals.items():
        assert not t["other"], f"{kind} {be}: errors other than ValueError/MemoryError: {t['other']}"
        assert t["blobs"] == count and t["loaded"] > 0
