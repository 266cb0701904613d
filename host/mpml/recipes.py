"""Model recipes (`models/*.toml`): features, architecture and training settings in one small file.

    recipe = load_recipe("models/gesture.toml")
    result = train(recipe, load_dataset("data/gestures"))
    result.model.save("gesture.npz"); save(result.graph, "gesture.mpml")
    print(result.report.table())

The format is documented in models/README.md. `load_recipe` checks every
section and key and raises `RecipeError` naming the file, the key and the
problem; unknown keys are refused (a typo never silently falls back to a
default).
"""

from __future__ import annotations

import inspect as _inspect
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RecipeError", "Recipe", "load_recipe", "parse_recipe", "TrainResult", "train", "prepare",
           "quantize_model", "ARCHS"]

TASKS = ("classifier", "anomaly")
ARCHS = {"mlp": "mlp_classifier", "cnn1d": "cnn1d_classifier", "autoencoder": "dense_autoencoder"}
_TRAIN_KEYS = {"epochs": int, "batch_size": int, "lr": float, "l2": float, "class_weight": (str, type(None)),
               "patience": int, "seed": int}
_QUANT_KEYS = {"calibration": int, "method": str, "percentile": float}
_DATA_KEYS = {"split": str, "fractions": list, "seed": int, "normal": str}


class RecipeError(ValueError):
    """A recipe that cannot be read or used: the file, the key and the problem."""


@dataclass
class Recipe:
    name: str
    task: str
    description: str
    window: int
    hop: int
    features: dict  # for FeatureSpec.from_dict: {"blocks": [...], "quantize": {...}}
    arch: str
    model: dict  # keyword arguments of the mpml.nn.models function
    train: dict = field(default_factory=dict)
    quantize: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def split_by(self) -> str:
        return self.data.get("split", "recording")

    @property
    def fractions(self) -> tuple[float, float, float]:
        return tuple(self.data.get("fractions", (0.7, 0.15, 0.15)))

    @property
    def seed(self) -> int:
        return int(self.data.get("seed", 0))


def _check_keys(section: dict, allowed: dict, where: str) -> None:
    for k, v in section.items():
        if k not in allowed:
            raise RecipeError(f"{where}: unknown key {k!r} (known: {', '.join(allowed)})")
        want = allowed[k]
        ok = isinstance(v, want) and not (isinstance(v, bool) and want in (int, float))
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            ok = True
        if not ok:
            raise RecipeError(f"{where}: {k!r} = {v!r} has the wrong type")


def parse_recipe(data: dict, where: str = "recipe") -> Recipe:
    """Validate a recipe dict (as read from TOML)."""
    from mpml.features import FeatureError, FeatureSpec
    from mpml.nn import models as nn_models

    top = {"name", "task", "description", "data", "features", "model", "train", "quantize"}
    extra = set(data) - top
    if extra:
        raise RecipeError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(sorted(extra))} "
                          f"(known: {', '.join(sorted(top))})")
    for key in ("name", "task", "features", "model"):
        if key not in data:
            raise RecipeError(f"{where}: missing {key!r}")
    name, task = data["name"], data["task"]
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{where}: 'name' must be a non-empty string")
    if task not in TASKS:
        raise RecipeError(f"{where}: task {task!r}: one of {', '.join(TASKS)}")

    d = dict(data.get("data", {}))
    _check_keys(d, _DATA_KEYS, f"{where} [data]")
    if d.get("split", "recording") not in ("recording", "subject"):
        raise RecipeError(f"{where} [data]: split {d['split']!r}: 'recording' or 'subject' (never by window)")
    fr = d.get("fractions", [0.7, 0.15, 0.15])
    if len(fr) != 3 or any(not isinstance(f, (int, float)) or f < 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
        raise RecipeError(f"{where} [data]: fractions {fr}: three non-negative numbers summing to 1")

    f = dict(data["features"])
    for key in ("window", "blocks"):
        if key not in f:
            raise RecipeError(f"{where} [features]: missing {key!r}")
    allowed_f = {"window", "hop", "blocks", "input_scale", "input_zero_point"}
    extra = set(f) - allowed_f
    if extra:
        raise RecipeError(f"{where} [features]: unknown key {sorted(extra)[0]!r} (known: {', '.join(sorted(allowed_f))})")
    window, hop = f["window"], f.get("hop", f["window"])
    for k, v in (("window", window), ("hop", hop)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RecipeError(f"{where} [features]: {k} = {v!r}: a positive number of samples")
    spec_dict = {"blocks": f["blocks"],
                 "quantize": {"scale": f.get("input_scale", 1 / 32), "zero_point": f.get("input_zero_point", 0)}}
    try:
        FeatureSpec.from_dict(spec_dict)  # checks block kinds and options now, before any data is read
    except (FeatureError, TypeError, ValueError) as e:
        raise RecipeError(f"{where} [features]: {e}") from None

    m = dict(data["model"])
    arch = m.pop("type", None)
    if arch not in ARCHS:
        raise RecipeError(f"{where} [model]: type {arch!r}: one of {', '.join(ARCHS)}")
    if (arch == "autoencoder") != (task == "anomaly"):
        raise RecipeError(f"{where} [model]: type {arch!r} does not suit task {task!r} "
                          "(anomaly takes autoencoder; classifier takes mlp or cnn1d)")
    fn = getattr(nn_models, ARCHS[arch])
    params = _inspect.signature(fn).parameters
    fixed = {"n_inputs", "n_classes", "length", "channels", "name", "labels", "seed"}
    tunable = [p for p in params if p not in fixed]
    for k in m:
        if k not in tunable:
            raise RecipeError(f"{where} [model]: unknown option {k!r} for {arch} (known: {', '.join(tunable)})")

    t = dict(data.get("train", {}))
    _check_keys(t, _TRAIN_KEYS, f"{where} [train]")
    q = dict(data.get("quantize", {}))
    _check_keys(q, _QUANT_KEYS, f"{where} [quantize]")
    if q.get("method", "minmax") not in ("minmax", "percentile"):
        raise RecipeError(f"{where} [quantize]: method {q['method']!r}: 'minmax' or 'percentile'")
    return Recipe(name, task, str(data.get("description", "")), window, hop, spec_dict, arch, m, t, q, d)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file; `path` may also be a name in models/ ("gesture")."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and len(p.parts) == 1:
        from mpml import paths

        p = paths.REPO / "models" / f"{p}.toml"
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except OSError as e:
        raise RecipeError(f"{p}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{p}: not valid TOML: {e}") from None
    r = parse_recipe(data, str(p))
    r.path = p
    return r


# -- running a recipe ---------------------------------------------------------------------------

@dataclass
class Prepared:
    """A dataset cut into windows, split, with the feature spec fitted on the training part."""

    spec: Any
    labels: list[str]
    train: Any  # mpml.data.Windows
    val: Any
    test: Any
    x_train: np.ndarray  # float model inputs (what the int8 inputs stand for)
    x_val: np.ndarray
    x_test: np.ndarray
    normal: int | None = None  # anomaly: the normal class index


def prepare(recipe: Recipe, dataset) -> Prepared:
    """Windows, a leak-free split (by recording or subject), the feature spec fitted on the training part."""
    from mpml.data import DatasetError, split, windows
    from mpml.features import FeatureError, FeatureSpec

    try:
        w = windows(dataset, recipe.window, recipe.hop)
        parts = split(w, by=recipe.split_by, fractions=recipe.fractions, seed=recipe.seed)
    except DatasetError as e:
        raise RecipeError(f"{recipe.path or recipe.name}: {e}") from None
    if len(parts.train) == 0:
        raise RecipeError(f"{recipe.name}: the training split is empty")
    normal = None
    train_w = parts.train
    if recipe.task == "anomaly":
        lab = recipe.data.get("normal", "normal")
        if lab not in w.labels:
            raise RecipeError(f"{recipe.name}: the normal label {lab!r} is not in the data "
                              f"(labels: {', '.join(w.labels)}); set [data] normal")
        normal = w.labels.index(lab)
        train_w = parts.train.subset(parts.train.y == normal)
        if len(train_w) == 0:
            raise RecipeError(f"{recipe.name}: no {lab!r} windows in the training split")
    try:
        spec = FeatureSpec.from_dict(recipe.features, sample_rate_hz=w.sample_rate_hz, channel_names=w.channels)
        spec.fit(train_w)

        def tf(part):
            return spec.transform_float(part, shaped=True) if len(part) else np.zeros((0,) + spec.output_shape, np.float32)
        x_train, x_val, x_test = tf(train_w), tf(parts.val), tf(parts.test)
    except FeatureError as e:
        raise RecipeError(f"{recipe.name} [features]: {e}") from None
    return Prepared(spec, list(w.labels), train_w, parts.val, parts.test, x_train, x_val, x_test, normal)


@dataclass
class TrainResult:
    model: Any
    graph: Any
    spec: Any
    prepared: Prepared
    report: Any  # mpml.quantize.Report on the test split (or validation, or training when there is none)
    report_split: str


def build_model(recipe: Recipe, p: Prepared):
    from mpml.nn import models as nn_models

    fn = getattr(nn_models, ARCHS[recipe.arch])
    seed = int(recipe.train.get("seed", 0))
    shape = p.spec.output_shape
    kw = dict(recipe.model)
    if recipe.arch == "cnn1d":
        if len(shape) != 2:
            raise RecipeError(f"{recipe.name}: cnn1d needs windows as input (one raw block), the features give {shape}")
        return fn(shape[0], shape[1], len(p.labels), seed=seed, name=recipe.name, labels=p.labels, **kw)
    n_in = int(np.prod(shape))
    if recipe.arch == "mlp":
        return fn(n_in, len(p.labels), seed=seed, name=recipe.name, labels=p.labels, **kw)
    return fn(n_in, seed=seed, name=recipe.name, **kw)


def _flat(model, x):
    return x.reshape((len(x),) + tuple(model.input_shape))


def quantize_model(model, spec, x_calib, recipe: Recipe | None = None, labels=None):
    """The int8 Graph of a float model with the spec's input quantization and the spec inside."""
    from mpml.quantize import quantize

    q = recipe.quantize if recipe else {}
    n = int(q.get("calibration", 500))
    x_calib = np.asarray(x_calib, np.float32)
    if len(x_calib) > n:
        x_calib = x_calib[np.random.default_rng(0).choice(len(x_calib), n, replace=False)]
    kw = {}
    if "method" in q:
        kw["method"] = q["method"]
    if "percentile" in q:
        kw["percentile"] = q["percentile"]
    return quantize(model, _flat(model, x_calib), input_scale=spec.input_scale, input_zero_point=spec.input_zero_point,
                    name=recipe.name if recipe else model.name, labels=labels, features=spec.to_bytes(), **kw)


def train(recipe: Recipe, dataset, verbose: bool = True, stream=None) -> TrainResult:
    """Prepare the data, train the float model, quantize it, and compare float vs int8 on held-out data."""
    from mpml.quantize import compare

    p = prepare(recipe, dataset)
    model = build_model(recipe, p)
    t = dict(recipe.train)
    fit_kw = {k: t[k] for k in ("epochs", "batch_size", "lr", "l2", "patience") if k in t}
    if recipe.task == "classifier":
        if "class_weight" in t:
            fit_kw["class_weight"] = t["class_weight"]
        val = (_flat(model, p.x_val), p.val.y) if len(p.val) else None
        model.fit(_flat(model, p.x_train), p.train.y, validation_data=val, verbose=verbose, stream=stream, **fit_kw)
    else:
        xv = p.x_val[p.val.y == p.normal] if len(p.val) else p.x_val
        val = (_flat(model, xv),) if len(xv) else None
        model.fit(_flat(model, p.x_train), validation_data=val, verbose=verbose, stream=stream, **fit_kw)
    model.meta.update({"recipe": recipe.name, "features": p.spec.to_dict()})
    graph = quantize_model(model, p.spec, p.x_train, recipe, labels=p.labels if recipe.task == "classifier" else None)
    for split_name, x, part in (("test", p.x_test, p.test), ("validation", p.x_val, p.val), ("training", p.x_train, p.train)):
        if len(x):
            break
    if recipe.task == "classifier":
        rep = compare(model, graph, _flat(model, x), part.y)
    else:
        rep = compare(model, graph, _flat(model, x), (part.y != p.normal).astype(int))
    return TrainResult(model, graph, p.spec, p, rep, split_name)
