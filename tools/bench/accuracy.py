"""Accuracy, float vs int8: models trained with mpml.nn, quantized with mpml.quantize, on real data.

    build/venv/bin/python tools/bench/accuracy.py [--quick]

- digits (scikit-learn, 1797 8x8 images): stratified 80/20 split (random_state 0),
  inputs standardized with the training split's per-pixel mean and std and put on
  the common int8 input grid (scale 1/32, zero point 0, i.e. +-4 standard
  deviations). The issue's bar: int8 MLP >= 95 % test accuracy, within 1 point of float.
- watch (the smartwatch 6-axis IMU set in the seglearn wheel: 140 recordings,
  10 subjects, 7 exercises, 50 Hz): windows of 128 samples (2.56 s), split by
  subject, never by window: subjects 1-7 train (hop 32), 8 validation, 9-10 test
  (hop 64); per-channel standardization from the training windows, same int8 grid.
- digits autoencoder: trained on digits 0-8 only; digit 9 is the anomaly; ROC AUC of the
  reconstruction error, float vs int8.

int8 figures are the host reference's, which the boards equal bit for bit. Seeds are
fixed: a rerun prints the same table (training uses one BLAS thread).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from mpml import nn
from mpml.quantize import compare, quantize

SCALE, ZP = 1 / 32, 0


def grid(x) -> np.ndarray:
    return (np.clip(np.round(np.asarray(x) / SCALE) + ZP, -128, 127) - ZP).astype(np.float32) * np.float32(SCALE)


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.2, random_state=0, stratify=d.target)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = grid((xtr - mu) / sd), grid((xte - mu) / sd)
    xt, xv, yt, yv = train_test_split(xtr, ytr, test_size=0.15, random_state=0, stratify=ytr)
    return (xt, yt), (xv, yv), (xte, yte)


def watch(length: int = 128):
    path = Path(importlib.util.find_spec("seglearn").submodule_search_locations[0]) / "data" / "watch_dataset.npy"
    d = np.load(path, allow_pickle=True).item()
    X, y, subject = d["X"], np.asarray(d["y"]), np.asarray(d["subject"])

    def windows(subjects, hop):
        xs, ys = [], []
        for i in np.flatnonzero(np.isin(subject, subjects)):
            for s in range(0, len(X[i]) - length + 1, hop):
                xs.append(X[i][s:s + length])
                ys.append(y[i])
        return np.asarray(xs, np.float32), np.asarray(ys)

    tr, va, te = windows(range(1, 8), 32), windows([8], 64), windows([9, 10], 64)
    mu, sd = tr[0].reshape(-1, 6).mean(0), tr[0].reshape(-1, 6).std(0)
    f = lambda s: (grid((s[0] - mu) / sd), s[1])  # noqa: E731
    return f(tr), f(va), f(te), list(d["y_labels"])


def run(name, model, train, val, test, calib, **fit):
    t0 = time.perf_counter()
    h = model.fit(*train, validation_data=val, verbose=False, **fit)
    seconds = time.perf_counter() - t0
    g = quantize(model, calib, SCALE, ZP, name=name)
    r = compare(model, g, *test)
    return r, h, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run, not the reported figures)")
    args = ap.parse_args()
    ep = 5 if args.quick else 1

    rows = []
    tr, va, te = digits()
    for hidden in ((64, 32), (32,)):
        m = nn.mlp_classifier(64, 10, hidden, seed=0)
        r, h, s = run("digits-mlp", m, tr, va, te, tr[0], epochs=100 // ep, patience=10, l2=1e-4)
        rows.append((f"digits MLP 64-{'-'.join(map(str, hidden))}-10", len(te[1]), r, h, s))

    wtr, wva, wte, labels = watch()
    recipes = [
        ("watch 1-D CNN conv16 k5, sep-conv32 k5, GAP",
         lambda: nn.cnn1d_classifier(128, 6, 7, filters=(16, 32), kernel_size=5, seed=0, labels=labels)),
        ("watch 1-D CNN conv16 k5, sep-conv32, sep-conv32, GAP, dense32",
         lambda: nn.cnn1d_classifier(128, 6, 7, filters=(16, 32, 32), kernel_size=5, dense=32, seed=0,
                                     labels=labels)),
        ("watch 1-D CNN conv16 k5, conv32 k5, GAP (no separable)",
         lambda: nn.cnn1d_classifier(128, 6, 7, filters=(16, 32), kernel_size=5, separable=False, seed=0,
                                     labels=labels)),
    ]
    for name, make in recipes:
        r, h, s = run(name, make(), wtr, wva, wte, wtr[0][::8], epochs=40 // ep, patience=8, batch_size=32,
                      l2=1e-4, class_weight="balanced")
        rows.append((name, len(wte[1]), r, h, s))

    print("float vs int8 accuracy (int8 = host reference = board), input scale 1/32, zero point 0\n")
    print("| recipe | test windows | float acc | int8 acc | agreement | epochs (best) | train s |")
    print("|---|---|---|---|---|---|---|")
    for name, n, r, h, s in rows:
        print(f"| {name} | {n} | {100 * r.float_acc:.1f} % | {100 * r.int8_acc:.1f} % | {100 * r.agreement:.1f} % | "
              f"{h.epochs} ({h.best_epoch}) | {s:.0f} |", flush=True)

    # anomaly detection: digits 0-8 normal, 9 anomalous
    (xt, yt), (xv, yv), (xte, yte) = tr, va, te
    ae = nn.dense_autoencoder(64, (32, 8, 32), seed=0)
    ae.fit(xt[yt != 9], validation_data=(xv[yv != 9],), epochs=200 // ep, patience=10, verbose=False)
    g = quantize(ae, xt[yt != 9], SCALE, ZP, name="digits-ae")
    r = compare(ae, g, xte, (yte == 9).astype(int))
    rn = compare(ae, g, xte[yte != 9])
    print("\n| anomaly recipe | test samples | float ROC AUC | int8 ROC AUC | score correlation (normal / all) |")
    print("|---|---|---|---|---|")
    print(f"| digits autoencoder 64-32-8-32-64, anomaly = digit 9 | {len(yte)} | {r.float_auc:.3f} | "
          f"{r.int8_auc:.3f} | {rn.score_corr:.3f} / {r.score_corr:.3f} |")


if __name__ == "__main__":
    main()
