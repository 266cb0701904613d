"""The `mpml` command: a thin layer over the host package's API."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__, virtual
from .device import BoardError


def _fmt_bytes(n: int) -> str:
    return f"{n // 1024} KiB" if n else "-"


def cmd_virtual_start(args: argparse.Namespace) -> int:
    board = virtual.start(args.kind, name=args.name, fresh=args.fresh, timeout=args.timeout)
    print(board.port)
    return 0


def cmd_virtual_stop(args: argparse.Namespace) -> int:
    if args.all or not args.names:
        stopped = virtual.stop_all()
    else:
        stopped = [n for n in args.names if virtual.stop(n)]
    for name in stopped:
        print(f"stopped {name}", file=sys.stderr)
    return 0


def cmd_virtual_list(args: argparse.Namespace) -> int:
    started = {b.name: b for b in virtual.boards()}
    rows = [("name", "board", "arch", "status", "port", "filesystem", "stands for")]
    for kind, spec in virtual.specs().items():
        build = spec.build_status()
        built = "not built" if not build else ("build failed" if not build.get("ok") else "")
        named = [b for b in started.values() if b.kind == kind] or [None]
        for b in named:
            status = built or (b.status if b else "stopped")
            if b and b.state.get("crashes"):
                status += f" ({b.state['crashes']} crashes)"
            port = b.port if b and b.status in ("running", "starting", "crashed") else "-"
            rows.append((b.name if b else kind, kind, spec.arch, status, port, spec.filesystem, spec.stands_for))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


class CommandError(Exception):
    """A command cannot go on: the message says why (printed as `mpml: ...`, exit status 1)."""


def _write_atomic(path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all (mpml.files.write_atomic)."""
    from .files import write_atomic

    try:
        write_atomic(path, data)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from None


def _blob_line(out, graph, data: bytes) -> str:
    from .blob import read_blob

    arena = read_blob(data).arena_size
    counts: dict[str, int] = {}
    for op in graph.ops:
        counts[op.name] = counts.get(op.name, 0) + 1
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    return f"{out}: {len(data)} bytes, arena {arena} bytes, {len(graph.ops)} ops ({summary})"


SKLEARN_SUFFIXES = (".joblib", ".pkl", ".pickle", ".sav")


def _load_matrix(path):
    """Feature vectors from a .npz (array X, or its first array), .npy or .csv file."""
    from pathlib import Path

    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CommandError(f"{p}: no such file")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return np.asarray(z["X"] if "X" in z else z[z.files[0]], np.float64)
        if p.suffix == ".npy":
            return np.asarray(np.load(p, allow_pickle=False), np.float64)
        return np.loadtxt(p, delimiter=",", ndmin=2)
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise CommandError(f"{p}: cannot read feature vectors: {e}") from None


def _feature_spec_file(path):
    import json
    from pathlib import Path

    from .features import FeatureError, FeatureSpec

    p = Path(path)
    try:
        if p.suffix == ".mpml":
            from .blob import load

            data = load(p).graph.features
            if not data:
                raise CommandError(f"{p}: this model carries no feature spec")
            return FeatureSpec.from_bytes(data)
        return FeatureSpec.from_dict(json.loads(p.read_text()))
    except FileNotFoundError:
        raise CommandError(f"{p}: no such file") from None
    except (OSError, ValueError, FeatureError) as e:
        raise CommandError(f"{p}: not a feature spec: {e}") from None


def _import_sklearn(args, src, out) -> int:
    from .importers.sklearn import InputQuant, SklearnImportError, load_sklearn

    quant, features, calib = None, b"", None
    dtype = "int16" if args.input_bits == 16 else "int8"
    try:
        if args.features:
            spec = _feature_spec_file(args.features)
            if not spec.fitted:
                raise CommandError(f"{args.features}: the feature spec is not fitted (no quantization yet)")
            quant, features = InputQuant(spec.input_scale, spec.input_zero_point, "int8"), spec.to_bytes()
            if dtype != "int8":
                raise CommandError("--features gives int8 inputs; --input-bits 16 does not go with it")
        elif args.input_scale is not None:
            quant = InputQuant(args.input_scale, args.input_zero_point, dtype)
        if args.calib:
            calib = _load_matrix(args.calib)
        labels = None
        if args.labels:
            labels = [ln.strip() for ln in Path(args.labels).read_text().splitlines() if ln.strip()]
        graph = load_sklearn(src, name=args.name or src.stem, input_quant=quant, input_dtype=dtype,
                             labels=labels, features=features, calibration_x=calib)
        from .blob import write_blob

        data = write_blob(graph)
    except (SklearnImportError, ValueError, OSError) as e:
        raise CommandError(str(e)) from None
    _write_atomic(out, data)
    t = graph.tensors[graph.inputs[0].tensor]
    extra = ""
    if graph.ops[0].name == "TREE_ENSEMBLE":
        extra = f", {graph.ops[0].params[0]} trees"
    print(_blob_line(out, graph, data) + extra)
    print(f"input: {t.dtype} {list(t.shape)}, scale {t.scale:.6g}, zero point {t.zero_point}"
          + ("" if args.input_scale is not None or args.features else " (from the trees' thresholds)"
             if graph.ops[0].name == "TREE_ENSEMBLE" else ""))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    # Imported lazily: the importers pull in numpy, the tflite schema package, scikit-learn.
    from .blob import BlobError, write_blob

    src = Path(args.model)
    suffix = src.suffix.lower()
    out = Path(args.output) if args.output else src.with_suffix(".mpml")
    if suffix in SKLEARN_SUFFIXES:
        return _import_sklearn(args, src, out)
    if suffix != ".tflite":
        raise CommandError(f"{src}: cannot import {suffix or 'a file without a suffix'}: give a .tflite model or a "
                           f"scikit-learn estimator saved with joblib/pickle ({', '.join(SKLEARN_SUFFIXES)})")
    from .importers.tflite import TFLiteImportError, load_tflite

    try:
        graph = load_tflite(src, name=args.name)
        if args.labels:
            labels = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
            graph.outputs[0].labels = labels
        data = write_blob(graph)
    except (TFLiteImportError, BlobError, OSError) as e:
        raise CommandError(str(e)) from None
    _write_atomic(out, data)
    print(_blob_line(out, graph, data))
    return 0


def _dataset(arg: str, rate: float | None = None):
    from .data import BUILTINS, DatasetError, builtin, load_dataset

    try:
        if arg in BUILTINS and not Path(arg).exists():
            return builtin(arg)
        return load_dataset(arg, sample_rate_hz=rate)
    except DatasetError as e:
        raise CommandError(str(e)) from None


def _out_base(output: str) -> Path:
    p = Path(output)
    return p.with_suffix("") if p.suffix in (".mpml", ".npz") else p


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from .blob import write_blob
    from .recipes import RecipeError, load_recipe, train

    base = _out_base(args.output)
    if not base.parent.is_dir():
        raise CommandError(f"{base}: folder {base.parent} does not exist")
    try:
        recipe = load_recipe(args.recipe)
        ds = _dataset(args.data, args.rate)
        print(f"recipe {recipe.name} ({recipe.arch}, {recipe.task}); data {ds.name}: {len(ds)} recordings, "
              f"{ds.n_channels} channels at {ds.sample_rate_hz:g} Hz, labels {', '.join(ds.labels)}")
        if args.epochs is not None:
            recipe.train["epochs"] = args.epochs
        result = train(recipe, ds, verbose=not args.quiet)
        data = write_blob(result.graph)
    except (RecipeError, ValueError) as e:
        raise CommandError(str(e)) from None
    npz, mpml_path = base.with_name(base.name + ".npz"), base.with_name(base.name + ".mpml")
    tmp_npz = base.with_name(f".{base.name}.{os.getpid()}.npz")
    try:
        result.model.save(tmp_npz)
        _write_atomic(mpml_path, data)
        os.replace(tmp_npz, npz)
    finally:
        if tmp_npz.exists():
            tmp_npz.unlink()
    p = result.prepared
    print(f"windows: {len(p.train)} train, {len(p.val)} validation, {len(p.test)} test "
          f"(split by {recipe.split_by}); features: {result.spec.n_features} per window")
    print(f"float vs int8 on the {result.report_split} split:")
    print(result.report.table())
    print(f"float model: {npz}")
    print(_blob_line(mpml_path, result.graph, data))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    import numpy as np

    from .blob import write_blob
    from .data import DatasetError, windows
    from .features import FeatureError, FeatureSpec
    from .nn.model import Sequential
    from .quantize import QuantizeError, compare
    from .recipes import RecipeError, load_recipe, quantize_model

    src = Path(args.model)
    if not src.is_file():
        raise CommandError(f"{src}: no such file")
    out = Path(args.output) if args.output else src.with_suffix(".mpml")
    try:
        model = Sequential.load(src)
        recipe = load_recipe(args.recipe) if args.recipe else None
        ds = _dataset(args.calib, args.rate)
        if "features" in model.meta:
            spec = FeatureSpec.from_dict(model.meta["features"])
        elif recipe is not None:
            spec = FeatureSpec.from_dict(recipe.features, sample_rate_hz=ds.sample_rate_hz, channel_names=ds.channels)
        else:
            raise CommandError(f"{src}: the float model carries no feature spec (it was not made by `mpml train`): "
                               "give --recipe to fit one on the calibration data")
        length = spec.window_length or (recipe.window if recipe else None)
        if length is None:
            raise CommandError("the feature spec does not say its window length: give --recipe")
        hop = recipe.hop if recipe else length
        w = windows(ds, length, hop)
        if not spec.fitted:
            spec.fit(w)
        x = spec.transform_float(w, shaped=True)
        labels = model.labels if model.task == "classifier" else None
        graph = quantize_model(model, spec, x, recipe, labels=labels)
        graph.name = args.name or graph.name
        data = write_blob(graph)
        flat = x.reshape((len(x),) + tuple(model.input_shape))
        if model.task == "classifier":
            index = {lab: k for k, lab in enumerate(model.labels)}
            y = np.array([index.get(w.labels[k], -1) for k in w.y])
            rep = compare(model, graph, flat, y if (y >= 0).all() else None)
        else:
            rep = compare(model, graph, flat)
    except (RecipeError, DatasetError, FeatureError, QuantizeError, ValueError) as e:
        raise CommandError(str(e)) from None
    _write_atomic(out, data)
    print(f"float vs int8 on the {len(x)} calibration windows:")
    print(rep.table())
    print(_blob_line(out, graph, data))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from .blob import BlobError
    from .boards import BoardFileError, boards
    from .inspect import format_report, inspect_file

    try:
        board_list = boards(args.boards) if args.boards else None
        rep = inspect_file(args.model, board_list)
    except (BlobError, BoardFileError) as e:
        raise CommandError(str(e)) from None
    print(format_report(rep))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from .blob import BlobError, load
    from .evaluate import (EvalError, evaluate_anomaly, evaluate_classifier, format_result, is_autoencoder,
                           save_confusion_png)

    model_path = Path(args.model)
    try:
        if args.on_device and not model_path.is_file():  # a model on the board: its blob read back
            from .device.commands.run import eval_model_graph

            graph = eval_model_graph(args.model, args.port)[0]
        else:
            graph = load(model_path).graph
    except BlobError as e:
        raise CommandError(f"{model_path}: {e}" if str(model_path) not in str(e) else str(e)) from None
    data_path = Path(args.dataset)
    try:
        if data_path.suffix == ".npz" and data_path.is_file() and not graph.features:
            # feature vectors the model takes directly (e.g. for an imported estimator): X and y
            with np.load(data_path, allow_pickle=False) as z:
                if "X" not in z:
                    raise CommandError(f"{data_path}: no 'X' array of feature vectors")
                x = z["X"]
                y = z["y"] if "y" in z else None
                names = [str(s) for s in z["classes"]] if "classes" in z else None
            if y is not None and names is not None and y.dtype.kind in "iu":
                y = np.array(names)[y]
            elif y is not None and y.dtype.kind in "iu" and graph.outputs[0].labels:
                y = np.asarray(y).astype(str)
            labels_of_data = names
            where = f"{data_path}: {len(x)} feature vectors"
        else:
            if not graph.features:
                raise CommandError(f"{model_path}: the model carries no feature spec, so a dataset cannot be turned "
                                   "into its inputs: give a .npz with feature vectors X (and labels y)")
            from .data import DatasetError, split, windows
            from .features import FeatureError, FeatureSpec

            spec = FeatureSpec.from_bytes(graph.features)
            ds = _dataset(args.dataset, args.rate)
            hop = args.hop or spec.window_length
            try:
                w = windows(ds, spec.window_length, hop)
                if args.split != "all":
                    if not args.recipe:
                        raise CommandError("--split needs --recipe (its split settings say which windows are which)")
                    from .recipes import load_recipe

                    r = load_recipe(args.recipe)
                    w = getattr(split(w, by=r.split_by, fractions=r.fractions, seed=r.seed), args.split)
                x = spec.transform(w, shaped=True)
            except (DatasetError, FeatureError) as e:
                raise CommandError(str(e)) from None
            y = np.array(w.labels, dtype=object)[w.y].astype(str)
            labels_of_data = list(w.labels)
            where = f"{ds.name}: {len(x)} windows of {spec.window_length} samples (hop {hop})"
        print(where)
        outputs, board_eval, source = None, None, "host-simulated int8"
        if args.on_device:  # the metrics come from the board's own outputs
            from .device.commands.run import on_device_outputs

            outputs, board_eval = on_device_outputs(args.model, graph, x, args.port)
            source = f"int8 on the board, {board_eval.backend} kernels"
        if is_autoencoder(graph):
            anomalous = None
            if y is not None:
                normal = args.normal or ("normal" if "normal" in set(y) else None)
                if normal is not None:
                    if normal not in set(y):
                        raise CommandError(f"no {normal!r} samples in the data (labels: {', '.join(sorted(set(y)))})")
                    anomalous = y != normal
            res = evaluate_anomaly(graph, x, anomalous, outputs=outputs, source=source)
            print(format_result(res))
            return 0
        if y is None:
            raise CommandError(f"{data_path}: no labels (y) to evaluate a classifier against")
        res = evaluate_classifier(graph, x, y, labels_of_data, outputs=outputs, source=source)
        if board_eval is not None and not board_eval.equal:
            host = evaluate_classifier(graph, x, y, labels_of_data)
            print(f"host simulation: accuracy {host.accuracy:.4f}"
                  + (" (the same)" if host.accuracy == res.accuracy else " (DIFFERENT from the board's)"))
    except EvalError as e:
        raise CommandError(str(e)) from None
    print(format_result(res))
    png = Path(args.png) if args.png else model_path.with_name(model_path.stem + "_confusion.png")
    if not png.parent.is_dir():
        raise CommandError(f"{png}: folder {png.parent} does not exist")
    save_confusion_png(res, png, f"{graph.name}: int8 accuracy {res.accuracy:.3f} ({res.n} samples)")
    print(f"confusion matrix: {png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mpml", description="TinyML for MicroPython boards.")
    ap.add_argument("--version", action="version", version=f"mpml {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("virtual", help="virtual boards that stand in for real ones")
    vsub = v.add_subparsers(dest="virtual_command", required=True)
    s = vsub.add_parser("start", help="start a virtual board and print its serial port")
    # Checked by virtual.start (unknown kinds get the list), not by argparse choices: reading every
    # board file to build the parser slowed down every mpml command.
    s.add_argument("kind", help="which kind of board (`mpml virtual list` shows the kinds)")
    s.add_argument("--name", help="name of this board (default: the kind); lets several of a kind run")
    s.add_argument("--fresh", action="store_true", help="erase the board's filesystem first")
    s.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the REPL")
    s.set_defaults(func=cmd_virtual_start)
    st = vsub.add_parser("stop", help="stop virtual boards (all when none named)")
    st.add_argument("names", nargs="*")
    st.add_argument("--all", action="store_true")
    st.set_defaults(func=cmd_virtual_stop)
    ls = vsub.add_parser("list", help="list the virtual boards, their state and serial ports")
    ls.set_defaults(func=cmd_virtual_list)

    im = sub.add_parser("import", help="convert a TFLite model or a scikit-learn estimator to an .mpml blob",
                        description="Convert a fully int8-quantized .tflite model (exactly what the TFLite Micro "
                                    "interpreter computes, docs/reference-and-import.md) or a fitted scikit-learn "
                                    "estimator saved with joblib/pickle (.joblib, .pkl): trees and forests become one "
                                    "TREE_ENSEMBLE op, exact on the input grid; LogisticRegression, LinearSVC, "
                                    "SGDClassifier, RidgeClassifier and MLPClassifier go through the int8 quantizer "
                                    "(--calib). WARNING: loading a pickle runs code from it; import only files you trust.")
    im.add_argument("model", help="the .tflite, .joblib or .pkl file")
    im.add_argument("-o", "--output", help="the .mpml file to write (default: beside the model)")
    im.add_argument("--name", help="the model's name in the blob (default: the file's stem)")
    im.add_argument("--labels", help="a text file with one class name per line, for the first output")
    sk = im.add_argument_group("scikit-learn estimators: the input quantization (one scale and zero point for "
                               "the whole feature vector)")
    sk.add_argument("--features", metavar="SPEC",
                    help="a fitted feature spec (JSON from FeatureSpec.to_dict, or an .mpml that carries one): its "
                         "input scale and zero point, and the spec travels inside the blob")
    sk.add_argument("--input-scale", type=float, help="input scale (default for trees: from their thresholds; for "
                                                      "dense models: from the --calib data's range)")
    sk.add_argument("--input-zero-point", type=int, default=0, help="input zero point (default 0)")
    sk.add_argument("--input-bits", type=int, choices=(8, 16), default=8,
                    help="trees: int8 or int16 features (int16: a 256x finer grid)")
    sk.add_argument("--calib", metavar="FILE", help="feature vectors (.npz with X, .npy or .csv) to calibrate "
                                                    "dense models' activations")
    im.set_defaults(func=cmd_import)

    tr = sub.add_parser("train", help="train a model from a dataset and a recipe: float .npz and int8 .mpml",
                        description="Cut the dataset into windows, split it by recording or subject, fit the "
                                    "recipe's feature spec on the training part, train the float model (numpy), "
                                    "quantize it to int8 and print float vs int8 metrics on the test split. Writes "
                                    "OUT.npz (float model) and OUT.mpml (with the feature spec inside).")
    tr.add_argument("--data", required=True, help="a dataset folder, .csv, .npz, or a built-in name (digits, watch)")
    tr.add_argument("--recipe", required=True, help="a recipe file (models/NAME.toml) or a name in models/")
    tr.add_argument("-o", "--output", required=True, help="output path without suffix (OUT.npz and OUT.mpml)")
    tr.add_argument("--rate", type=float, help="sample rate in Hz, for CSV data that does not say it")
    tr.add_argument("--epochs", type=int, help="override the recipe's epochs")
    tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)

    qu = sub.add_parser("quantize", help="quantize a float model (.npz) to an int8 .mpml with calibration data",
                        description="Quantize a float model saved by `mpml train` (or mpml.nn) to int8 with "
                                    "calibration windows from a dataset; prints float vs int8 on them.")
    qu.add_argument("model", help="the float model (.npz)")
    qu.add_argument("--calib", required=True, help="dataset for calibration (folder, .csv, .npz or built-in name)")
    qu.add_argument("--recipe", help="recipe for the feature spec (when the model carries none) and quantize settings")
    qu.add_argument("-o", "--output", help="the .mpml to write (default: beside the model)")
    qu.add_argument("--name", help="the model's name in the blob")
    qu.add_argument("--rate", type=float, help="sample rate in Hz, for CSV data that does not say it")
    qu.set_defaults(func=cmd_quantize)

    ins = sub.add_parser("inspect", help="ops, parameters, MACs, memory, and whether it fits each board",
                         description="Describe an .mpml model: ops with shapes, parameters and MACs; blob (flash) "
                                     "and arena bytes; the feature spec; and for every board in boards/ (real and "
                                     "virtual) whether blob + arena + runtime fit its free heap and filesystem, with "
                                     "an estimated latency (MACs x cycles/MAC at its clock; see mpml.boards).")
    ins.add_argument("model", help="the .mpml file")
    ins.add_argument("--boards", metavar="DIR", help="a boards folder (default: the repository's boards/)")
    ins.set_defaults(func=cmd_inspect)

    ev = sub.add_parser("eval", help="host-simulated int8 metrics of a model on a dataset",
                        description="Run the int8 model in the host reference (bit-exact with the board) on a "
                                    "dataset: accuracy, per-class precision/recall and the confusion matrix (also "
                                    "saved as a PNG); for an autoencoder, ROC AUC of the reconstruction error and "
                                    "the chosen threshold. The dataset goes through the feature spec inside the "
                                    "model; a model without one takes a .npz of feature vectors X and labels y.")
    ev.add_argument("model", help="the .mpml file")
    ev.add_argument("dataset", help="a dataset (folder, .csv, .npz, built-in name) or a .npz of feature vectors")
    ev.add_argument("--png", help="where to save the confusion matrix (default: MODEL_confusion.png beside the model)")
    ev.add_argument("--hop", type=int, help="samples between windows (default: the window length)")
    ev.add_argument("--split", choices=("all", "train", "val", "test"), default="all",
                    help="evaluate one part of the recipe's split (needs --recipe)")
    ev.add_argument("--recipe", help="the recipe the model was trained with (for --split)")
    ev.add_argument("--normal", help="anomaly models: the label of normal samples (default: 'normal')")
    ev.add_argument("--rate", type=float, help="sample rate in Hz, for CSV data that does not say it")
    ev.add_argument("--on-device", action="store_true",
                    help="run the samples through the board (--port): the metrics come from the board's own "
                         "outputs, with a line saying whether they equal the host simulation byte for byte. "
                         "MODEL may then also be the name of a model on the board")
    from .device.ports import add_port_argument

    add_port_argument(ev)
    ev.set_defaults(func=cmd_eval)

    # The device commands live beside the device code; each module adds its
    # subcommands with register(sub) (one entry per module, in help order).
    for module in DEVICE_COMMANDS:
        importlib.import_module(module).register(sub)
    return ap


DEVICE_COMMANDS: tuple[str, ...] = ("mpml.device.commands.setup", "mpml.device.commands.models", "mpml.device.commands.run",
                                    "mpml.device.commands.live", "mpml.device.commands.flash",
                                    "mpml.device.commands.collect")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (virtual.VirtualBoardError, CommandError, BoardError) as e:
        print(f"mpml: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mpml inspect m.mpml | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
