"""The definitions the host shares with the board: the op set and the blob format.

They live once, in the device package (`firmware/mpml/ops.py` and
`firmware/mpml/blobfmt.py`), as plain Python that MicroPython and CPython both
run. The host loads those very files as `mpml.ops` and `mpml.blobfmt`, so the
two sides cannot drift apart and device code imports the same way on both.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from mpml.paths import FIRMWARE_SRC


def device_module(name: str) -> ModuleType:
    """A module of the device package (`firmware/mpml/<name>.py`) run on CPython as `mpml.<name>`.

    Device modules import each other as `mpml.x`; registering them under that
    name lets the plain-Python ones (ops, blobfmt, _pure, model) run on the host.
    """
    qualified = f"mpml.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = FIRMWARE_SRC / "mpml" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None or not path.exists():
        raise ImportError(f"cannot load {path}: the host package needs the firmware/ folder beside host/")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


ops = device_module("ops")
blobfmt = device_module("blobfmt")
featurize = device_module("featurize")  # the feature spec as the board runs it
