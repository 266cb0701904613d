#!/usr/bin/env python3
"""`make demo`: the whole mpml loop on one board, explained as it goes.

    start the board -> install the runtime -> collect labelled recordings from
    the board's sampler -> train -> quantize -> push-model -> classify the live
    stream on the board -> accuracy from the board's own outputs

The data is the smartwatch IMU set in the seglearn wheel (6 axes at 50 Hz,
7 exercises, 10 people; from PyPI, nothing from the internet). A virtual board
has no sensor, so its sampler reads a Replay source: recordings put on the
board's filesystem, played at their real rate times --speed (the demo uses
10x so it ends in a few minutes; everything above the source runs as it
would on a wrist). The model never sees the people whose recordings are
classified live.

    tools/demo.py [--board m0|m3|unix] [--port PORT] [--per-class N] [--speed X]

PORT (or --port) runs it on a real board over USB instead (the replayed
recordings are sent to it the same way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "demo"
RATE_HZ = 50  # the watch set's rate
TEST_SUBJECTS = 2  # people held out: their recordings are only ever classified live
LIVE_SECONDS = 20  # of each held-out recording, played back to back for the live run


def step(n: int, text: str, why: str = "") -> float:
    print(f"\n[{n}/7] {text}", flush=True)
    if why:
        print(f"      {why}", flush=True)
    return time.monotonic()


def done(t0: float, text: str = "") -> None:
    print(f"      {text + ' ' if text else ''}({time.monotonic() - t0:.1f} s)", flush=True)


def write_i16(path: Path, samples: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.ascontiguousarray(samples, "<i2").tobytes())
    return path


def pick_recordings(ds, per_class: int):
    """Training recordings (per_class per label, from the training people) and one test recording per label."""
    subjects = sorted({r.subject for r in ds.recordings})
    test_people = set(subjects[-TEST_SUBJECTS:])
    rng = np.random.default_rng(0)
    train, test = [], []
    for label in ds.labels:
        mine = [r for r in ds.recordings if r.label == label]
        pool = [r for r in mine if r.subject not in test_people]
        held = [r for r in mine if r.subject in test_people]
        order = rng.permutation(len(pool))
        train += [pool[i] for i in order[:per_class]]
        if held:
            test.append(held[int(rng.integers(len(held)))])
    return train, test, sorted(test_people)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default=os.environ.get("DEMO_BOARD", "m0"), help="virtual board kind (default m0; make demo DEMO_BOARD=unix)")
    ap.add_argument("--port", default=os.environ.get("PORT") or None, help="a real board's serial port instead")
    ap.add_argument("--per-class", type=int, default=4, help="training recordings collected per exercise")
    ap.add_argument("--speed", type=float, default=10.0, help="replay speed (1 = real time)")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()

    from mpml import virtual
    from mpml.data import builtin, load_dataset
    from mpml.device.board import Board
    from mpml.device.collect import collect
    from mpml.device.install import install
    from mpml.device.live import classify_live
    from mpml.device.models import push_model
    from mpml.recipes import parse_recipe, train

    t_all = time.monotonic()
    started = None
    if args.port:
        t0 = step(1, f"your board on {args.port}")
        board = Board.open(args.port, timeout=30)
    else:
        spec = virtual.spec(args.board)
        t0 = step(1, f"start the {spec.title}",
                  f"it stands for: {spec.stands_for}. It has no sensor: its sampler will replay recordings.")
        started = virtual.start(args.board, name=f"demo-{args.board}", fresh=True)
        board = Board.open(started.name, timeout=30)
    try:
        info = board.probe()
        done(t0, f"MicroPython {info.micropython}, arch {info.mpy_arch}, {info.free_heap // 1024} KiB heap free,"
                 f" {info.free_flash // 1024} KiB flash free")

        t0 = step(2, "install the mpml runtime (mpml install)",
                  "the package compiled by mpy-cross for this CPU, and the native kernels where they exist")
        r = install(board)
        done(t0, f"{r.backend} kernels for {r.arch}; sent {r.bytes_sent // 1024} KiB, {len(r.sent)} files")

        ds = builtin("watch")
        train_recs, test_recs, test_people = pick_recordings(ds, args.per_class)
        seconds = sum(rec.n_samples for rec in train_recs) / RATE_HZ
        t0 = step(3, f"collect {len(train_recs)} labelled recordings through the board's sampler (mpml collect)",
                  f"{len(ds.labels)} exercises: {', '.join(ds.labels)}; {seconds / 60:.1f} min of 6-axis IMU data "
                  f"replayed at {args.speed:g}x ({RATE_HZ * args.speed:g} samples/s) and streamed back in "
                  f"checksummed frames")
        data_dir = OUT / "collected"
        if data_dir.exists():
            import shutil
            shutil.rmtree(data_dir)
        lost = 0
        for i, rec in enumerate(train_recs):
            # One file name for all: the board keeps one recording at a time (an m0 has 256 KiB of flash).
            f = write_i16(OUT / "replay" / "collect.i16", rec.samples)
            res = collect(board, rec.label, out=data_dir, subject=rec.subject,
                          source=f"replay:{f},rate={RATE_HZ},channels={ds.n_channels},speed={args.speed:g}")
            lost += res.lost + res.dropped + res.crc_errors
            print(f"      {i + 1:2}/{len(train_recs)} {rec.label:8} {rec.subject:4} {res.samples:5} samples"
                  f"{'' if res.ok else '  (' + res.end + ', lost ' + str(res.lost + res.dropped) + ')'}",
                  flush=True)
        done(t0, f"{'no sample lost' if not lost else str(lost) + ' samples lost'}")

        t0 = step(4, "train a 1-D CNN on the collected data, then quantize it to int8 (mpml train)",
                  "recipe models/activity_imu.toml: raw windows of 128 samples, standardized; split by person")
        collected = load_dataset(data_dir)
        import tomllib
        d = tomllib.loads((REPO / "models" / "activity_imu.toml").read_text())
        # Everything collected trains (a fifth of the people for early stopping): the test is the live run.
        d["train"]["epochs"] = args.epochs
        d["data"]["fractions"] = [0.8, 0.2, 0.0]
        recipe = parse_recipe(d, "models/activity_imu.toml (demo: all data for training)")
        tr = train(recipe, collected, verbose=False)
        rep = tr.report
        from mpml.blob import write_blob
        blob = write_blob(tr.graph)
        model_path = OUT / "activity.mpml"
        model_path.write_bytes(blob)
        print(f"      {len(collected.recordings)} recordings; on the {tr.report_split} split: float "
              f"{rep.float_acc:.1%}, int8 {rep.int8_acc:.1%}, same class {rep.agreement:.1%}")
        done(t0, f"{model_path.relative_to(REPO)}: {len(blob)} bytes")

        t0 = step(5, "push the model to the board (mpml push-model)",
                  "checked against the board's free heap and flash first; SHA-256 verified on the board")
        pr = push_model(board, model_path, name="activity")
        done(t0, pr.line())

        # The middle LIVE_SECONDS of each test recording: small enough for an m0's filesystem.
        parts = []
        for rec in test_recs:
            n = min(rec.n_samples, LIVE_SECONDS * RATE_HZ)
            a = (rec.n_samples - n) // 2
            parts.append(rec.samples[a:a + n])
        test_samples = np.concatenate(parts)
        bounds = np.cumsum([0] + [len(p) for p in parts])
        truth = [rec.label for rec in test_recs]
        f = write_i16(OUT / "replay" / "live.i16", test_samples)
        t0 = step(6, "classify live on the board (mpml monitor)",
                  f"{LIVE_SECONDS} s of {len(test_recs)} recordings of people the model never saw ({', '.join(test_people)}), one per "
                  f"exercise, back to back; the board samples, computes the features from the spec inside the "
                  f"model and runs it, window after window")
        # Room on the filesystem for the live recording: the last collected one goes.
        board.conn.exec("import os\ntry:\n    os.remove('/data/collect.i16')\nexcept OSError:\n    pass\n")
        shown = [0]

        def show(r):
            if r.window % 20 == 1:
                k = int(np.searchsorted(bounds, r.start, side="right")) - 1
                print(f"      window {r.window:4}: {r.label:8} {r.score:.2f}  (playing: {truth[k]})", flush=True)
                shown[0] += 1

        window = tr.spec.window_length
        hop = window // 2
        run = classify_live(board, "activity", f"replay:{f},rate={RATE_HZ},channels={ds.n_channels},"
                                               f"speed={args.speed:g}", hop=hop, on_result=show)
        done(t0, f"{len(run.results)} windows, {run.dropped} samples dropped")

        t0 = step(7, "results, from the board's own outputs")
        # Windows that lie inside one recording have a true label; the host simulates the same windows
        # (features from the spec, int8 reference) to check the board computed what the host promised.
        from mpml.evaluate import int8_outputs
        graph = tr.graph
        ok = n = same = 0
        xs, ys, board_idx = [], [], []
        for r in run.results:
            k = int(np.searchsorted(bounds, r.start, side="right")) - 1
            if r.start + window > bounds[k + 1]:
                continue
            n += 1
            ok += r.label == truth[k]
            xs.append(test_samples[r.start:r.start + window])
            board_idx.append(r.index)
        if xs:
            q = tr.spec.transform(np.stack(xs))
            host_idx = int8_outputs(graph, q).argmax(axis=1)
            same = int((host_idx == np.asarray(board_idx)).sum())
        us = [r.us for r in run.results if r.us]
        print(f"      accuracy on unseen people, from the board's outputs: {ok}/{n} windows = {ok / max(n, 1):.1%}")
        print(f"      board vs host simulation of the same windows: {same}/{n} identical classes")
        if us:
            print(f"      features + inference per window: median {statistics.median(us) / 1000:.2f} ms"
                  + (" (qemu's speed, not a real chip's)" if started is not None and args.board != "unix" else ""))
        from mpml import boards as board_files
        from mpml.inspect import inspect_file
        pico = [f for f in inspect_file(model_path, [board_files.board("pico")]).boards][0]
        print(f"      on a Pico (RP2040 at 125 MHz) the model's inference is estimated at "
              f"{pico.latency_s * 1000:.1f} ms (mpml inspect: Cortex-M0 cycles per MAC)")
        print(f"      model: {len(blob)} bytes; heap in use on the board with the model and the app loaded: "
              f"{(run.heap_used or 0) // 1024} KiB ({(run.heap_free or 0) // 1024} KiB free)")
        done(t0)
        # The replayed recordings go; the model stays on the board for `mpml monitor activity`.
        board.conn.exec("import os\nfor f in ('/data/collect.i16', '/data/live.i16'):\n    try:\n"
                        "        os.remove(f)\n    except OSError:\n        pass\n")
        print(f"\ndemo finished in {time.monotonic() - t_all:.0f} s")
        return 0 if n and same == n else 1
    finally:
        board.close()
        if started is not None:
            virtual.stop(started.name)


if __name__ == "__main__":
    sys.exit(main())
