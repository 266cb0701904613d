"""Sequential models: training (Adam, mini-batches, early stopping), prediction, save and load.

    model = Sequential([Dense(32, "relu"), Dense(10), Softmax()], input_shape=(64,), seed=0)
    history = model.fit(x, y, validation_data=(xv, yv), epochs=50, patience=8)
    model.predict(x)            # class probabilities (or reconstructions for an autoencoder)
    model.save("m.npz"); Sequential.load("m.npz")

A fixed `seed` makes a run repeatable bit for bit: it seeds the weight
initialisation and the shuffling, and nothing else draws random numbers.
The file format is documented in docs/training-and-quantization.md.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .layers import F32, Layer, Softmax, layer_from_config

__all__ = ["Sequential", "History", "Adam", "class_weights", "FORMAT"]

FORMAT = "mpml-nn/1"


@dataclass
class History:
    """Per-epoch metrics of a `fit`, the epoch whose weights were kept, and why it stopped."""

    loss: list[float] = field(default_factory=list)
    acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 1-based; 0 when nothing was monitored
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.loss)


class Adam:
    """Adam (Kingma & Ba) with bias correction, in float32."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m: dict[tuple[int, str], np.ndarray] = {}
        self.v: dict[tuple[int, str], np.ndarray] = {}

    def step(self, layers: list[Layer]) -> None:
        self.t += 1
        a = self.lr * math.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for i, layer in enumerate(layers):
            for name, p in layer.params.items():
                g = layer.grads[name]
                key = (i, name)
                if key not in self.m:
                    self.m[key] = np.zeros_like(p)
                    self.v[key] = np.zeros_like(p)
                m, v = self.m[key], self.v[key]
                m *= F32(self.beta1)
                m += F32(1 - self.beta1) * g
                v *= F32(self.beta2)
                v += F32(1 - self.beta2) * (g * g)
                p -= F32(a) * m / (np.sqrt(v) + F32(self.eps))


def class_weights(y: np.ndarray, n_classes: int, weights="balanced") -> np.ndarray:
    """Per-class loss weights: 'balanced' (n / (k * count)), a dict {class: w}, a sequence, or None (ones)."""
    if weights is None:
        return np.ones(n_classes, F32)
    if isinstance(weights, str):
        if weights != "balanced":
            raise ValueError(f"class_weight {weights!r}: 'balanced', a dict or a sequence")
        counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(np.float64)
        return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0).astype(F32)
    if isinstance(weights, dict):
        w = np.ones(n_classes, F32)
        for k, v in weights.items():
            w[int(k)] = v
        return w
    w = np.asarray(weights, F32)
    if w.shape != (n_classes,):
        raise ValueError(f"class_weight has {w.size} values for {n_classes} classes")
    return w


class _Progress:
    """One line per epoch on stderr, rewritten in place while the epoch runs."""

    def __init__(self, enabled: bool, epochs: int, stream=None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.width = len(str(epochs))
        self.epochs = epochs
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._len = 0

    def _write(self, text: str, end: str = "") -> None:
        pad = max(self._len - len(text), 0)
        self.stream.write("\r" + text + " " * pad + end)
        self.stream.flush()
        self._len = 0 if end else len(text)

    def update(self, epoch: int, done: int, total: int, loss: float, acc: float | None) -> None:
        now = time.monotonic()
        if not self.enabled or not self.tty or now - self._last < 0.1:
            return
        self._last = now
        n = 20
        filled = int(n * done / max(total, 1))
        bar = "=" * filled + (">" if filled < n else "") + " " * (n - filled - 1)
        acc_s = f" acc {acc:.4f}" if acc is not None else ""
        self._write(f"epoch {epoch:>{self.width}}/{self.epochs} [{bar[:n]}] loss {loss:.4f}{acc_s}")

    def end(self, epoch: int, h: History, seconds: float, note: str = "") -> None:
        if not self.enabled:
            return
        parts = [f"epoch {epoch:>{self.width}}/{self.epochs}", f"loss {h.loss[-1]:.4f}"]
        if h.acc:
            parts.append(f"acc {h.acc[-1]:.4f}")
        if h.val_loss:
            parts.append(f"val_loss {h.val_loss[-1]:.4f}")
        if h.val_acc:
            parts.append(f"val_acc {h.val_acc[-1]:.4f}")
        parts.append(f"{seconds:.1f}s")
        self._write("  ".join(parts) + (f"  {note}" if note else ""), end="\n")


class Sequential:
    """Layers applied in order; the first layer's input shape is `input_shape` (no batch axis)."""

    def __init__(self, layers, input_shape, seed: int = 0, name: str = "model",
                 labels=None, task: str | None = None) -> None:
        flat: list[Layer] = []
        for layer in layers:
            flat.extend(layer if isinstance(layer, (list, tuple)) else [layer])
        if not flat:
            raise ValueError("a model needs at least one layer")
        self.layers = flat
        self.input_shape = tuple(int(d) for d in (input_shape if np.ndim(input_shape) else (input_shape,)))
        self.seed = int(seed)
        self.name = name
        self.labels = [str(s) for s in labels] if labels is not None else []
        self.task = task or ("classifier" if isinstance(flat[-1], Softmax) else "regressor")
        self.meta: dict = {}
        rng = np.random.default_rng(self.seed)
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.build(shape, rng)
        self.output_shape = shape

    # -- inference ------------------------------------------------------------------------------

    def _check_x(self, x) -> np.ndarray:
        x = np.asarray(x, F32)
        if x.shape[1:] != self.input_shape:
            if x.ndim >= 1 and x[0].size == int(np.prod(self.input_shape)):
                return x.reshape((x.shape[0],) + self.input_shape)
            raise ValueError(f"input shape {x.shape[1:]}, the model takes {self.input_shape}")
        if not np.isfinite(x).all():
            raise ValueError("input has NaN or infinite values")
        return x

    def forward(self, x: np.ndarray, training: bool = False, upto: int | None = None) -> np.ndarray:
        for layer in self.layers[:upto]:
            x = layer.forward(x, training)
        return x

    def predict(self, x, batch_size: int = 1024) -> np.ndarray:
        """Outputs for a batch of inputs (class probabilities for a classifier)."""
        x = self._check_x(x)
        if len(x) == 0:
            return np.zeros((0,) + self.output_shape, F32)
        return np.concatenate([self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def activations(self, x, batch_size: int = 1024) -> list[np.ndarray]:
        """Every layer's output for a batch: what calibration measures."""
        x = self._check_x(x)
        outs: list[list[np.ndarray]] = [[] for _ in self.layers]
        for i in range(0, len(x), batch_size):
            h = x[i:i + batch_size]
            for k, layer in enumerate(self.layers):
                h = layer.forward(h)
                outs[k].append(h)
        return [np.concatenate(o) for o in outs]

    def predict_classes(self, x) -> np.ndarray:
        return self.predict(x).argmax(axis=-1)

    def n_params(self) -> int:
        return sum(layer.n_params() for layer in self.layers)

    def summary(self) -> str:
        rows = [f"{self.name}: input {self.input_shape}, {self.n_params()} parameters"]
        for layer in self.layers:
            rows.append(f"  {layer!r:70s} -> {layer.output_shape}  ({layer.n_params()} params)")
        return "\n".join(rows)

    # -- training -------------------------------------------------------------------------------

    def _loss(self, loss: str, out: np.ndarray, y: np.ndarray, cw: np.ndarray | None):
        """(loss value, gradient w.r.t. the output, or w.r.t. the logits for a softmax head with CE)."""
        n = out.shape[0]
        if loss == "crossentropy":
            p = np.clip(out, 1e-7, 1.0)
            w = cw[y] if cw is not None else np.ones(n, F32)
            value = float(-(w * np.log(p[np.arange(n), y])).sum() / n)
            g = out.copy()
            g[np.arange(n), y] -= 1
            return value, (g * (w / n)[:, None]).astype(F32)
        diff = (out - y).reshape(n, -1)
        value = float((diff * diff).mean())
        return value, (2.0 / diff.size * diff).astype(F32).reshape(out.shape)

    def _l2(self, l2: float) -> float:
        if not l2:
            return 0.0
        return l2 * sum(float((layer.params["kernel"] ** 2).sum()) for layer in self.layers if "kernel" in layer.params)

    def evaluate(self, x, y, loss: str | None = None, class_weight=None, l2: float = 0.0) -> tuple[float, float | None]:
        """(loss, accuracy) on a data set; accuracy is None for MSE."""
        loss = loss or ("crossentropy" if self.task == "classifier" else "mse")
        out = self.predict(x)
        if loss == "crossentropy":
            y = np.asarray(y, np.int64)
            cw = class_weights(y, out.shape[-1], class_weight) if class_weight is not None else None
            value, _ = self._loss(loss, out, y, cw)
            return value + self._l2(l2), float((out.argmax(axis=-1) == y).mean())
        value, _ = self._loss(loss, out, np.asarray(y, F32).reshape(out.shape), None)
        return value + self._l2(l2), None

    def fit(self, x, y=None, *, epochs: int = 50, batch_size: int = 32, lr: float = 1e-3, l2: float = 0.0,
            loss: str | None = None, class_weight=None, validation_data=None, patience: int | None = 10,
            min_delta: float = 0.0, verbose: bool = True, stream=None, threads: int | None = 1) -> History:
        """Train with Adam on mini-batches.

        loss: 'crossentropy' (classifier; `y` class indices, the model ends in Softmax) or
        'mse' (`y` targets; y=None trains an autoencoder on x itself). class_weight: None,
        'balanced', a dict or a sequence (cross-entropy only). validation_data: (xv, yv) or (xv,);
        with it, training stops after `patience` epochs without a val_loss improvement
        of more than `min_delta` and the best epoch's weights are restored (patience=None: never
        stop early, still restore the best). verbose: the progress line on stderr (or `stream`).
        threads: BLAS threads while training. 1 by default: the matrices of tiny models are
        small, and multithreaded OpenBLAS on them is several times slower (worse on a busy
        machine); None leaves numpy's setting alone.
        """
        if threads is None:
            return self._fit(x, y, epochs, batch_size, lr, l2, loss, class_weight, validation_data, patience,
                             min_delta, verbose, stream)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(threads), user_api="blas"):
            return self._fit(x, y, epochs, batch_size, lr, l2, loss, class_weight, validation_data, patience,
                             min_delta, verbose, stream)

    def _fit(self, x, y, epochs, batch_size, lr, l2, loss, class_weight, validation_data, patience, min_delta,
             verbose, stream) -> History:
        loss = loss or ("crossentropy" if self.task == "classifier" else "mse")
        if loss not in ("crossentropy", "mse"):
            raise ValueError(f"loss {loss!r}: 'crossentropy' or 'mse'")
        x = self._check_x(x)
        ce = loss == "crossentropy"
        if ce:
            if not isinstance(self.layers[-1], Softmax):
                raise ValueError("cross-entropy needs a model that ends in Softmax")
            y = np.asarray(y, np.int64).reshape(-1)
            n_classes = self.output_shape[-1]
            if y.min(initial=0) < 0 or y.max(initial=0) >= n_classes:
                raise ValueError(f"labels must be class indices 0..{n_classes - 1}")
            cw = class_weights(y, n_classes, class_weight)
        else:
            y = x if y is None else np.asarray(y, F32).reshape((len(x),) + self.output_shape)
            cw = None
        if len(y) != len(x):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        val = None
        if validation_data is not None:
            xv = self._check_x(validation_data[0])
            yv = validation_data[1] if len(validation_data) > 1 and validation_data[1] is not None else (
                None if ce else xv)
            val = (xv, yv)

        rng = np.random.default_rng([self.seed, 1])  # shuffling: its own stream, fixed by the seed
        opt = Adam(lr)
        h = History()
        progress = _Progress(verbose, epochs, stream)
        best, best_loss, wait = None, math.inf, 0
        # With a softmax head, cross-entropy's gradient is taken w.r.t. the logits.
        layers = self.layers[:-1] if ce else self.layers
        n = len(x)
        for epoch in range(1, epochs + 1):
            t0 = time.monotonic()
            order = rng.permutation(n)
            total, correct = 0.0, 0
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                xb = x[idx]
                out = self.forward(xb, training=True)
                yb = y[idx]
                value, g = self._loss(loss, out, yb, cw)
                for layer in reversed(layers):
                    g = layer.backward(g)
                if l2:
                    for layer in layers:
                        if "kernel" in layer.params:
                            layer.grads["kernel"] = layer.grads["kernel"] + F32(2 * l2) * layer.params["kernel"]
                opt.step(layers)
                total += value * len(idx)
                if ce:
                    correct += int((out.argmax(axis=-1) == yb).sum())
                done = min(start + batch_size, n)
                progress.update(epoch, done, n, total / done, correct / done if ce else None)
            h.loss.append(total / n + self._l2(l2))
            if ce:
                h.acc.append(correct / n)
            note = ""
            if val is not None:
                vl, va = self.evaluate(val[0], val[1], loss, class_weight if ce else None, l2)
                h.val_loss.append(vl)
                if va is not None:
                    h.val_acc.append(va)
                if vl < best_loss - min_delta:
                    best_loss, wait, h.best_epoch = vl, 0, epoch
                    best = self.get_weights()
                else:
                    wait += 1
            h.seconds.append(time.monotonic() - t0)
            stop = val is not None and patience is not None and wait >= patience
            if stop:
                note = f"early stop: best epoch {h.best_epoch}"
            progress.end(epoch, h, h.seconds[-1], note)
            if stop:
                h.stopped_early = True
                break
        if best is not None:
            self.set_weights(best)
        return h

    # -- weights, save and load -------------------------------------------------------------------

    def get_weights(self) -> list[dict[str, np.ndarray]]:
        return [{k: v.copy() for k, v in layer.params.items()} for layer in self.layers]

    def set_weights(self, weights: list[dict[str, np.ndarray]]) -> None:
        for layer, w in zip(self.layers, weights):
            for k, v in w.items():
                if layer.params[k].shape != v.shape:
                    raise ValueError(f"{layer.kind} {k}: shape {v.shape}, expected {layer.params[k].shape}")
                layer.params[k][...] = v

    def architecture(self) -> dict:
        return {"format": FORMAT, "name": self.name, "task": self.task, "input_shape": list(self.input_shape),
                "seed": self.seed, "labels": self.labels, "meta": self.meta,
                "layers": [{"kind": layer.kind, "config": layer.config()} for layer in self.layers]}

    def save(self, path) -> Path:
        """Write the float model: one .npz with 'architecture' (JSON, as UTF-8 bytes) and 'L{i}.{name}' arrays."""
        path = Path(path)
        arrays = {"architecture": np.frombuffer(json.dumps(self.architecture()).encode(), np.uint8)}
        for i, layer in enumerate(self.layers):
            for k, v in layer.params.items():
                arrays[f"L{i}.{k}"] = v
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def from_architecture(cls, arch: dict) -> "Sequential":
        if arch.get("format") != FORMAT:
            raise ValueError(f"not an mpml float model (format {arch.get('format')!r}, expected {FORMAT!r})")
        layers = [layer_from_config(entry["kind"], entry["config"]) for entry in arch["layers"]]
        model = cls(layers, arch["input_shape"], seed=arch.get("seed", 0), name=arch.get("name", "model"),
                    labels=arch.get("labels") or None, task=arch.get("task"))
        model.meta = dict(arch.get("meta") or {})
        return model

    @classmethod
    def load(cls, path) -> "Sequential":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "architecture" not in z:
                    raise ValueError(f"{path}: no 'architecture' entry: not an mpml float model")
                arch = json.loads(z["architecture"].tobytes().decode())
                model = cls.from_architecture(arch)
                weights = [{k: z[f"L{i}.{k}"].astype(F32) for k in layer.params}
                           for i, layer in enumerate(model.layers)]
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: cannot load the float model: {e}") from None
        model.set_weights(weights)
        return model
