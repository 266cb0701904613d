"""`mpml collect` throughput: the highest rate each board streams with zero loss.

    build/venv/bin/python tools/bench/collect.py [--boards unix,m0,m3] [--channels 3] [--seconds 2]

For each board: a 3-channel recording replayed by the real Sampler (the
board's timer, thread or poll driver) and streamed by mpml.collect to a
dataset folder, at rising rates (1 kHz, then doubling, then halving the
step between the last rate that passed and the first that did not). A rate
passes when the samples written equal the recording exactly: no gap, no
drop, no CRC error. A rate the sampler refuses (its own calibration: one
sample's cost x 2 must fit the period) ends the search. Also measured: the
stream alone, with a stand-in sampler that has every sample ready at once
(framing, CRC, the link and the host's parser: the ceiling collect itself
puts on a faster sampler). Boards are started in a private run folder and
stopped at the end; run it with no other virtual board up (an idle qemu board
keeps a host CPU busy).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPML_RUN_DIR", tempfile.mkdtemp(prefix="mpml-bench-collect-"))

# A stand-in sampler with samples always ready: read() hands out the buffer as it is.
STREAM_ONLY = """
import mpml.collect as _C
class _Ready:
    def __init__(self, ch, rate):
        self.channels = ch
        self.rate_hz = rate
        self.dropped = 0
        self.nxt = 0
    @property
    def count(self):
        return self.nxt + 4096
    def start(self):
        pass
    def stop(self):
        pass
    def stats(self):
        return {'rate_hz': None, 'dropped': 0, 'count': self.nxt, 'mode': 'ready'}
    def read(self, buf):
        n = len(buf) // self.channels
        first = self.nxt
        self.nxt += n
        return n, first
_C.stream(_Ready(%(ch)d, %(rate)d), %(seconds)r, frame_samples=%(fs)d)
"""


def recording(n: int, ch: int):
    import numpy as np

    return (np.arange(n * ch) % 30000).astype(np.int16).reshape(n, ch)


def make_source(d: Path, ch: int, n: int) -> Path:
    from mpml.data import Dataset, save_dataset

    ds = Dataset.from_counts("bench", [recording(n, ch)], ["x"], sample_rate_hz=1000,
                             channels=[f"c{k}" for k in range(ch)])
    save_dataset(ds, d / "src")
    return d / "src" / "recordings" / "r0000.i16"


def trial(board, src: Path, rate: int, seconds: float, ch: int, d: Path):
    """('pass' | 'loss' | 'refused', detail, result)."""
    import numpy as np

    from mpml.data import load_dataset
    from mpml.device.collect import CollectError, collect

    out = d / f"r{rate}"
    shutil.rmtree(out, ignore_errors=True)
    try:
        r = collect(board, "x", out=out, source=f"replay:{src},loop", rate=rate, seconds=seconds)
    except CollectError as e:
        if "more than this board can sustain" in str(e):
            return "refused", str(e).split("at most ")[-1].split(" ")[0], None
        return "failed", str(e), None
    rec = load_dataset(out).recordings
    whole = np.concatenate([recording(src.stat().st_size // (2 * ch), ch)] * 64)
    exact = len(rec) == 1 and np.array_equal(rec[0].samples, whole[:rec[0].n_samples])
    if r.ok and exact and r.samples == int(seconds * rate + 0.5):
        return "pass", "", r
    return "loss", (f"{r.samples} samples, {r.lost} lost, {r.dropped} dropped, {r.crc_errors} CRC, end {r.end}"
                    f"{', ' + r.error if r.error else ''}{'' if exact else ', not the recording'}"), r


def stream_only(board, ch: int, d: Path):
    """Samples/s and KB/s through framing + link + parser alone (big frames, no sampler)."""
    from mpml.device.collect import collect, MAX_PAYLOAD

    fs = MAX_PAYLOAD // (2 * ch)
    rate, seconds = 1000, 200.0  # 200 000 "samples" of indices: the stream sends them as fast as it can
    out = d / "stream-only"
    shutil.rmtree(out, ignore_errors=True)
    t = time.monotonic()
    r = collect(board, "x", out=out, source="imu", rate=rate,
                _code=STREAM_ONLY % {"ch": ch, "rate": rate, "seconds": seconds, "fs": fs})
    dt = time.monotonic() - t
    assert r.ok and r.samples == int(rate * seconds), r.line()
    return r.samples / r.seconds, r.samples * ch * 2 / r.seconds / 1024, dt


def search(board, src: Path, seconds: float, ch: int, d: Path, start: int = 1000, steps: int = 3):
    """The highest passing rate: doubling from `start`, then `steps` bisections."""
    good, bad, limit, last = None, None, None, None
    rate = start
    while True:
        status, detail, r = trial(board, src, rate, seconds, ch, d)
        print(f"  {board.name:6} {rate:7d} Hz: {status} {detail}", file=sys.stderr, flush=True)
        if status == "pass":
            good, last = rate, r
            rate *= 2
            continue
        if status == "refused":
            limit = int(detail) if detail.isdigit() else None
        bad = rate
        break
    if good is None:
        return None, limit, bad, None
    for _ in range(steps):
        if bad - good <= max(50, good // 20):
            break
        mid = (good + bad) // 2
        if limit is not None and mid > limit:
            bad = mid
            continue
        status, detail, r = trial(board, src, mid, seconds, ch, d)
        print(f"  {board.name:6} {mid:7d} Hz: {status} {detail}", file=sys.stderr, flush=True)
        if status == "pass":
            good, last = mid, r
        else:
            if status == "refused" and detail.isdigit():
                limit = int(detail)
            bad = mid
    return good, limit, bad, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="unix,m0,m3")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()

    from mpml import virtual
    from mpml.device import Board, Connection
    from mpml.device.package import install

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = make_source(d, args.channels, 4000)
        try:
            for kind in args.boards.split(","):
                vb = virtual.start(kind, name=f"bench-{kind}", fresh=True)
                with Connection(vb.port, timeout=60) as c:
                    install(c, vb.arch)
                board = Board.open(vb.name, timeout=30)
                try:
                    sps, kbs, _ = stream_only(board, args.channels, d)
                    good, limit, bad, r = search(board, src, args.seconds, args.channels, d)
                finally:
                    board.close()
                virtual.stop(vb.name)
                rows.append((kind, good, bad, limit, r.board_rate_hz if r else None, sps, kbs))
        finally:
            virtual.stop_all()

    ch = args.channels
    print(f"collect: highest rate streamed with zero loss, {ch} channels x int16, {args.seconds:g} s per trial")
    print(f"{'board':6} | {'zero-loss max':>13} | {'first failing':>13} | {'sampler limit':>13} | "
          f"{'board measured':>14} | {'stream alone':>22}")
    print("-" * 6 + "-+-" + "-+-".join("-" * w for w in (13, 13, 13, 14, 22)))
    for kind, good, bad, limit, measured, sps, kbs in rows:
        print(f"{kind:6} | {(f'{good} Hz' if good else 'none'):>13} | {(f'{bad} Hz' if bad else '-'):>13} | "
              f"{(f'{limit} Hz' if limit else '-'):>13} | {(f'{measured:.1f} Hz' if measured else '-'):>14} | "
              f"{f'{sps:,.0f} samples/s {kbs:.0f} KB/s':>22}")
    print(f"zero loss: every sample equals the replayed recording, no gap, drop or CRC error; the bar is "
          f"{ch} x 16 bit x 1 kHz")


if __name__ == "__main__":
    main()
