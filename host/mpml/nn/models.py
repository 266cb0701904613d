"""Ready-made architectures: MLP and 1-D CNN classifiers, a dense autoencoder for anomalies.

Each returns an untrained `Sequential`; train it with `fit`. Every layer they
use quantizes to one mpml op (see mpml.quantize).
"""

from __future__ import annotations

import numpy as np

from .layers import (AvgPool1D, Conv1D, Dense, Flatten, GlobalAvgPool1D, MaxPool1D, Softmax,
                     separable_conv1d)
from .model import Sequential

__all__ = ["mlp_classifier", "cnn1d_classifier", "dense_autoencoder", "anomaly_scores"]


def mlp_classifier(n_inputs: int, n_classes: int, hidden=(32, 16), activation: str = "relu",
                   seed: int = 0, name: str = "mlp", labels=None) -> Sequential:
    """Dense layers with `activation`, then Dense(n_classes) and Softmax."""
    layers = [Dense(u, activation) for u in hidden] + [Dense(n_classes), Softmax()]
    return Sequential(layers, (int(n_inputs),), seed=seed, name=name, labels=labels)


def cnn1d_classifier(length: int, channels: int, n_classes: int, filters=(16, 32), kernel_size: int = 5,
                     separable: bool = True, pool: str = "max", dense: int = 0, global_pool: bool = True,
                     stride: int = 1, seed: int = 0, name: str = "cnn1d", labels=None) -> Sequential:
    """A small 1-D CNN for [length, channels] windows.

    Conv1D(filters[0], relu) with `stride`, pooled by 2; each further stage a
    depthwise-separable block (or a plain Conv1D when separable=False), pooled
    by 2; then GlobalAvgPool1D (or Flatten), an optional Dense(dense, relu),
    and Dense(n_classes) + Softmax.
    """
    Pool = MaxPool1D if pool == "max" else AvgPool1D
    layers: list = [Conv1D(filters[0], kernel_size, strides=stride, activation="relu"), Pool(2)]
    for f in filters[1:]:
        if separable:
            layers += separable_conv1d(f, kernel_size, activation="relu")
        else:
            layers.append(Conv1D(f, kernel_size, activation="relu"))
        layers.append(Pool(2))
    layers.append(GlobalAvgPool1D() if global_pool else Flatten())
    if dense:
        layers.append(Dense(dense, "relu"))
    layers += [Dense(n_classes), Softmax()]
    return Sequential(layers, (int(length), int(channels)), seed=seed, name=name, labels=labels)


def dense_autoencoder(n_inputs: int, hidden=(16, 4, 16), activation: str = "relu", seed: int = 0,
                      name: str = "autoencoder") -> Sequential:
    """Dense layers with `activation` through a bottleneck, then a linear Dense back to n_inputs.

    Train with fit(x_normal) (MSE on its own input); `anomaly_scores` is the reconstruction error.
    """
    layers = [Dense(u, activation) for u in hidden] + [Dense(int(n_inputs))]
    model = Sequential(layers, (int(n_inputs),), seed=seed, name=name, task="autoencoder")
    return model


def anomaly_scores(x, reconstruction) -> np.ndarray:
    """Mean squared reconstruction error per sample: the anomaly score (higher = more anomalous)."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    r = np.asarray(reconstruction, np.float32).reshape(len(x), -1)
    return ((x - r) ** 2).mean(axis=1)
