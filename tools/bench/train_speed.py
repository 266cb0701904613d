"""Training speed of mpml.nn (numpy, float32): seconds per epoch on 10 000 windows.

    build/venv/bin/python tools/bench/train_speed.py [--windows 10000] [--epochs 3]

The issue's target: a 1-D CNN on ten thousand windows trains in about a
minute on two cores. The data are synthetic (noisy sines of 4 frequencies
on 3 axes, 128 samples per window, as a 3-axis accelerometer window at
50 Hz); only the time matters here. Batch size 32, Adam. The last column
projects a 30-epoch run (early stopping usually ends sooner).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mpml import nn


def signals(n: int, length: int = 128, channels: int = 3, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    t = np.arange(length)
    f = (0.02 + 0.03 * y)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
    x = np.sin(2 * np.pi * f * t[None, :, None] + phase) + rng.normal(0, 0.5, (n, length, channels))
    return x.astype(np.float32), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    n, e = args.windows, args.epochs
    x, y = signals(n)
    flat = x.reshape(n, -1)[:, ::6].copy()  # 64 features for the dense models
    models = [
        ("1-D CNN: conv16 k5, pool, sep-conv32 k5, pool, GAP (128x3)",
         lambda: nn.cnn1d_classifier(128, 3, 4, filters=(16, 32), kernel_size=5, seed=0), x, y),
        ("1-D CNN: conv8 k5, pool, sep-conv16, pool, sep-conv32, pool, GAP (128x3)",
         lambda: nn.cnn1d_classifier(128, 3, 4, filters=(8, 16, 32), kernel_size=5, seed=0), x, y),
        ("1-D CNN, plain convs: conv16 k5, pool, conv32 k5, pool, GAP (128x3)",
         lambda: nn.cnn1d_classifier(128, 3, 4, filters=(16, 32), kernel_size=5, separable=False, seed=0), x, y),
        ("MLP 64-64-32-4", lambda: nn.mlp_classifier(64, 4, (64, 32), seed=0), flat, y),
        ("autoencoder 64-32-8-32-64", lambda: nn.dense_autoencoder(64, (32, 8, 32), seed=0), flat, None),
    ]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"mpml.nn training speed, numpy {np.__version__}, {cores} cores, batch 32, float32\n")
    print("| model | windows | epochs | seconds | s/epoch | 30 epochs (s) |")
    print("|---|---|---|---|---|---|")
    for name, make, xs, ys in models:
        model = make()
        t0 = time.perf_counter()
        model.fit(xs, ys, epochs=e, batch_size=32, verbose=False)
        s = time.perf_counter() - t0
        print(f"| {name} | {n} | {e} | {s:.1f} | {s / e:.2f} | {30 * s / e:.0f} |", flush=True)


if __name__ == "__main__":
    main()
