#!/usr/bin/env python3
"""On-device features: time per window of mpml.featurize, per backend, and M0 instructions of the C.

    build/venv/bin/python tools/bench/features.py [--boards unix,m0] [--no-m0-count]

1. On virtual boards (unix and the Cortex-M0 qemu board by default; started
   in a private run folder and stopped afterwards), Featurizer.compute() on
   a few specs, native vs viper vs plain Python: microseconds per window, one
   run's median. The m0 figures are qemu's speed on this machine, not an
   RP2040's (the instruction counts below are the deterministic measure).
   Run it with no other virtual board up: an idle qemu board spins a host CPU.
2. The C kernels (firmware/kernels/features.c, feature_bands.c) compiled for
   Cortex-M0 (arm-none-eabi-gcc -O2) and run in Unicorn: instructions and
   estimated Cortex-M0+ cycles per window, outputs compared with the host's
   FeatureSpec bit for bit; at 125 MHz (an RP2040) that gives microseconds.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mpml.features import FeatureSpec  # noqa: E402

# name, blocks, window length, channels, sample rate
SPECS = [
    ("stats (7) 128x3", [{"stats": {}}], 128, 3, 50.0),
    ("bands fft64 x8 128x3", [{"bands": {"fft": 64, "bands": 8}}], 128, 3, 50.0),
    ("stats + bands fft64 128x3", [{"stats": {}}, {"bands": {"fft": 64, "bands_hz": [[0.5, 2], [2, 4], [4, 8],
                                                                                   [8, 16], [16, 25]]}}],
     128, 3, 50.0),
    ("raw decimate 2 128x3", [{"raw": {"decimate": 2}}], 128, 3, 50.0),
    ("vibration: fft256 x16 + 2 stats 256x3", [{"bands": {"fft": 256, "bands": 16}},
                                               {"stats": {"stats": ["rms", "peak_to_peak"]}}], 256, 3, 1000.0),
]
BACKENDS = ("native", "viper", "pure")
CLOCK_HZ = 125e6  # an RP2040

BOARD_CODE = """
import time, binascii, gc
from array import array
from mpml.featurize import Featurizer
def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
def _bench(spec, win, be, reps):
    try:
        fx = Featurizer(binascii.a2b_base64(spec), be)
    except ValueError as e:
        print('B', be, '-', 'unavailable')
        return
    w = array('h', binascii.a2b_base64(win))
    out = bytearray(fx.n_features)
    gc.collect()
    # a warm-up call after the collection: on qemu, a write near code in the heap (the viper and
    # C code live there) makes it translate that code again, which no real CPU does
    fx.compute(w, out)
    ts = []
    for _ in range(5):
        t = time.ticks_us()
        for _ in range(reps):
            fx.compute(w, out)
        ts.append(time.ticks_diff(time.ticks_us(), t) / reps)
    print('B', be, fx.backend, _median(ts))
"""


def spec_and_window(blocks, length, channels, fs):
    rng = np.random.default_rng(length * channels)
    t = np.arange(length)[:, None]
    x = (8000 * np.sin(2 * np.pi * 3.3 * t / 64 + np.arange(channels)) + rng.normal(0, 1500, (length, channels)))
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    train = np.stack([np.roll(x, k, axis=0) for k in range(0, length, max(1, length // 8))])
    spec = FeatureSpec.from_dict({"blocks": blocks}, window_length=length, n_channels=channels,
                                 sample_rate_hz=fs).fit(train)
    return spec, x


def board_times(kind: str) -> dict:
    """{(spec name, backend): microseconds per window} on a fresh virtual board of `kind`."""
    from mpml import virtual
    from mpml.device import Connection
    from mpml.device.package import install

    board = virtual.start(kind, name=f"bench-fx-{kind}", fresh=True, watch_pid=os.getpid())
    out = {}
    try:
        with Connection(board.port, timeout=300) as c:
            install(c, board.arch)
            c.exec(BOARD_CODE)
            for name, blocks, length, channels, fs in SPECS:
                spec, x = spec_and_window(blocks, length, channels, fs)
                sb = base64.b64encode(spec.to_bytes()).decode()
                wb = base64.b64encode(x.astype("<i2").tobytes()).decode()
                for be in BACKENDS:
                    reps = {"native": 20, "viper": 5, "pure": 1}[be]
                    if kind != "unix" and be == "native":
                        reps = 5
                    lines = [ln.split() for ln in c.exec(f"_bench({sb!r}, {wb!r}, {be!r}, {reps})\n",
                                                         timeout=600).splitlines() if ln.startswith("B ")]
                    _b, _be, used, us = lines[0]
                    out[(name, be)] = None if used == "-" else float(us)
    finally:
        virtual.stop(board.name)
    return out


# -- Cortex-M0 instruction counts (Unicorn) --------------------------------------------------------

def m0_sim():
    """An m0sim.M0 with the feature kernels (features.c, feature_bands.c) built for Cortex-M0."""
    import m0sim

    kernels = m0sim.KERNELS
    h = m0sim.build_dir()
    h.mkdir(parents=True, exist_ok=True)
    elf = h / "features-m0.elf"
    srcs = [kernels / "features.c", kernels / "feature_bands.c"]
    newest = max(p.stat().st_mtime for p in srcs + list(kernels.glob("*.h")))
    if not elf.exists() or elf.stat().st_mtime < newest:
        # no -lgcc: a runtime helper call (divide, long multiply, 64-bit shift) fails the link, as in the natmod
        cmd = ["arm-none-eabi-gcc", *m0sim.CFLAGS, f"-I{kernels}", *map(str, srcs),
               "-Wl,-Ttext=0x1000", "-Wl,-e,mpml_fx_bands", "-o", str(elf)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("feature kernels for Cortex-M0 failed to build:\n" + r.stderr)
    return m0sim.M0(elf)


def m0_features(sim, spec: FeatureSpec, x: np.ndarray, count: bool = False):
    """The int32 features of window x [L, C] by the C kernels on the simulated Cortex-M0, and the
    instructions and estimated M0+ cycles they took (when count)."""
    length, channels = x.shape
    sim.reset_heap()
    xa = sim.alloc(x.astype("<i2").tobytes())
    fa = sim.alloc(4 * spec.n_features)
    total = {"instructions": 0, "cycles": 0}
    for kind, p, tab in _featurizer(spec):
        pa = sim.alloc(np.asarray(p, "<i4").tobytes())
        if kind == "bands":
            ta = sim.alloc(tab)
            n, nb = p[4], p[7]
            wa = sim.alloc(4 * (2 * n + 2 * nb))
            args = (pa, len(p), xa, length * channels, ta, len(tab) // 2, wa, 2 * n + 2 * nb, fa,
                    spec.n_features)
            func = "mpml_fx_bands"
        else:
            args = (pa, len(p), xa, length * channels, fa, spec.n_features)
            func = "mpml_fx_raw" if kind == "raw" else "mpml_fx_stats"
        res = sim.call(func, *args, count=count)
        r0, st = res if count else (res, None)
        if r0:
            raise RuntimeError(f"{func} refused: {sim.cstr(r0)}")
        if count:
            total["instructions"] += st["instructions"]
            total["cycles"] += st["cycles"]
    return np.frombuffer(sim.read(fa, 4 * spec.n_features), "<i4").copy(), total


def m0_counts() -> list[dict]:
    sim = m0_sim()
    rows = []
    for name, blocks, length, channels, fs in SPECS:
        spec, x = spec_and_window(blocks, length, channels, fs)
        got, total = m0_features(sim, spec, x, count=True)
        if not np.array_equal(got, spec.features(x)[0]):
            raise SystemExit(f"{name}: the Cortex-M0 build differs from FeatureSpec.features")
        rows.append({"spec": name, **total})
    # the FFT alone: one 64-point frame of one channel, rect window (no mean)
    spec = FeatureSpec.from_dict({"blocks": [{"bands": {"fft": 64, "bands": [[0, 33]], "window": "rect",
                                                        "remove_mean": False}}]}, window_length=64, n_channels=1)
    x = spec_and_window([{"stats": {}}], 64, 1, 0.0)[1]
    (kind, p, tab), = _featurizer(spec)
    sim.reset_heap()
    xa, fa = sim.alloc(x.astype("<i2").tobytes()), sim.alloc(4)
    pa, ta, wa = sim.alloc(np.asarray(p, "<i4").tobytes()), sim.alloc(tab), sim.alloc(4 * 130)
    r0, st = sim.call("mpml_fx_bands", pa, len(p), xa, 64, ta, len(tab) // 2, wa, 130, fa, 1, count=True)
    assert r0 == 0 and np.frombuffer(sim.read(fa, 4), "<i4")[0] == spec.features(x[None])[0][0]
    rows.append({"spec": "one 64-point frame (window, FFT, power, 1 band)", **st})
    return rows


def _featurizer(spec: FeatureSpec) -> list:
    """(kind, params, table bytes) per block, as mpml.featurize builds them (from the device module)."""
    from mpml.shared import featurize

    data = spec.to_bytes()
    s = featurize.parse(data, False)
    out, off = [], 0
    for b in s["blocks"]:
        ch, k = b["channels"], len(b["channels"])
        if b["kind"] == featurize.KIND_RAW:
            out.append(("raw", [s["length"], s["channels"], k, off, b["decimate"]] + ch, b""))
        elif b["kind"] == featurize.KIND_STATS:
            out.append(("stats", [s["length"], s["channels"], k, off, len(b["stats"])] + b["stats"] + ch, b""))
        else:
            n, nb, at = b["n"], b["n_bands"], b["table_at"]
            out.append(("bands", [s["length"], s["channels"], k, off, n, b["log2n"], int(b["remove_mean"]), nb]
                        + ch, data[at:at + 4 * n + 4 * nb]))
        off += b["n_features"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="unix,m0")
    ap.add_argument("--no-m0-count", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MPML_RUN_DIR", tempfile.mkdtemp(prefix="mpml-bench-fx-"))
    kinds = [k for k in args.boards.split(",") if k]
    times = {k: board_times(k) for k in kinds}
    print("Featurizer.compute(), microseconds per window (median of 5 runs; m0: qemu on this machine, "
          "not an RP2040)")
    head = f"{'spec':40}" + "".join(f" {k + ' ' + be:>12}" for k in kinds for be in BACKENDS)
    print(head)
    for name, *_ in SPECS:
        row = f"{name:40}"
        for k in kinds:
            for be in BACKENDS:
                v = times[k].get((name, be))
                row += f" {'-' if v is None else f'{v:.0f}':>12}"
        print(row)
    if not args.no_m0_count:
        print()
        print("C kernels on a Cortex-M0 (Unicorn, arm-none-eabi-gcc -O2), per window; outputs equal the host's")
        print(f"{'spec':48} {'instructions':>12} {'M0+ cycles':>11} {'us @125MHz':>11}")
        for r in m0_counts():
            print(f"{r['spec']:48} {r['instructions']:12} {r['cycles']:11} {r['cycles'] / CLOCK_HZ * 1e6:11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
