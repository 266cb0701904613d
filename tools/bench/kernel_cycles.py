#!/usr/bin/env python3
"""Instructions and estimated Cortex-M0+ cycles per multiply-accumulate.

usage: build/venv/bin/python tools/bench/kernel_cycles.py [--json]

Compiles firmware/kernels for Cortex-M0 (bare metal, -O2), runs
FULLY_CONNECTED 256->128 and CONV_2D 3x3 16->16 on 16x16 (SAME, stride 1) in
Unicorn and counts every executed instruction; cycles come from a Cortex-M0+
table by instruction class (m0sim.m0plus_cycles). Every output is compared
with firmware/mpml/_pure.py on CPython: a difference fails the benchmark.
Rows: the kernels as shipped ("mpml"), the same C with the Thumb-1 assembly
turned off ("mpml, no asm"), and TFLM-reference-style loops ("naive C").
Counts are deterministic; the bar is at most 4.0 instructions per MAC.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import m0sim  # noqa: E402

BAR = 4.0


def i32s(vals) -> bytes:
    return b"".join((v & 0xFFFFFFFF).to_bytes(4, "little") for v in vals)


def requant_params(rng: random.Random, n: int):
    bias = [rng.randint(-40000, 40000) for _ in range(n)]
    mult = [rng.randint(1 << 30, (1 << 31) - 1) for _ in range(n)]
    shift = [rng.randint(-9, -6) for _ in range(n)]
    return i32s(bias), i32s(mult), i32s(shift)


def fc_case(seed: int = 1):
    rng = random.Random(seed)
    b, n_in, n_out = 1, 256, 128
    p = [b, n_in, n_out, rng.randint(-20, 20), -128, 127]
    x = bytes(rng.randrange(256) for _ in range(b * n_in))
    w = bytes(rng.randrange(256) for _ in range(n_in * n_out))
    return "FULLY_CONNECTED 256->128", 1, p, [x, w, *requant_params(rng, n_out), bytes(b * n_out)], n_in * n_out * b


def conv_case(seed: int = 2):
    rng = random.Random(seed)
    h = w_ = 16
    c, oc, k = 16, 16, 3
    # batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w, pad_t, pad_l,
    # in_zp, out_offset, act_min, act_max
    p = [1, h, w_, c, h, w_, oc, k, k, 1, 1, 1, 1, 1, 1, rng.randint(-128, 127), rng.randint(-20, 20), -128, 127]
    x = bytes(rng.randrange(256) for _ in range(h * w_ * c))
    wt = bytes(rng.randrange(256) for _ in range(oc * k * k * c))
    macs = h * w_ * oc * k * k * c
    return "CONV_2D 3x3 16->16 16x16", 2, p, [x, wt, *requant_params(rng, oc), bytes(h * w_ * oc)], macs


VERSIONS = ("mpml", "mpml, no asm", "naive C")


def run(versions=VERSIONS) -> list[dict]:
    pure = m0sim.load_pure()
    fast = m0sim.M0()
    noasm = m0sim.M0(m0sim.build(("-DMPML_NO_ASM",))) if "mpml, no asm" in versions else None
    rows = []
    for name, code, p, bufs, macs in (fc_case(), conv_case()):
        want = bytearray(len(bufs[-1]))
        fn = pure.fully_connected if code == 1 else pure.conv_2d
        fn(p, *[bytearray(b) for b in bufs[:-1]], want)
        naive_fn = "naive_fully_connected" if code == 1 else "naive_conv_2d"
        for label, sim, func in (("mpml", fast, "mpml_run"), ("mpml, no asm", noasm, "mpml_run"),
                                 ("naive C", fast, naive_fn)):
            if label not in versions:
                continue
            err, out, st = sim.run_op(code, p, bufs, func=func, count=True)
            if err or out != bytes(want):
                raise SystemExit(f"{name} / {label}: output differs from _pure.py ({err or 'bytes differ'})")
            rows.append({"kernel": name, "version": label, "macs": macs, "instructions": st["instructions"],
                         "instr_per_mac": st["instructions"] / macs, "cycles_per_mac": st["cycles"] / macs})
    # The natmod's per-call argument checking: mpml_check for the FC case.
    name, code, p, bufs, _ = fc_case()
    fast.reset_heap()
    addrs = [fast.alloc(b) for b in bufs]
    args = (code, fast.alloc(i32s(p)), len(p), fast.alloc(i32s(addrs)), fast.alloc(i32s([len(b) for b in bufs])))
    r0, st = fast.call("mpml_check", *args, count=True)
    assert r0 == 0
    rows.append({"kernel": "per-call checks (mpml_check, FC)", "version": "mpml", "macs": 0,
                 "instructions": st["instructions"], "instr_per_mac": None,
                 "cycles_per_mac": None, "cycles": st["cycles"]})
    return rows


def main() -> int:
    rows = run()
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{'kernel':30} {'version':13} {'MACs':>8} {'instructions':>12} {'instr/MAC':>9} {'M0+ cyc/MAC':>11}")
        for r in rows:
            if r["macs"]:
                print(f"{r['kernel']:30} {r['version']:13} {r['macs']:8} {r['instructions']:12} "
                      f"{r['instr_per_mac']:9.2f} {r['cycles_per_mac']:11.2f}")
            else:
                print(f"{r['kernel']:30} {r['version']:13} {'':8} {r['instructions']:12} "
                      f"{'':9} {r['cycles']:>8} cycles")
        print(f"outputs equal _pure.py bit for bit; bar: mpml <= {BAR} instructions per MAC")
    bad = [r for r in rows if r["version"] == "mpml" and r["macs"] and r["instr_per_mac"] > BAR]
    if bad:
        print("FAIL: over the bar: " + ", ".join(r["kernel"] for r in bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
